"""Bell and terminal notifications: exact bytes, safe text, tmux passthrough, no API key."""

from __future__ import annotations

import io

import pytest

from rpdash.services.notify import notification_bytes, sanitize, send, tmux_wrap

KEY = "rp_ABCDEFGHIJKLMNOPQRSTUVWX1234"


def test_osc9_and_osc777_bytes() -> None:
    assert notification_bytes("rpdash", "queue 50", style="osc9", bell=False, tmux=False) == \
        b"\x1b]9;rpdash: queue 50\x07"  # fmt: skip
    assert notification_bytes("rpdash", "queue 50", style="osc777", bell=False, tmux=False) == \
        b"\x1b]777;notify;rpdash;queue 50\x07"  # fmt: skip
    both = notification_bytes("t", "b", tmux=False)
    assert both == b"\x1b]9;t: b\x07\x1b]777;notify;t;b\x07\x07"  # bell last
    assert notification_bytes("t", "b", style="bell", tmux=False) == b"\x07"


def test_text_cannot_break_out_of_the_sequence() -> None:
    evil = "a\x07b\x1b]0;pwned\x1b\\c\x9cd\ne;f"
    out = notification_bytes(evil, evil, style="osc777", bell=False, tmux=False)
    assert out.startswith(b"\x1b]777;notify;") and out.endswith(b"\x07")
    inner = out[len(b"\x1b]777;notify;"):-1]
    assert b"\x1b" not in inner and b"\x07" not in inner and "\x9c".encode() not in inner
    assert inner.count(b";") == 1  # only the title/body separator
    assert sanitize("x;y\r\nz\tw") == "x,y z w"


def test_length_is_capped() -> None:
    s = sanitize("x" * 500, limit=50)
    assert len(s) == 50 and s.endswith("…")
    out = notification_bytes("T" * 300, "B" * 1000, style="osc777", bell=False, tmux=False, limit=100)
    title, body = out[len(b"\x1b]777;notify;"):-1].decode().split(";")
    assert len(title) == 25 and len(body) == 100


def test_api_key_is_masked() -> None:
    out = notification_bytes(f"key {KEY}", f"sent with {KEY}", secret=KEY, tmux=False)
    assert KEY.encode() not in out and b"***" in out
    split = KEY[:10] + "\x07" + KEY[10:]  # a control character inside the key does not hide it
    assert KEY not in sanitize(split, secret=KEY) and KEY[:10] not in sanitize(split, secret=KEY)


def test_tmux_passthrough(monkeypatch: pytest.MonkeyPatch) -> None:
    seq = b"\x1b]9;hi\x07"
    assert tmux_wrap(seq) == b"\x1bPtmux;\x1b\x1b]9;hi\x07\x1b\\"
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    assert notification_bytes("hi", style="osc9") == b"\x1bPtmux;\x1b\x1b]9;hi\x07\x1b\\\x07"
    monkeypatch.delenv("TMUX")
    assert notification_bytes("hi", style="osc9", bell=False) == seq


def test_send_writes_to_binary_text_and_buffered_streams() -> None:
    raw = io.BytesIO()
    n = send(raw, "t", "b", style="osc9", bell=False, tmux=False)
    assert raw.getvalue() == b"\x1b]9;t: b\x07" and n == len(raw.getvalue())
    text = io.StringIO()
    send(text, "t", "b", style="osc9", bell=False, tmux=False)
    assert text.getvalue() == "\x1b]9;t: b\x07"
    wrapped = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    wrapped.write("before ")
    send(wrapped, "t", style="bell", tmux=False)
    assert wrapped.buffer.getvalue() == b"before \x07"  # type: ignore[attr-defined]
    closed = io.BytesIO()
    closed.close()
    send(closed, "t")  # ignored, no exception
