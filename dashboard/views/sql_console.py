"""SQL console: read-only SQL over the store's views, in a sandbox."""

from __future__ import annotations

import streamlit as st

from correlator.queries import CONTRACT_VIEWS
from dashboard.data import read
from dashboard.example_queries import EXAMPLE_QUERIES
from dashboard.page_frame import open_page
from dashboard.query_results import as_frame, parquet_bytes, with_unique_names
from dashboard.sql_access import sandbox_connection
from dashboard.sql_sandbox import DEFAULT_ROW_CAP, DEFAULT_TIME_LIMIT_S, run_read_query
from instrumentation.errors import ChoreoscopeError

page = open_page("SQL console", needs_data=False, windowed=False)
if page is not None:
    st.caption(
        f"Read-only: one SELECT at a time over the views, at most {DEFAULT_ROW_CAP:,} rows "
        f"and {DEFAULT_TIME_LIMIT_S:g} s. Files outside the store, settings, ATTACH, "
        "COPY and extensions are refused."
    )
    example = st.selectbox("Example queries", list(EXAMPLE_QUERIES), index=None, key="example")
    if example is not None and st.session_state.get("loaded_example") != example:
        st.session_state["sql_text"] = EXAMPLE_QUERIES[example]
        st.session_state["loaded_example"] = example
    sql = st.text_area("Query", key="sql_text", height=160, placeholder="SELECT * FROM workflows")
    run = st.button("Run", type="primary", key="run_sql")

    with st.expander("Schema of the views"):
        columns = read("view_columns", page.data_dir, views=CONTRACT_VIEWS)
        for view, view_columns in columns.groupby("view", sort=False):
            st.caption(str(view))
            st.dataframe(view_columns[["column", "type"]], hide_index=True)

    if run and sql.strip():
        try:
            result = run_read_query(sandbox_connection(page.data_dir), sql)
        except ChoreoscopeError as e:
            st.error("The console did not run this query.", icon=":material/block:")
            st.code(str(e), language=None, wrap_lines=True)
        else:
            note = f"{result.table.num_rows:,} rows in {result.elapsed_s:.2f} s"
            if result.truncated:
                note += f" (stopped at the cap of {result.row_cap:,}; add a LIMIT or a WHERE)"
            st.caption(note)
            table = with_unique_names(result.table)
            frame = as_frame(table)
            st.dataframe(frame, hide_index=True)
            parquet, as_text = parquet_bytes(table)
            left, right = st.columns(2)
            left.download_button("Download CSV", frame.to_csv(index=False), "query.csv", "text/csv")
            right.download_button(
                "Download Parquet", parquet, "query.parquet", "application/vnd.apache.parquet"
            )
            if as_text:
                right.caption(f"Written as text, which Parquet cannot hold: {', '.join(as_text)}")
