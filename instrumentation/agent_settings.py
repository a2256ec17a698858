"""The checks an ``Agent``'s settings pass before anything connects: a wrong one is
refused at construction, with what to use instead, not at the first event."""

from __future__ import annotations

from instrumentation.errors import ConfigurationError

# what a name may not hold: it becomes part of subjects and consumer names
NOT_IN_NAMES = " .*>\t\r\n"


def check_agent_settings(
    *,
    name: str,
    delivery: str,
    max_deliveries: int,
    max_in_flight: int,
    heartbeat_interval: float,
) -> None:
    if not name or any(c in name for c in NOT_IN_NAMES):
        raise ConfigurationError(
            setting="name", value=name, fix="use a name without spaces, dots, '*' or '>'"
        )
    if max_deliveries < 1 or max_in_flight < 1 or heartbeat_interval <= 0:
        raise ConfigurationError(
            setting="max_deliveries/max_in_flight/heartbeat_interval",
            value=(max_deliveries, max_in_flight, heartbeat_interval),
            fix="max_deliveries and max_in_flight must be >= 1, heartbeat_interval > 0",
        )
    if delivery not in ("jetstream", "core"):
        raise ConfigurationError(
            setting="delivery",
            value=delivery,
            fix="use 'jetstream' (stored, retried) or 'core' (plain NATS, at most once)",
        )
