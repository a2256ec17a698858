"""Running the correlator's statement folders (``learn_sql``, ``detect_sql``).

Each folder holds one statement per ``.sql`` file, run in file-name order. Values
are bound as named parameters (``$now``); each statement receives only the ones it
names, as DuckDB requires.

Statements are parsed once (``parsed``): DuckDB parses a statement's text on every
execute, and for the detection statements on a tick's few thousand spans that was
a fifth of their cost.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import duckdb


@functools.cache
def parsed(sql: str) -> duckdb.Statement:
    """The one statement of ``sql``, parsed once; ``con.execute`` runs it as it would
    the text."""
    (one,) = duckdb.extract_statements(sql)
    return one


@functools.cache
def folder_statements(folder: str) -> tuple[tuple[str, str, frozenset[str]], ...]:
    """``(file name, text, parameter names)`` of each file in ``correlator/<folder>``."""
    root = resources.files("correlator") / folder
    files = sorted((f for f in root.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    out = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        out.append((f.name, text, frozenset(parsed(text).named_parameters)))
    return tuple(out)


def run_folder(con: duckdb.DuckDBPyConnection, folder: str, parameters: dict[str, Any]) -> None:
    for _name, text, names in folder_statements(folder):
        con.execute(parsed(text), {k: parameters[k] for k in names})


@functools.cache
def statement(name: str) -> str:
    """The text of ``correlator/engine_sql/<name>.sql``: one statement of the engine's own."""
    return (resources.files("correlator") / "engine_sql" / f"{name}.sql").read_text(
        encoding="utf-8"
    )


def first_column(
    con: duckdb.DuckDBPyConnection,
    query: str | duckdb.Statement,
    parameters: dict[str, object] | None = None,
) -> list[Any]:
    """The first column of ``query``'s rows (ids to pass on as a constant list)."""
    return [value for (value, *_) in con.execute(query, parameters).fetchall()]
