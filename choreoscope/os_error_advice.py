"""What to do about an OS error a command met on a path: the path, and the fix.

``Permission denied: .../nats`` or ``No space left on device`` alone left the user to
guess which file, and what to do about it. The front door turns such an error into
one line that names the path (the store when the error names none) and the fix.
"""

from __future__ import annotations

import errno
import getpass
import os
from pathlib import Path

from choreoscope.settings import SETTINGS

_NO_ACCESS = {errno.EACCES, errno.EPERM}
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def explain_os_error(e: OSError, *, data: Path | str | None) -> str:
    """One line for ``e``: what failed where, and what to do. ``data`` is the store
    the command was given, if any: a path in it can also be moved with ``--data``."""
    reason = e.strerror or str(e)
    path = os.fsdecode(e.filename) if e.filename is not None else None
    in_store = data is not None and (path is None or _within(Path(path), Path(data)))
    where = path or (str(data) if data is not None else None)
    if where is None:
        return reason
    another_store = (
        f", or pass --data with a directory it can write (or set {SETTINGS['data'].env})"
        if in_store
        else ""
    )
    if e.errno in _NO_SPACE:
        return (
            f"no space left on the device holding {where} ({os.strerror(e.errno)}): free "
            "space there "
            f"(`df -h {where}` shows how much is left), then run the command again"
        )
    if e.errno in _NO_ACCESS:
        access = "read and write access" if in_store else "access"
        # a folder that could not be made: the one to fix is the one it goes in
        refusing = _existing(Path(where))
        return (
            f"{reason}: {where}: give the user running choreoscope ({_user()}) {access} to "
            f"{refusing} (see its owner and mode with `ls -ld {refusing}`; chown or chmod "
            f"it){another_store}"
        )
    if e.errno == errno.EROFS:
        return (
            f"{reason}: {where}: it is on a read-only file system; remount it writable"
            f"{another_store}"
        )
    return f"{reason}: {where}"


def _existing(path: Path) -> Path:
    """``path``, or its nearest ancestor that exists."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return path


def _within(path: Path, folder: Path) -> bool:
    try:
        return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))
    except (OSError, ValueError):
        return False


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a name (a container's)
        return f"uid {os.getuid()}"
