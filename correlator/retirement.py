"""Retiring what retention took: the verdicts and anomalies of workflows the store
holds no span of any more.

Retention drops whole hour partitions (``collector/retention.py``). A workflow
whose last activity is older than the oldest hour the store still holds, less an
hour's margin (a span is filed by when it arrived, not by its own clock), has no
span left: the ``workflows`` view no longer lists it, and its verdict and its
anomalies are let go (``Verdicts.forget_before``, ``AnomalyLedger.retire``), or
both would grow with every run ever seen. Service-level anomalies (a service gone
silent, an exporter that dropped spans: no workflow) go once resolved before the
horizon; one still open stays, however old.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb

from correlator.ledger import AnomalyLedger
from correlator.verdicts import Verdicts
from instrumentation import wire
from store.layout import oldest_partition

MARGIN = dt.timedelta(hours=1)
# How long a late copy of a retired workflow's span can still reach the store through
# the bus: CHOREO_SPANS (which the OTLP/HTTP receiver feeds too) keeps a message at
# most its max age, and a copy the collector files is kept by the hour it arrived in.
LATE_COPY_WINDOW = dt.timedelta(seconds=wire.SPANS_STREAM_MAX_AGE_S)


def retention_horizon(segments: Iterable[str]) -> dt.datetime | None:
    """Before it, the store holds no span: the oldest hour of ``segments`` less the
    margin; None for a store without segments (nothing to go by)."""
    oldest = oldest_partition(segments)
    return None if oldest is None else oldest - MARGIN


def retired_keys_expire_before(horizon: dt.datetime, *, now: dt.datetime) -> dt.datetime:
    """Before it, a workflow retired then needs its hash no longer: no copy of its spans
    can still arrive.

    A workflow is retired once its last activity is behind the horizon: about one
    retention period old. Its hash is kept until the horizon has passed the hour it was
    retired in (another retention period: spans as late as twice retention are still
    told apart) and at least ``LATE_COPY_WINDOW`` (a retention shorter than the spans
    stream's max age would let a copy the stream still holds come back unknown). Later
    than both, a copy could only come from outside the bus's bounds (an SDK that held
    a span for days, a spans stream given a longer max age): it is judged as new."""
    return min(horizon, now - LATE_COPY_WINDOW)


def retire_expired(
    con: duckdb.DuckDBPyConnection,
    *,
    ledger: AnomalyLedger,
    verdicts: Verdicts,
    segments: Iterable[str],
    now: dt.datetime,
) -> None:
    """Forget the verdicts and retire the anomalies of workflows quiet since before
    the retention horizon of ``segments`` (``all_status`` holds the verdicts), and the
    service-level anomalies resolved before it."""
    horizon = retention_horizon(segments)
    if horizon is None:
        return
    verdicts.forget_before(con, horizon)
    ledger.retire_service_findings(before=horizon)
    ledger.forget_retired_before(retired_keys_expire_before(horizon, now=now))
    # only workflows whose anomalies were all found before then can be gone: a run
    # with an anomaly found since had spans then (a ledger of weeks is looked up once)
    candidates = ledger.retirable(before=horizon)
    if not candidates:
        return
    # a verdict since the horizon (a run whose older spans alone were dropped, a
    # resumed pass's verdict carried over) says the store may still hold its spans
    held = {
        workflow_id
        for (workflow_id,) in con.execute(
            """
            SELECT DISTINCT workflow_id FROM all_status
            WHERE workflow_id IN (SELECT unnest($candidates)) AND last_activity_at >= $horizon
            """,
            {"candidates": sorted(candidates), "horizon": horizon},
        ).fetchall()
    }
    ledger.retire(candidates - held, at=now)
