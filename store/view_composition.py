"""Views built from many others, created with those inlined once.

DuckDB expands a view wherever a query names it. A view that reads views that read
views multiplies: the correlator's ``hops`` reads ``delivery_spans`` three times,
which reads ``workflow_spans`` three times and ``published_messages`` twice, and so
on, so that one query over ``hops`` read the store's spans ~200 times, and took
14 s to plan and run on a store of 9k spans (a minute on 1M), from ``duckdb`` or
``choreoscope.connect()``.

A view file whose first line begins ``-- composed`` is created instead as one
query: every view of its package that it reads, directly or through others,
becomes a CTE ``AS MATERIALIZED``, computed once per query, in file order. The
views that read no other view of the package (the store's spans, findings files)
stay named, so that a connection can still re-point them (a reader's scope makes
``correlated_spans`` a table of the spans it wants).

Not every view gains: a materialized CTE takes no filter from the query, so a view
that reads few others (``workflows``) is faster left as it is for a query about one
workflow.
"""

from __future__ import annotations

import re

COMPOSED_MARKER = "-- composed"
_VIEW = re.compile(r"CREATE OR REPLACE VIEW (\w+) AS\s(.*)", re.S)
_COMMENT = re.compile(r"--[^\n]*")


def compose_views(files: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``files`` (``(name, text)``, in order) with each composed view's text
    replaced by the one query that inlines the package views it reads."""
    bodies: dict[str, str] = {}
    for _, text in files:
        match = _VIEW.search(text)
        if match and text.count("CREATE ") == 1:  # a file of macros is none
            bodies[match.group(1)] = match.group(2).strip().rstrip(";").rstrip()
    reads = {
        view: {
            other
            for other in bodies
            if other != view and re.search(rf"\b{other}\b", _COMMENT.sub("", body))
        }
        for view, body in bodies.items()
    }
    order = list(bodies)
    out = []
    for name, text in files:
        match = _VIEW.search(text)
        if match and text.startswith(COMPOSED_MARKER):
            view = match.group(1)
            inlined = [v for v in order if v in _closure(view, reads) and reads[v]]
            text = text[: match.start()] + _composed(view, inlined, bodies)  # its comments
        out.append((name, text))
    return out


def _closure(view: str, reads: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [view]
    while stack:
        for other in reads[stack.pop()] - seen:
            seen.add(other)
            stack.append(other)
    return seen


def _composed(view: str, inlined: list[str], bodies: dict[str, str]) -> str:
    # each body on lines of its own: one that ends in a comment keeps its parenthesis
    ctes = ",\n".join(f"{v} AS MATERIALIZED (\n{bodies[v]}\n)" for v in inlined)
    with_clause = f"WITH {ctes}\n" if ctes else ""
    return f"CREATE OR REPLACE VIEW {view} AS\n{with_clause}SELECT * FROM (\n{bodies[view]}\n);\n"
