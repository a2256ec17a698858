"""The correlator: workflows rebuilt across async hops, and what is stuck, explained.

    import correlator
    con = correlator.connect("choreoscope-data")   # every view, in-memory DuckDB
    con.execute("select * from workflows where status = 'stalled'").df()

Views (``correlator/sql``): ``messages``, ``workflows``, ``hops``, ``edges``,
``anomalies`` and the choreography model (``choreography_steps``,
``choreography_follows``), over the store's ``spans``. Findings (anomalies,
workflow statuses, the model) are Parquet files under ``<data>/findings/``,
written by ``choreoscope correlate`` (``correlator.watch``).
"""

from correlator.connection import connect
from correlator.findings import FINDINGS, ensure_findings

__all__ = ["FINDINGS", "connect", "ensure_findings"]
