"""Writing files the user asked rpdash to save: private, atomic, never through a stray link.

Every file rpdash writes for the user (saved output, ``logs --save``, exports, the config
file) goes through here, so all of them share three promises:

- **Private.** The file is created mode 0600 whatever the umask, and an existing file's
  loose mode is not kept: the new file replaces it.
- **Atomic.** Data goes to a new temporary file in the destination's directory, is flushed
  and renamed over the destination. A failing command, a crash or an interrupt leaves the
  old file as it was (or, for :func:`private_writer`, what was written so far).
- **No stray links.** A symbolic link at the destination is refused (a link planted in a
  shared directory must not make you truncate a file you own), unless the caller means to
  write *through* it (the config file kept in a dotfiles repository): then the link's
  target is replaced and the link stays.

Nothing here imports anything heavy; errors are :class:`SaveError` with a message a person
can act on (path shown with ``~`` for the home directory).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["SaveError", "destination", "private_writer", "write_private"]


class SaveError(Exception):
    """A file could not be saved; the message names the file and the reason."""


def _shown(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if home != "/" and text.startswith(home + os.sep) else text


def destination(path: Path | str, *, through_symlink: bool = False) -> Path:
    """Check where ``path`` may be written, before anything is opened; return the real target.

    Raises SaveError for a directory, a missing parent directory, or a symbolic link (unless
    ``through_symlink``: then the link's final target is returned).
    """
    p = Path(path).expanduser()
    if p.is_symlink():
        if not through_symlink:
            raise SaveError(f"{_shown(p)} is a symbolic link; not following it (save to the file itself)")
        p = Path(os.path.realpath(p))
    if p.is_dir():
        raise SaveError(f"{_shown(p)} is a directory")
    if not p.parent.is_dir():
        raise SaveError(f"{_shown(p.parent)}: no such directory")
    return p


@contextlib.contextmanager
def private_writer(path: Path | str, *, through_symlink: bool = False,
                   encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text file to write into that replaces ``path`` when the block ends.

    The destination is checked first (see :func:`destination`), so a bad path changes
    nothing. What was written is renamed into place when the block ends, also when it ends
    by an exception or an interrupt (a followed log cut by ctrl+c keeps what came), unless
    nothing was written and the block failed: then the temporary file is removed.
    """
    target = destination(path, through_symlink=through_symlink)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise SaveError(f"{_shown(target)}: cannot write: {e.strerror or e}") from None
    committed = False
    try:
        os.fchmod(fd, 0o600)
        fh = os.fdopen(fd, "w", encoding=encoding)
    except OSError as e:
        os.close(fd)
        os.unlink(tmp)
        raise SaveError(f"{_shown(target)}: cannot write: {e.strerror or e}") from None
    failed = False
    try:
        yield fh
    except BaseException:
        failed = True
        raise
    finally:
        try:
            wrote = fh.tell() > 0
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            if wrote or not failed:
                os.replace(tmp, target)
                committed = True
                _fsync_dir(target.parent)
        except OSError as e:
            if not failed:
                raise SaveError(f"{_shown(target)}: cannot write: {e.strerror or e}") from None
        finally:
            if not committed:
                with contextlib.suppress(OSError):
                    fh.close()
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def write_private(path: Path | str, data: str | bytes, *, through_symlink: bool = False) -> Path:
    """Write ``data`` to ``path`` privately and atomically; return the file written."""
    target = destination(path, through_symlink=through_symlink)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(raw)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
        _fsync_dir(target.parent)
    except OSError as e:
        raise SaveError(f"{_shown(target)}: cannot write: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return target


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
