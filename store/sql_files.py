"""Loading `.sql` files that define views over a store.

Each package that owns views keeps them in its own ``sql/`` folder, one object
per file (or the few macros of one rule), applied in file-name order. ``{store}``
in a file stands for the store's absolute path: DDL cannot bind parameters, so the
loader substitutes it, quoted as a SQL string literal's content. A view built
from many others can be marked to be created with them inlined once
(``store.view_composition``).
"""

from __future__ import annotations

import functools
from importlib import resources

from store.layout import StoreLayout
from store.view_composition import compose_views


def sql_files(package: str) -> list[tuple[str, str]]:
    """``(file name, text)`` of every ``.sql`` file in ``<package>/sql``, in order,
    composed views composed (``store.view_composition``)."""
    return list(_package_files(package))


@functools.cache
def _package_files(package: str) -> tuple[tuple[str, str], ...]:
    folder = resources.files(package) / "sql"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return tuple(compose_views([(f.name, f.read_text(encoding="utf-8")) for f in files]))


def view_statements(package: str, layout: StoreLayout) -> list[str]:
    """The statements of a package's SQL files, with ``{store}`` substituted."""
    store = str(layout.root).replace("'", "''")
    return [text.replace("{store}", store) for _, text in sql_files(package)]
