"""Which expected consumer groups a message of a run still waits on: what the
dashboard's timeline and ``choreoscope show`` both say under a stuck run.

Read from a row of ``workflow_messages`` (its ``expected_consumers``, ``received_by``
and ``model_known``) and the run's hops (who attempted what). The message's outcome
alone does not tell: a fan-out message that some groups processed reads
"processed", yet the run waits on the group that never got it (``orders.created``
processed by fraud and inventory, never received by payment).
"""

from __future__ import annotations

from collections.abc import Iterable


def awaited_by(message: object, *, attempted: Iterable[tuple[object, object]]) -> list[str]:
    """One label per expected consumer group that never attempted ``message``:
    ``payment (not received)``, or ``payment (received, never finished)`` when it did
    receive it (a hung handler). ``attempted`` holds ``(message_id, consumer group)``
    of each hop of the run. Empty until a model says which groups are expected."""
    if not getattr(message, "model_known", False):
        return []
    message_id = getattr(message, "message_id", None)
    tried = {group for m, group in attempted if m == message_id}
    expected = getattr(message, "expected_consumers", None)
    received = getattr(message, "received_by", None)
    received = set() if received is None else {str(c) for c in received}
    return [
        f"{c} (received, never finished)" if str(c) in received else f"{c} (not received)"
        for c in ([] if expected is None else expected)
        if c not in tried
    ]
