"""Read functions for the dashboard and other readers, over the SQL contract's views.

Each takes a connection with every view (``correlator.connect``) and plain,
hashable keyword filters, and returns a DataFrame or a small dataclass. The SQL
is one ``.sql`` file per query in this folder.

    from correlator.queries import list_workflows
    stalled = list_workflows(con, since=None, statuses=("stalled",))
"""

from correlator.explain import ANOMALY_KINDS
from correlator.queries.awaited import awaited_by
from correlator.queries.health import (
    anomaly_list,
    bus_event_counts,
    choreography_edges,
    choreography_model,
    choreography_transitions,
    consumer_lag_latest,
    service_liveness,
)
from correlator.queries.overview import (
    STUCK_AT_MOST,
    Overview,
    OverviewTiles,
    anomalies_over_time,
    anomaly_counts,
    overview,
    overview_tiles,
    throughput_over_time,
    worst_hops,
)
from correlator.queries.scope import (
    reads_spans,
    scoped_to_store,
    scoped_to_window,
    scoped_to_workflow,
)
from correlator.queries.store_contents import (
    CONTRACT_VIEWS,
    StoreCounts,
    store_counts,
    view_columns,
)
from correlator.queries.workflow_detail import (
    WorkflowDetail,
    WorkflowRun,
    related_workflows,
    workflow_anomalies,
    workflow_audit,
    workflow_detail,
    workflow_hops,
    workflow_messages,
    workflow_run,
    workflow_steps,
    workflows_matching,
)
from correlator.queries.workflow_list import (
    LISTED_AT_MOST,
    WORKFLOW_STATUSES,
    list_workflows,
    service_names,
    workflow_counts,
    workflow_types,
)

__all__ = [
    "ANOMALY_KINDS",
    "CONTRACT_VIEWS",
    "LISTED_AT_MOST",
    "STUCK_AT_MOST",
    "WORKFLOW_STATUSES",
    "Overview",
    "OverviewTiles",
    "StoreCounts",
    "WorkflowDetail",
    "WorkflowRun",
    "anomalies_over_time",
    "anomaly_counts",
    "anomaly_list",
    "awaited_by",
    "bus_event_counts",
    "choreography_edges",
    "choreography_model",
    "choreography_transitions",
    "consumer_lag_latest",
    "list_workflows",
    "overview",
    "overview_tiles",
    "reads_spans",
    "related_workflows",
    "scoped_to_store",
    "scoped_to_window",
    "scoped_to_workflow",
    "service_liveness",
    "service_names",
    "store_counts",
    "throughput_over_time",
    "view_columns",
    "workflow_anomalies",
    "workflow_audit",
    "workflow_counts",
    "workflow_detail",
    "workflow_hops",
    "workflow_messages",
    "workflow_run",
    "workflow_steps",
    "workflow_types",
    "workflows_matching",
    "worst_hops",
]
