"""Saving a job's output to a file (``ctrl+s`` in the output pane).

Through :func:`rpdash.files.write_private`: mode 0600, atomic, never through a symbolic
link. A name already taken (a file or a link) is never overwritten: ``-1``, ``-2``, ...
are tried instead. Failures are :class:`~rpdash.files.SaveError` with one readable line.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from rpdash.core.records import JobRecord
from rpdash.files import SaveError, write_private
from rpdash.tui.widgets.output import export_text


def save_output(rec: JobRecord, chunks: list[Any]) -> Path:
    """Write a job's output to ``./rpdash-<id>.txt`` (or the data dir when the current
    directory is not writable). Raises SaveError."""
    from rpdash import paths

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in rec.job_id)[:80]
    content = export_text(rec, chunks)
    candidates = [Path.cwd()]
    with contextlib.suppress(Exception):
        candidates.append(paths.data_dir())
    last_error: SaveError | None = None
    for folder in candidates:
        if not os.access(folder, os.W_OK):
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                continue
        for n in range(0, 100):
            path = folder / (f"rpdash-{safe}.txt" if n == 0 else f"rpdash-{safe}-{n}.txt")
            if path.is_symlink() or path.exists():
                continue
            try:
                return write_private(path, content)
            except SaveError as exc:
                last_error = exc
                break
    raise last_error or SaveError("no writable folder (current directory or data dir)")
