"""The Streamlit dashboard: stalled workflows, where and why, and SQL over the store.

    choreoscope dashboard --data choreoscope-data     # serves dashboard/app.py

``app.py`` routes between the pages in ``views/``; every page reads through
``correlator.queries`` (``data.read``, cached for a few seconds) and renders span
data as text only. ``sql_sandbox`` is the SQL console's read-only connection.
Nothing imports this package.
"""
