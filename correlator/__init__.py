"""The correlator: workflows rebuilt across async hops, and what is stuck, explained.

    import correlator
    con = correlator.connect("choreoscope-data")   # every view, in-memory DuckDB
    con.execute("select * from workflows where status = 'stalled'").df()

    engine = correlator.correlate_once(data_dir="choreoscope-data")  # findings, once
    await correlator.watch(data_dir=..., alerter=correlator.Alerter(...), stop=event)

Views (``correlator/sql``): ``messages``, ``workflows``, ``hops``, ``edges``,
``anomalies``, ``workflow_status`` and the choreography model
(``choreography_steps``, ``choreography_follows``), over the store's ``spans``;
helpers ``workflow_spans``, ``trace_workflows``, ``publish_spans``,
``delivery_spans``, ``transitions``, ``dead_letters``. Findings are Parquet files
under ``<data>/findings/<table>/`` (``FINDINGS``), each write a new immutable
generation (``correlator.findings_files``).
"""

from correlator.alerts import Alerter, alert_payload
from correlator.choreography_file import ChoreographyFileError, load_choreography
from correlator.connection import connect
from correlator.declared_choreography import Choreography
from correlator.engine import Correlator
from correlator.explain import ANOMALY_KINDS
from correlator.findings import FINDINGS, ensure_findings
from correlator.thresholds import Thresholds
from correlator.watch import correlate_once, watch

__all__ = [
    "ANOMALY_KINDS",
    "FINDINGS",
    "Alerter",
    "Choreography",
    "ChoreographyFileError",
    "Correlator",
    "Thresholds",
    "alert_payload",
    "connect",
    "correlate_once",
    "ensure_findings",
    "load_choreography",
    "watch",
]
