"""What to tell a reader whose SQL over the store's views does not parse.

One contract column is a word DuckDB reserves: ``at`` (heartbeats, bus_events,
consumer_lag, dead_letters). Written bare, as in ``max(at)``, it fails with
"syntax error at or near ...", which names neither the column nor the fix.
"""

from __future__ import annotations

import re

# '...' literals and "..." identifiers, whose contents are no SQL words
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
# ``at`` as a word of its own, not qualified (``h.at`` parses) and not the keyword
# of ``ts AT TIME ZONE 'UTC'``
_BARE_AT = re.compile(r"(?<![\w.])at(?!\w)(?!\s+time\s+zone\b)", re.IGNORECASE)


def keyword_column_hint(query: str) -> str | None:
    """A line telling how to name a keyword column, when ``query`` writes one bare."""
    if _BARE_AT.search(_QUOTED.sub(" ", query)):
        return (
            'hint: the column at is a SQL keyword; write it in double quotes, "at" '
            '(as in max("at")), or qualify it (h.at)'
        )
    return None
