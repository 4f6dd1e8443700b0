"""Why the history could not be opened or written, in words a user can act on.

SQLite reports a full disk as ``SQLITE_FULL`` only when a database page cannot be added;
when the write-ahead log or its shared-memory file cannot grow (the usual case on a disk
with a few kilobytes left) it says ``SQLITE_IOERR`` ("disk I/O error"), and Python does not
expose the ``ENOSPC`` behind it. So an I/O error, or a file that cannot be opened, on a
file system with almost no free space left is reported as what it is: the disk is full.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

DISK_FULL = "disk is full"
#: Less free space than this, and an I/O error is taken for a full disk (SQLite needs a
#: 32 KiB shared-memory file and a few pages of log to write anything).
NEARLY_FULL_BYTES = 1 << 20

_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26


def os_reason(e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        return "database is read-only (permission denied)"
    if e.errno == errno.EROFS:
        return "database is read-only (read-only file system)"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return DISK_FULL
    if e.errno == errno.EISDIR:
        return "it is a directory"
    return (e.strerror or str(e)).lower()


def _primary_code(e: sqlite3.Error) -> int | None:
    code = getattr(e, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_corrupt(e: sqlite3.Error) -> bool:
    msg = str(e).lower()
    return _primary_code(e) in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
        "malformed" in msg or "not a database" in msg
    )


def free_bytes(path: Path) -> int | None:
    """Free space where ``path`` is (or would be), for this user; None when unknown."""
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return None
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may use the reserve
    return blocks * st.f_frsize


def disk_nearly_full(path: Path | None) -> bool:
    if path is None:
        return False
    free = free_bytes(path)
    return free is not None and free < NEARLY_FULL_BYTES


def sqlite_reason(e: sqlite3.Error, busy_timeout: float, path: Path | None = None) -> str:
    """What went wrong with the history at ``path`` (sqlite's own text never holds data)."""
    code = _primary_code(e)
    msg = str(e).lower()
    if code == _SQLITE_FULL or "disk is full" in msg:
        return DISK_FULL
    if code == _SQLITE_READONLY or "readonly" in msg or "read-only" in msg:
        return "database is read-only"
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in msg:
        return f"locked by another process (waited {busy_timeout:g} s)"
    if is_corrupt(e):
        return "the file is damaged or not an rpdash history (move it aside to start anew)"
    io_error = code == _SQLITE_IOERR or "i/o error" in msg
    cannot_open = code in (_SQLITE_CANTOPEN, _SQLITE_PERM) or "unable to open" in msg
    if (io_error or cannot_open) and disk_nearly_full(path):
        return DISK_FULL
    if io_error:
        return "disk I/O error"
    if cannot_open:
        return "cannot open the file (check it and its directory's permissions)"
    return msg or type(e).__name__
