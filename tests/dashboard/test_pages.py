"""Every page of the dashboard, rendered by Streamlit's AppTest on the fixture store."""

from __future__ import annotations

from pathlib import Path

from tests.dashboard.app_driver import dataframe_cells, markdown_texts, open_dashboard, plain_texts
from tests.dashboard.fixture_store import (
    COMPLETED_COUNT,
    FAILED_WORKFLOW,
    HOSTILE_WORKFLOW,
    PARSED,
    SCORER_ERROR,
    STALLED_WORKFLOW,
    completed_workflow_id,
)

ALL_WORKFLOWS = COMPLETED_COUNT + 3


def test_overview_shows_workflow_tiles_and_the_hops(recruitment_store: Path):
    at = open_dashboard(recruitment_store)
    assert at.title[0].value == "Overview"
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Started"] == str(ALL_WORKFLOWS)
    assert {"Completed", "In flight", "Stalled", "Failed", "p95 end to end"} <= set(tiles)
    hops = next(d.value for d in at.dataframe if "consumer_service" in d.value.columns)
    assert set(hops["subject"]) == {"recruit.cv.submitted", PARSED, "recruit.candidate.scored"}


def test_workflows_page_lists_every_run(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="pages/workflows.py")
    table = at.dataframe[0].value
    assert len(table) == ALL_WORKFLOWS
    assert {STALLED_WORKFLOW, FAILED_WORKFLOW, HOSTILE_WORKFLOW} <= set(table["workflow_id"])
    assert table["open"].str.startswith("workflow?workflow=").all()


def test_workflow_filters_narrow_the_table(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="pages/workflows.py")
    at.text_input(key="filter_search").input("wf-ok-").run()
    assert set(at.dataframe[0].value["workflow_id"]) == {
        completed_workflow_id(n) for n in range(COMPLETED_COUNT)
    }
    at.text_input(key="filter_search").input("").run()
    at.selectbox(key="filter_service").set_value("notifier").run()
    narrowed = set(at.dataframe[0].value["workflow_id"])
    assert STALLED_WORKFLOW not in narrowed and FAILED_WORKFLOW not in narrowed
    assert len(narrowed) == COMPLETED_COUNT + 1


def test_search_finds_a_workflow_by_an_attribute_value(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="pages/workflows.py")
    at.text_input(key="filter_search").input("pwned").run()
    assert list(at.dataframe[0].value["workflow_id"]) == [HOSTILE_WORKFLOW]


def test_deep_link_opens_that_workflow_with_its_steps_and_errors(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow=FAILED_WORKFLOW)
    assert at.title[0].value == "Workflow detail"
    assert FAILED_WORKFLOW in plain_texts(at)
    steps = next(d.value for d in at.dataframe if "delivery" in d.value.columns)
    scorer = steps[(steps["service"] == "scorer") & (steps["operation"] == "process")]
    assert sorted(scorer["delivery"]) == [1, 2, 3]
    assert set(scorer["error"]) == {SCORER_ERROR}
    assert len(at.get("vega_lite_chart")) == 1  # the timeline


def test_deep_link_to_an_unknown_workflow_says_so(recruitment_store: Path):
    at = open_dashboard(recruitment_store, workflow="no-such-workflow")
    assert any("No workflow with this id" in w.value for w in at.warning)


def test_detail_page_without_an_id_offers_an_id_box(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="pages/workflow_detail.py")
    at.text_input(key="workflow_id_box").input(STALLED_WORKFLOW).run()
    assert STALLED_WORKFLOW in plain_texts(at)
    assert at.query_params["workflow"] == STALLED_WORKFLOW


def test_choreography_map_draws_services_and_subjects(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="pages/choreography.py")
    graphs = at.get("graphviz_chart")
    assert len(graphs) == 1
    dot = graphs[0].proto.spec
    for name in ("intake", "parser", "scorer", "notifier", PARSED):
        assert f'"{name}"' in dot
    assert 'color="#d62728"' in dot  # the scorer hop, whose attempts failed, stands out


def test_services_page_shows_liveness_and_telemetry_gaps(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="pages/services.py")
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Instances alive"] == "3"
    assert tiles["Instances silent"] == "1"
    liveness = at.dataframe[0].value
    assert not liveness.set_index("service").loc["scorer", "alive"]
    gaps = at.dataframe[1].value
    assert gaps.set_index("service").loc["notifier", "spans_dropped"] == 17


def test_anomalies_page_renders(recruitment_store: Path):
    at = open_dashboard(recruitment_store, page="pages/anomalies.py")
    assert at.title[0].value == "Anomalies"
    assert at.multiselect(key="anomaly_kinds") is not None


def test_an_empty_store_points_to_the_demo(empty_store: Path):
    for page in (None, "pages/workflows.py", "pages/services.py", "pages/anomalies.py"):
        at = open_dashboard(empty_store, page=page)
        assert any("No traces in this store yet" in i.value for i in at.info)
        assert "choreoscope demo" in plain_texts(at)


def test_a_missing_store_explains_itself_instead_of_a_stack_trace(tmp_path: Path):
    at = open_dashboard(tmp_path / "nowhere")
    assert any("No traces in this store yet" in i.value for i in at.info)
    assert any("no choreoscope store at" in t for t in plain_texts(at))


def test_hostile_span_data_is_rendered_as_plain_text(recruitment_store: Path):
    from tests.dashboard.fixture_store import HOSTILE_TEXT

    at = open_dashboard(recruitment_store, workflow=HOSTILE_WORKFLOW)
    assert HOSTILE_TEXT in plain_texts(at)  # the audit capture, verbatim
    assert HOSTILE_TEXT in dataframe_cells(at)  # the error text in the step table
    for text in markdown_texts(at):
        assert "<script>" not in text and "**bold**" not in text
