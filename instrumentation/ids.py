"""Message and workflow ids: 128 random bits as 32 hex digits.

They come from a generator of our own, seeded from os.urandom: the global one may
be seeded by the application (repeating ids across runs, which JetStream would
drop as duplicates), and a syscall per id cost more than the rest of the id.
"""

from __future__ import annotations

import os
import random

_id_source = random.Random()
os.register_at_fork(after_in_child=_id_source.seed)  # a forked worker must not repeat ours


def new_id() -> str:
    """A random 128-bit id as 32 hex digits (message and workflow ids)."""
    return f"{_id_source.getrandbits(128):032x}"
