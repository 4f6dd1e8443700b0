"""The fault matrix of issue 4, row by row, for the headless CLI (``rpdash ...`` run
in-process against the simulator over loopback; retries wait on an InstantClock).

What every test checks, as a user sees it: the exit code, one clear line on stderr that
names the problem (and, while it retries, what rpdash does about it), no traceback, the key
nowhere, and every job id the simulator accepted in the history database."""

from __future__ import annotations

import json
import threading
import time

import pytest

from rpdash.api.limits import BACKOFF_INITIAL, BACKOFF_JITTER

from .conftest import (
    KEY,
    Relay,
    check_ids_kept,
    engine_status,
    requests_seen,
    sim_ids,
    tally,
)


def job_id_of(res) -> str:
    """The id a following command announced on stderr."""
    for ln in res.lines:
        if ln.startswith("rpdash: job ") and " submitted to endpoint " in ln:
            return ln.split()[2]
    raise AssertionError(f"no job id announced: {res.err}")


# ---------------------------------------------------------------- 1. unreachable


def test_row1_unreachable_at_start(cli):
    s = __import__("socket").socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = cli("health", "--endpoint", "mock", RUNPOD_BASE_URL=f"http://127.0.0.1:{port}/v2")
    tally("faults")
    assert r.code == 3
    assert len(r.retry_notes) == 2  # says it retries, twice, with the wait
    assert "cannot reach 127.0.0.1" in r.retry_notes[0] and "retrying in" in r.retry_notes[0]
    assert len(r.errors) == 1 and "cannot reach 127.0.0.1" in r.errors[0]
    assert "check the network or the base URL" in r.errors[0]
    # and a submit that cannot connect sent nothing, so it lost nothing
    r = cli("run", "--endpoint", "mock", RUNPOD_BASE_URL=f"http://127.0.0.1:{port}/v2")
    assert r.code == 3 and r.out == "" and "cannot reach" in r.errors[0]


def test_row1_api_goes_away_while_following_and_comes_back(cli, relay: Relay, monkeypatch):
    import rpdash.cli as cli_mod

    monkeypatch.setattr(cli_mod, "CLI_MAX_RETRIES", 6)
    # real time here: the outage lasts while the client backs off
    r0 = cli("run", "--endpoint", "mock", "--input", '{"mock_delay": 2, "mock_return": "back"}',
             RUNPOD_BASE_URL=relay.base_url)
    job = r0.out.strip()

    def outage() -> None:
        time.sleep(0.3)
        relay.down()
        time.sleep(1.0)
        relay.up()

    t = threading.Thread(target=outage)
    t.start()
    monkeypatch.setattr(cli_mod, "CLOCK", None)
    import io, contextlib  # noqa: E401

    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setenv("RUNPOD_BASE_URL", relay.base_url)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_mod.main(["status", job, "--endpoint", "mock", "--follow"])
    t.join()
    tally("faults")
    assert code == 0, err.getvalue()
    assert "status:    COMPLETED" in out.getvalue() and "back" in out.getvalue()
    notes = [ln for ln in err.getvalue().splitlines() if "; retrying in " in ln]
    assert notes and ("dropped" in notes[0] or "cannot reach" in notes[0])
    assert KEY not in err.getvalue()
    check_ids_kept([job], cli.history)


def test_row1_long_outage_keeps_the_job_id(cli, relay: Relay):
    relay_url = relay.base_url
    job_box: list[str] = []

    def cut_when_submitted(ep, op, payload):
        if op == "run":
            job_box.append(payload["id"])
        elif op == "status-sync" and job_box and relay.is_up:
            # the API goes away right after accepting the job, and stays away: cut before
            # the first status answer leaves (not on a timer, which a loaded machine can
            # beat before the job is even submitted; not after it, or it may say COMPLETED)
            relay.down()
        return None

    cli.sim.set_mutator(cut_when_submitted)
    cli.sim.set_faults(endpoint="mock", operation="status-sync", latency=0.3)
    r = cli("run", "--endpoint", "mock", "--follow", "--input", '{"mock_delay": 1}',
            RUNPOD_BASE_URL=relay_url)
    tally("faults")
    assert r.code == 3
    job = job_box[0]
    assert f"job {job} submitted to endpoint mock" in r.err  # announced at once
    assert job in r.errors[0]  # and named in the error
    check_ids_kept([job], cli.history)
    relay.up()  # back: the job can be picked up again, no restart of anything
    cli.sim.set_faults(reset=True)
    r = cli("status", job, "--endpoint", "mock", "--follow", RUNPOD_BASE_URL=relay_url)
    assert r.code == 0 and "status:    COMPLETED" in r.out


# ---------------------------------------------------------------- 2. dropped connections


def test_row2_dropped_status_answer_is_retried(cli):
    r = cli("run", "--endpoint", "mock", "--input", '{"mock_return": "x"}')
    job = r.out.strip()
    cli.sim.set_faults(endpoint="mock", operation="status", drop_rate=1.0, burst=2)
    r = cli("status", job, "--endpoint", "mock")
    tally("faults", 2)
    assert r.code == 0 and f"id:        {job}" in r.out
    assert len(r.retry_notes) == 2 and "dropped during /status" in r.retry_notes[0]


def test_row2_dropped_run_answer_is_not_resent_and_says_so(cli):
    cli.sim.set_faults(endpoint="mock", operation="run", drop_rate=1.0, burst=1)
    r = cli("run", "--endpoint", "mock")
    tally("faults")
    assert r.code == 3 and r.out == ""
    assert "dropped during /run" in r.errors[0]
    assert "may have received it (not sent again)" in r.errors[0]
    assert len(sim_ids(cli.sim, "mock")) == 1  # submitted once, never twice


@pytest.mark.parametrize("fault", ["drop_rate", "garbage_rate", "wrong_shape_rate"])
def test_row2_stream_resumes_with_no_chunk_twice_and_none_missing(cli, fault):
    items = [f"c{i:03d}" for i in range(120)]
    # every other /stream answer is damaged, from first to last
    cli.sim.set_faults(endpoint="mock-stream", operation="stream", **{fault: 0.5})
    r = cli("run", "--stream", "--endpoint", "mock-stream", "--input",
            json.dumps({"mock_return": items, "mock_delay": 0.005}))
    injected = cli.sim.call(lambda: cli.sim.faults.injected)
    tally("faults", injected)
    assert injected >= 3
    assert r.code == 0, r.err
    assert r.out.splitlines() == items  # in order, each exactly once
    job = job_id_of(r)
    check_ids_kept([job], cli.history)
    from rpdash.store.history import HistoryStore

    with HistoryStore(cli.history) as h:
        assert h.chunks(job) == items
        assert h.get(job).status.value == "COMPLETED"


# ---------------------------------------------------------------- 3. 429


def test_row3_429_with_retry_after_waits_what_it_says(cli):
    cli.sim.set_faults(endpoint="mock", operation="health", throttle_rate=1.0, retry_after=4,
                       burst=2)
    r = cli("health", "--endpoint", "mock")
    tally("faults", 2)
    assert r.code == 0 and "jobs:" in r.out
    assert len(r.retry_notes) == 2
    assert "rate limit hit on /health" in r.retry_notes[0]
    assert "retrying in 4 s (retry 1 of 2)" in r.retry_notes[0]
    assert [round(s) for s in r.clock.slept] == [4, 4]


def test_row3_429_without_retry_after_backs_off(cli):
    cli.sim.set_faults(endpoint="mock", operation="status", throttle_rate=1.0, retry_after=None,
                       burst=2)
    job = cli("run", "--endpoint", "mock").out.strip()
    r = cli("status", job, "--endpoint", "mock")
    tally("faults", 2)
    assert r.code == 0
    assert "slow down and retry" in r.retry_notes[0]
    # exponential backoff: 0.5 s then 1 s, each plus up to 0.5 s of jitter (so the second
    # wait is longer than the first, though not always by much)
    first, second = r.clock.slept[0], r.clock.slept[1]
    assert BACKOFF_INITIAL <= first < BACKOFF_INITIAL + BACKOFF_JITTER
    assert 2 * BACKOFF_INITIAL <= second < 2 * BACKOFF_INITIAL + BACKOFF_JITTER
    assert second >= first


def test_row3_long_burst_gives_up_then_recovers(cli):
    cli.sim.set_faults(endpoint="mock", operation="health", throttle_rate=1.0, retry_after=2,
                       burst=5)
    r = cli("health", "--endpoint", "mock")
    assert r.code == 3 and len(r.retry_notes) == 2
    assert "rate limit hit on /health" in r.errors[0] and "retry in 2 s" in r.errors[0]
    r = cli("health", "--endpoint", "mock")  # 2 more 429 then the burst is over
    tally("faults", 5)
    assert r.code == 0 and "jobs:" in r.out and len(r.retry_notes) == 2


def test_row3_429_on_run_is_not_a_lost_job(cli):
    cli.sim.set_faults(endpoint="mock", operation="run", throttle_rate=1.0, burst=1)
    r = cli("run", "--endpoint", "mock")
    tally("faults")
    assert r.code == 3 and "rate limit hit on /run" in r.errors[0]
    assert sim_ids(cli.sim, "mock") == []  # refused before the job existed: nothing to lose
    r = cli("run", "--endpoint", "mock")
    assert r.code == 0
    check_ids_kept(sim_ids(cli.sim, "mock"), cli.history)


# ---------------------------------------------------------------- 4. 5xx, slow


@pytest.mark.parametrize("code", [500, 502, 503])
def test_row4_5xx_burst_is_retried(cli, code):
    cli.sim.set_faults(endpoint="mock", operation="health", error_rate=1.0,
                       error_codes=(code,), burst=2)
    r = cli("health", "--endpoint", "mock")
    tally("faults", 2)
    assert r.code == 0
    assert f"server error {code} on /health" in r.retry_notes[0]
    cli.sim.set_faults(endpoint="mock", operation="health", error_rate=1.0,
                       error_codes=(code,), burst=3)
    r = cli("health", "--endpoint", "mock")
    tally("faults", 3)
    assert r.code == 3 and f"server error {code}" in r.errors[0]
    assert "usually temporary" in r.errors[0]


def test_row4_5xx_on_run_sends_nothing_twice(cli):
    cli.sim.set_faults(endpoint="mock", operation="run", error_rate=1.0, burst=1)
    r = cli("run", "--endpoint", "mock")
    tally("faults")
    assert r.code == 3 and "server error" in r.errors[0]
    assert sim_ids(cli.sim, "mock") == []


def test_row4_slow_answer_past_the_timeout(cli):
    cli.sim.set_faults(endpoint="mock", operation="health", latency=1.5, burst=1)
    r = cli("health", "--endpoint", "mock", RPDASH_REQUEST_TIMEOUT="0.5")
    tally("faults")
    assert r.code == 0 and "jobs:" in r.out
    assert "no answer from 127.0.0.1 to /health" in r.retry_notes[0]
    assert "RPDASH_REQUEST_TIMEOUT" in r.retry_notes[0]


# ---------------------------------------------------------------- 5. bad bodies


BAD_BODIES = [
    (b"<html>502 Bad Gateway</html>", "not JSON"),
    (b'{"id": "abc", "status": "IN_PR', "not JSON"),
    (b"\xff\xfe\x00garbage", "not valid UTF-8"),
    (b"[]", "unexpected shape"),
    (b'"OK"', "unexpected shape"),
    (b"null", "unexpected shape"),
    (b'{"status": "COMPLETED"}', "unexpected shape"),  # missing id
]


@pytest.mark.parametrize("body,what", BAD_BODIES)
def test_row5_malformed_status_answers(cli, body, what):
    job = cli("run", "--endpoint", "mock").out.strip()
    cli.sim.set_mutator(lambda ep, op, payload: body if op == "status" else None)
    r = cli("status", job, "--endpoint", "mock")
    tally("faults", 3)
    assert r.code == 3
    assert f"RunPod's answer to /status on endpoint mock is {what}" in r.errors[0]
    assert len(r.retry_notes) == 2
    cli.sim.set_mutator(None)
    assert cli("status", job, "--endpoint", "mock").code == 0  # recovers


@pytest.mark.parametrize(
    "change,shown",
    [
        ({"status": "PAUSED_BY_OPERATOR"}, "status:    UNKNOWN (PAUSED_BY_OPERATOR)"),
        ({"status": "RUNNING"}, "status:    IN_PROGRESS"),
        ({"status": None}, "status:    UNKNOWN"),
        ({"delayTime": 10**30, "executionTime": -5}, "status:"),
        ({"output": None, "error": None, "workerId": None}, "status:"),
        ({"delayTime": "soon", "executionTime": {"a": 1}}, "status:"),
    ],
)
def test_row5_odd_but_valid_job_fields(cli, change, shown):
    job = cli("run", "--endpoint", "mock").out.strip()
    cli.sim.set_mutator(lambda ep, op, p: {**p, **change} if op == "status" else None)
    r = cli("status", job, "--endpoint", "mock")
    tally("faults")
    assert r.code == 0, r.err
    assert shown in r.out and f"id:        {job}" in r.out


@pytest.mark.parametrize(
    "body",
    [{"jobs": None, "workers": None}, {"jobs": "many", "workers": [1]}, {"unexpected": True}],
)
def test_row5_health_of_the_wrong_shape(cli, body):
    cli.sim.set_mutator(lambda ep, op, p: body if op == "health" else None)
    r = cli("health", "--endpoint", "mock")
    tally("faults", 3)
    assert r.code == 3 and "lacks the expected fields" in r.errors[0]


def test_row5_health_with_huge_and_negative_counts(cli):
    body = {"jobs": {"inQueue": 10**40, "failed": -3, "completed": None},
            "workers": {"idle": "7", "running": 1e300, "mystery": 4}}
    cli.sim.set_mutator(lambda ep, op, p: body if op == "health" else None)
    r = cli("health", "--endpoint", "mock")
    tally("faults")
    assert r.code == 0, r.err
    assert f"in queue {10**40}" in r.out and "failed 0" in r.out and "idle 7" in r.out
    assert "-3" not in r.out  # counts are never negative


# ---------------------------------------------------------------- 6. 401, 404


def test_row6_key_rejected(cli):
    r = cli("health", "--endpoint", "mock", RUNPOD_API_KEY="rp_wrong_but_secret_777")
    tally("faults")
    assert r.code == 3 and r.retry_notes == []  # no use retrying
    assert r.errors == ["rpdash: error: RunPod rejected the API key (401): check RUNPOD_API_KEY"]
    assert "rp_wrong_but_secret_777" not in r.err + r.out


def test_row6_unknown_endpoint_and_expired_job(cli):
    r = cli("health", "--endpoint", "nosuchendpoint")
    assert r.code == 3 and "endpoint nosuchendpoint not found (404)" in r.errors[0]
    job = cli("run", "--endpoint", "mock", "--input", '{"mock_return": 1}').out.strip()
    sim = cli.sim
    deadline = time.monotonic() + 10
    while engine_status(sim, "mock", job) != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sim.call(lambda: sim.engine.set_job_ttl(sim.engine.find_job("mock", job), 0))
    time.sleep(0.1)
    r = cli("status", job, "--endpoint", "mock")
    tally("faults", 2)
    assert r.code == 3
    assert f"job {job} not found on endpoint mock (404)" in r.errors[0]
    assert "results expire 30 min after /run" in r.errors[0]
    check_ids_kept([job], cli.history)  # rpdash still knows it


# ---------------------------------------------------------------- 7. big and strange


def test_row7_ten_megabyte_output(cli):
    big = "x" * 10_500_000
    r = cli("run", "--sync", "--endpoint", "mock", "--input", json.dumps({"mock_return": big}))
    tally("faults")
    assert r.code == 0, r.err[:500]
    assert r.out == big + "\n"
    check_ids_kept([job_id_of(r)], cli.history)


def test_row7_hundred_thousand_chunks(cli):
    text = "".join(chr(0x61 + i % 26) for i in range(100_000))  # one chunk per character
    r = cli("run", "--stream", "--endpoint", "mock-stream", "--input",
            json.dumps({"mock_return": text}))
    tally("faults")
    assert r.code == 0, r.err[:500]
    lines = r.out.split("\n")
    assert len(lines) == 100_001 and "".join(lines) == text
    job = job_id_of(r)
    from rpdash.store.history import HistoryStore

    with HistoryStore(cli.history) as h:
        assert h.get(job).chunk_count == 100_000
        assert "".join(h.chunks(job)) == text


EVERY_PLANE = "".join(chr(p * 0x10000 + 0x4E2D if p == 0 else p * 0x10000 + 0x100)
                      for p in range(17)) + "\u200b\ufeff\U0001F600e\u0301"


def test_row7_unicode_of_every_plane_round_trips(cli):
    r = cli("run", "--sync", "--endpoint", "mock", "--input",
            json.dumps({"mock_return": EVERY_PLANE}))
    tally("faults")
    assert r.code == 0
    assert r.out == EVERY_PLANE + "\n"
    r = cli("run", "--sync", "--json", "--endpoint", "mock", "--input",
            json.dumps({"mock_return": EVERY_PLANE}))
    assert r.out.isascii() and json.loads(r.out)["output"] == EVERY_PLANE


def test_row7_invalid_utf8_in_an_answer(cli):
    job = cli("run", "--endpoint", "mock").out.strip()
    cli.sim.set_mutator(
        lambda ep, op, p: b'{"id": "' + job.encode() + b'", "status": "COMPLETED", '
        b'"output": "\xc3\x28 bad \xed\xa0\x80"}' if op == "status" else None
    )
    r = cli("status", job, "--endpoint", "mock")
    tally("faults")
    assert r.code == 3 and "not valid UTF-8" in r.errors[0]


# ---------------------------------------------------------------- 8. control sequences

EVIL = ("\x1b]52;c;cm0gLXJmIH4=\x07"  # OSC 52: write the clipboard
        "\x1b]0;pwned title\x07"  # OSC 0: window title
        "\x1b[2J\x1b[H"  # clear screen
        "\x9b31m"  # one-byte CSI
        "\x1bP+q\x1b\\"  # DCS
        "\u202eevil\x07\x08")


def _inert(text: str) -> None:
    for bad in ("\x1b", "\x07", "\x9b", "\x08", "\u202e"):
        assert bad not in text, repr(text[:200])


def test_row8_escapes_in_output_error_and_ids_are_inert(cli):
    r = cli("run", "--sync", "--endpoint", "mock", "--input", json.dumps({"mock_return": EVIL}))
    tally("faults")
    assert r.code == 0
    _inert(r.out + r.err)
    assert "\\x1b]52;c;" in r.out  # shown, as text
    job = cli("run", "--endpoint", "mock").out.strip()
    evil_job = {"id": job + EVIL, "status": "FAILED", "error": "boom " + EVIL,
                "output": {"k" + EVIL: EVIL}, "workerId": EVIL}
    cli.sim.set_mutator(lambda ep, op, p: evil_job if op == "status" else None)
    r = cli("status", job, "--endpoint", "mock")
    tally("faults")
    assert r.code == 1  # the answer says FAILED (README: exit 1)
    _inert(r.out + r.err)
    assert "boom \\x1b]52;c;" in r.out
    # an error message from the server
    cli.sim.set_mutator(None)
    cli.sim.set_faults(endpoint="mock", operation="cancel", error_rate=1.0, burst=1)
    cli.sim.set_mutator(lambda ep, op, p: {"error": EVIL} if op == "cancel" else None)
    r = cli("cancel", job, "--endpoint", "mock")
    _inert(r.out + r.err)
    r = cli("run", "--endpoint", "mock", "--json")
    assert r.out.isascii()


# ---------------------------------------------------------------- 9. bad user input

BAD_IDS = ["a/b", "..", "../mock", "x?y=1", "x#frag", "with space", "a%2fb", "", " ",
           "é", "a\x1b[2Jb", "-lead"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_row9_bad_ids_are_refused_before_any_request(cli, bad):
    before = requests_seen(cli.sim)
    for argv in (["status", bad, "--endpoint", "mock"], ["cancel", bad, "--endpoint", "mock"],
                 ["retry", bad, "--endpoint", "mock"]):
        r = cli(*argv)
        tally("bad_inputs")
        assert r.code == 2, (argv, r.err)
        # refused by rpdash ("invalid job id ...") or, for "-lead", by the option parser
        assert (r.errors and "invalid job id" in r.errors[0]) or "usage:" in r.err, r.err
        _inert(r.err)
    if bad.strip():
        r = cli("health", "--endpoint", bad)
        tally("bad_inputs")
        assert r.code == 2
        assert (r.errors and "not an endpoint id" in r.errors[0]) or "usage:" in r.err
    assert requests_seen(cli.sim) == before  # nothing was sent


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--input", '{"a": 1,}'], "--input is not valid JSON"),
        (["--input", "[1, 2]"], "must be a JSON object"),
        (["--input", "NaN"], "must be a JSON object"),
        (["--input", "@missing.json"], "cannot read --input missing.json"),
        (["--ttl", "5"], "--ttl must be"),
        (["--execution-timeout", "999999999999"], "--execution-timeout must be"),
        (["--webhook", "ftp://x"], "--webhook must be an http(s) URL"),
        (["--input", json.dumps({"b": "x" * 10_000_001})], "/run accepts at most 10 MB"),
    ],
)
def test_row9_bad_run_input_is_refused_before_any_request(cli, argv, fragment):
    before = requests_seen(cli.sim)
    r = cli("run", "--endpoint", "mock", *argv)
    tally("bad_inputs")
    assert r.code == 2 and fragment in r.errors[0], r.err
    assert requests_seen(cli.sim) == before


@pytest.mark.parametrize("argv", [["--ttl", "-5"], ["--execution-timeout", "0"],
                                  ["--timeout", "inf"], ["--wait", "soon"]])
def test_row9_negative_or_absurd_policy_values(cli, argv):
    before = requests_seen(cli.sim)
    r = cli("run", "--endpoint", "mock", *argv)
    tally("bad_inputs")
    assert r.code == 2 and "must be" in r.err or "not a" in r.err
    assert requests_seen(cli.sim) == before


# ---------------------------------------------------------------- 10. history trouble


def test_row10_full_disk_says_why_and_the_command_works(cli, monkeypatch):
    from rpdash.store import history

    class FullDisk(history.HistoryStore):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            self._conn.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(history, "HistoryStore", FullDisk)
    r = cli("run", "--endpoint", "mock", "--input", json.dumps({"pad": "x" * 20000}))
    tally("faults")
    assert r.code == 0
    job = r.out.strip()
    assert job in sim_ids(cli.sim, "mock")
    warn = [ln for ln in r.lines if ln.startswith("rpdash: warning:")]
    assert len(warn) == 1 and "cannot write job history at" in warn[0]
    assert "disk is full" in warn[0]
    if "the job id is recorded in the history" in warn[0]:  # the id alone still fitted
        check_ids_kept([job], cli.history)
    else:
        assert "the job is not recorded in the history" in warn[0]


def test_row10_unopenable_history_says_why(cli, tmp_path):
    (tmp_path / "data").write_text("a file where the data directory should be")
    r = cli("run", "--endpoint", "mock")
    tally("faults")
    assert r.code == 0 and r.out.strip() in sim_ids(cli.sim, "mock")
    warn = [ln for ln in r.lines if ln.startswith("rpdash: warning:")]
    assert len(warn) == 1 and "history" in warn[0]


def test_row10_every_run_mode_records_the_id(cli):
    ids = [cli("run", "--endpoint", "mock").out.strip()]
    r = cli("run", "--sync", "--endpoint", "mock", "--input", '{"mock_return": "s"}')
    ids.append(job_id_of(r))
    r = cli("run", "--follow", "--endpoint", "mock", "--input", '{"mock_return": "f"}')
    ids.append(job_id_of(r))
    r = cli("run", "--stream", "--endpoint", "mock-stream", "--input", '{"mock_return": "ab"}')
    ids.append(job_id_of(r))
    assert set(ids) == set(sim_ids(cli.sim, "mock")) | set(sim_ids(cli.sim, "mock-stream"))
    check_ids_kept(ids, cli.history)
    from rpdash.store.history import HistoryStore

    with HistoryStore(cli.history) as h:
        assert [h.get(i).mode for i in ids] == ["run", "runsync", "run", "stream"]
        assert h.get(ids[1]).output == "s" and h.get(ids[2]).output == "f"
        assert h.get(ids[3]).status.value == "COMPLETED" and h.chunks(ids[3]) == ["a", "b"]


# ---------------------------------------------------------------- 11. races


def test_row11_cancel_racing_completion_prints_what_the_api_says(cli):
    sim = cli.sim
    outcomes = set()
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
        job = cli("run", "--endpoint", "mock", "--input",
                  json.dumps({"mock_delay": delay, "mock_return": "r"})).out.strip()
        time.sleep(delay)
        r = cli("cancel", job, "--endpoint", "mock")
        tally("faults")
        assert r.code == 0
        shown = r.out.split()[1]
        # the final state printed is the one the API reports, whichever won
        final = engine_status(sim, "mock", job)
        assert shown == final, (shown, final)
        outcomes.add(final)
        s = cli("status", job, "--endpoint", "mock")
        assert f"status:    {final}" in s.out
    assert outcomes <= {"CANCELLED", "COMPLETED"}


def test_row11_purge_racing_starts(cli):
    sim = cli.sim
    sim.call(lambda: sim.engine.update_endpoint("mock", workers_max=1))
    ids = [cli("run", "--endpoint", "mock", "--input", '{"mock_delay": 0.05}').out.strip()
           for _ in range(6)]
    r = cli("purge", "--yes", "--endpoint", "mock")
    tally("faults")
    assert r.code == 0
    removed = int(r.out.split()[1])
    gone = 0
    for job in ids:
        s = cli("status", job, "--endpoint", "mock")
        if s.code == 3:
            assert "not found" in s.errors[0]
            gone += 1
        else:
            assert "status:" in s.out
    assert gone == removed  # what the screen says matches what the API did
    check_ids_kept(ids, cli.history)
