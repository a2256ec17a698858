"""What a statement a reader typed would do, for the read-only SQL surfaces
(``choreoscope sql`` and the dashboard's console).

DuckDB types ``EXPLAIN ANALYZE COPY ... TO 'file'`` as an EXPLAIN, yet it runs the
COPY it explains. So an EXPLAIN is judged by the statement it explains, found after
any comments before the keyword (``-- why\\nEXPLAIN ...`` is an EXPLAIN too).
"""

from __future__ import annotations

import re

import duckdb

# comments and blank space before the first keyword
_LEADING = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_EXPLAIN = re.compile(r"explain(?:\s+analyze)?\b", re.IGNORECASE)


def statement_kind(statement: duckdb.Statement) -> duckdb.StatementType | None:
    """``statement``'s type; for an EXPLAIN, the type of the one statement it
    explains. None when that cannot be told (an EXPLAIN with options, as
    ``EXPLAIN (FORMAT json) ...``): callers refuse it."""
    if statement.type != duckdb.StatementType.EXPLAIN:
        return statement.type
    text = statement.query
    keyword = _EXPLAIN.match(text, _LEADING.match(text).end())
    if keyword is None:
        return None
    try:
        explained = duckdb.extract_statements(text[keyword.end() :])
    except duckdb.Error:
        return None
    if len(explained) != 1:
        return None
    return statement_kind(explained[0])


def first_keyword(text: str) -> str:
    """The statement's first word, as typed after any comments (``INSTALL`` where
    DuckDB's type says LOAD), upper-cased; empty for a text of comments alone."""
    words = text[_LEADING.match(text).end() :].split(maxsplit=1)
    return words[0].upper() if words else ""
