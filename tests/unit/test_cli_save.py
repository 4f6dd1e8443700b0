"""``rpdash logs --save PATH``: the options are checked and the server answers before PATH
changes; PATH becomes a new private file (0600) renamed into place; a symbolic link at PATH
is refused and its target left alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rpdash.sim.server import SimServer
from tests.unit.test_control_cli import _clean_env, run, runsync, settings  # noqa: F401


@pytest.mark.parametrize("argv, key, code", [
    (["--since", "yesterday-ish"], None, 2),        # bad option
    (["--worker", "no/such"], None, 2),             # bad id
    ([], "sk-wrong-key", 3),                        # the API refuses the key
])  # fmt: skip
def test_a_failing_logs_save_leaves_the_old_file_as_it_was(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv, key, code
) -> None:
    path = tmp_path / "kept.log"
    path.write_text("yesterday's log\n")
    st = settings(sim, tmp_path, key=key, endpoint_id="mock")
    assert run(["logs", "--save", str(path), *argv], st) == code
    assert path.read_text() == "yesterday's log\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".kept")] == []  # no temp
    err = capsys.readouterr().err
    assert err.count("rpdash: error: ") == 1 and "saved" not in err


def test_logs_save_refuses_a_symbolic_link_and_leaves_its_target(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runsync(sim)
    target = tmp_path / "precious.txt"
    target.write_text("do not touch\n")
    link = tmp_path / "logs.txt"
    link.symlink_to(target)
    st = settings(sim, tmp_path, endpoint_id="mock")
    assert run(["logs", "--save", str(link)], st) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert target.read_text() == "do not touch\n" and link.is_symlink()


def test_logs_save_over_a_0644_file_leaves_a_0600_file(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runsync(sim, mock_logs=[{"level": "info", "message": "fresh line"}])
    path = tmp_path / "shared.log"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    st = settings(sim, tmp_path, endpoint_id="mock")
    assert run(["logs", "--save", str(path)], st) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "fresh line" in text and "old" not in text.splitlines()
    n = len(text.splitlines())
    assert f"saved {n} lines to {path}" in capsys.readouterr().err
