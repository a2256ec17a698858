"""The order domain: orders, stock, fraud scoring, payment and the shipping fan-in.

Nothing here knows about NATS. Fraud scoring is where a real system would call a
model; here it is a deterministic rule, recorded for audit through `samples.llm`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from instrumentation.errors import ChoreoscopeError

CATALOG = {"kb-01": 89.0, "mouse-02": 35.0, "dock-03": 179.0, "cable-04": 12.5, "screen-05": 329.0}
CUSTOMERS = ["acme-gmbh", "globex", "initech", "umbrella-bv", "hooli", "stark-sa"]
COUNTRIES = ["DE", "NL", "FR", "ES", "SE", "PL"]
SUPPORTED_CURRENCIES = {"EUR", "SEK", "PLN"}

# the three steps shipping waits for, by the subject each emits
FAN_IN_SUBJECTS = (
    "orders.inventory.reserved",
    "orders.fraud.scored",
    "orders.payment.authorized",
)


class UnsupportedCurrencyError(ChoreoscopeError):
    """The payment provider refuses the order's currency (a poison message)."""

    def __init__(self, *, currency: object) -> None:
        super().__init__(
            f"the payment provider does not accept currency {currency!r}: "
            f"accepted are {', '.join(sorted(SUPPORTED_CURRENCIES))}"
        )


def make_order(rng: random.Random) -> dict[str, Any]:
    lines = [
        {"sku": sku, "quantity": rng.randint(1, 3)}
        for sku in rng.sample(sorted(CATALOG), k=rng.randint(1, 3))
    ]
    country = rng.choice(COUNTRIES)
    currency = {"SE": "SEK", "PL": "PLN"}.get(country, "EUR")
    return {
        "customer": rng.choice(CUSTOMERS),
        "country": country,
        "currency": currency,
        "lines": lines,
        "amount": round(sum(CATALOG[line["sku"]] * line["quantity"] for line in lines), 2),
    }


def make_unpayable_order(rng: random.Random) -> dict[str, Any]:
    """An order in a currency the payment provider refuses: payment can never succeed."""
    return {**make_order(rng), "currency": "XTS"}


def reserve_stock(order: dict[str, Any]) -> dict[str, Any]:
    return {"reserved": [line["sku"] for line in order["lines"]], "warehouse": "ams-1"}


def fraud_prompt(order: dict[str, Any]) -> str:
    return (
        f"Estimate the fraud risk of an order of {order['amount']} {order['currency']} "
        f"by {order['customer']} shipping to {order['country']}."
    )


def score_fraud(order: dict[str, Any]) -> dict[str, Any]:
    """The stand-in for a model's fraud judgement: amount and destination rules."""
    risk = min(1.0, order["amount"] / 2000) + (0.2 if order["country"] in {"ES", "PL"} else 0.0)
    risk = round(min(risk, 1.0), 3)
    return {"risk": risk, "verdict": "review" if risk > 0.6 else "accept"}


def authorize_payment(order: dict[str, Any]) -> dict[str, Any]:
    if order.get("currency") not in SUPPORTED_CURRENCIES:
        raise UnsupportedCurrencyError(currency=order.get("currency"))
    return {"authorized": order["amount"], "currency": order["currency"]}


@dataclass
class FanIn:
    """Shipping's memory: which of the three results each order has so far.

    In memory, so one shipping instance must see all three and a restart forgets
    them; a real service would keep them in a NATS key-value bucket."""

    waiting: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, workflow_id: str, subject: str, data: dict[str, Any]) -> dict | None:
        """Record one result; return every result once all three are in."""
        results = self.waiting.setdefault(workflow_id, {})
        results[subject] = data
        if all(s in results for s in FAN_IN_SUBJECTS):
            return self.waiting.pop(workflow_id)
        return None

    def put_back(self, workflow_id: str, results: dict[str, Any]) -> None:
        """Keep the results ``add`` returned after all, when shipping them failed."""
        self.waiting[workflow_id] = {**results, **self.waiting.get(workflow_id, {})}

    def missing(self, workflow_id: str) -> list[str]:
        results = self.waiting.get(workflow_id, {})
        return [s for s in FAN_IN_SUBJECTS if s not in results]
