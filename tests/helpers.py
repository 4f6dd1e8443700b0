"""Helpers shared by several test modules (not fixtures)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

#: the uid/gid of "nobody" on Debian
NOBODY = 65534


def as_user_who_cannot_write(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``fn`` where files made read-only really are read-only. As root, file modes do not
    stop writes, so it runs in a forked child that drops to "nobody"; its JSON-able result (or
    ``{"child_error": ...}``) comes back through a pipe."""
    if os.geteuid() != 0:
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = fn()
        except BaseException as e:  # noqa: BLE001
            out = {"child_error": f"{type(e).__name__}: {e}"}
            code = 1
        os.write(w, json.dumps(out).encode())
        os.close(w)
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)
