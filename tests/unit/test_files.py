"""rpdash.files: every saved file is private, atomic and never written through a stray link."""

from __future__ import annotations

import os
import stat

import pytest

from rpdash.files import SaveError, private_writer, write_private


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_new_file_is_0600_whatever_the_umask(tmp_path):
    old = os.umask(0o000)
    try:
        p = write_private(tmp_path / "out.txt", "hello")
    finally:
        os.umask(old)
    assert p.read_text() == "hello"
    assert mode(p) == 0o600


def test_existing_loose_file_is_replaced_by_a_private_one(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    os.chmod(p, 0o644)
    write_private(p, b"new")
    assert p.read_text() == "new"
    assert mode(p) == 0o600


def test_symlink_at_destination_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(victim)
    with pytest.raises(SaveError, match="symbolic link"):
        write_private(link, "oops")
    with pytest.raises(SaveError, match="symbolic link"):
        with private_writer(link) as fh:
            fh.write("oops")
    assert victim.read_text() == "precious"
    assert link.is_symlink()


def test_through_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "dotfiles" / "config.toml"
    target.parent.mkdir()
    target.write_text("a = 1\n")
    link = tmp_path / "config.toml"
    link.symlink_to(target)
    write_private(link, "a = 2\n", through_symlink=True)
    assert link.is_symlink()
    assert target.read_text() == "a = 2\n"
    assert mode(target) == 0o600


def test_missing_directory_and_directory_destination_are_refused(tmp_path):
    with pytest.raises(SaveError, match="no such directory"):
        write_private(tmp_path / "nope" / "x", "x")
    with pytest.raises(SaveError, match="is a directory"):
        write_private(tmp_path, "x")


def test_writer_interrupted_keeps_what_was_written(tmp_path):
    p = tmp_path / "log.txt"
    p.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with private_writer(p) as fh:
            fh.write("line 1\n")
            raise KeyboardInterrupt
    assert p.read_text() == "line 1\n"
    assert mode(p) == 0o600
    assert [x.name for x in tmp_path.iterdir()] == ["log.txt"]


def test_writer_failing_before_writing_leaves_the_old_file(tmp_path):
    p = tmp_path / "log.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with private_writer(p):
            raise RuntimeError("bad arguments")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["log.txt"]
