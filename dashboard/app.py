"""choreoscope's dashboard: a router over the pages, and nothing else.

``?workflow=<id>`` on any address opens that workflow's detail page, so alerts
can link to the dashboard's root.
"""

import streamlit as st

st.set_page_config(page_title="choreoscope", page_icon=":material/hub:", layout="wide")

overview = st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True)
detail = st.Page(
    "views/workflow_detail.py",
    title="Workflow detail",
    icon=":material/timeline:",
    url_path="workflow",
)
pages = [
    overview,
    st.Page("views/workflows.py", title="Workflows", icon=":material/list:"),
    detail,
    st.Page("views/choreography.py", title="Choreography map", icon=":material/hub:"),
    st.Page("views/anomalies.py", title="Anomalies", icon=":material/warning:"),
    st.Page("views/services.py", title="Services", icon=":material/monitor_heart:"),
    st.Page("views/sql_console.py", title="SQL console", icon=":material/terminal:"),
]
chosen = st.navigation(pages)
if "workflow" in st.query_params and chosen.url_path == overview.url_path:
    st.switch_page(detail, query_params={"workflow": st.query_params["workflow"]})
chosen.run()
