"""RunPodClient error paths, retries, pacing and secrets, against the simulator over HTTP.

Backoffs and pacing waits go through an injected clock (``StepClock``) that returns at once
and records what was asked, so nothing here sleeps for real on a retry.
"""

from __future__ import annotations

import asyncio
import re
import socket

import httpx
import pytest

import rpdash.api.client as client_mod
from rpdash.api.client import RunPodClient
from rpdash.api.limits import (
    RETRY_AFTER_CAP,
    OpLimit,
    Pacer,
    SlidingWindow,
    parse_retry_after,
)
from rpdash.core.clock import FakeClock
from rpdash.core.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    InsecureTransport,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RpdashError,
    ServerError,
    Timeout,
    Unreachable,
)
from rpdash.core.models import JobStatus, RunRequest
from tests.unit.test_client import (
    StepClock,
    client_for,
    park_jobs,
    req,
    requests_seen,
    submitted,
)

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clear_faults_on_first_sleep(sim):
    """on_sleep hook: the first backoff clears every fault, so the next try succeeds."""

    def hook(_seconds: float) -> None:
        sim.set_faults(reset=True)

    return hook


# ---------------------------------------------------------------------------- auth


async def test_wrong_key_is_auth_error_without_the_key(sim):
    secret = "sk-live-very-secret-0123456789"
    async with RunPodClient(secret, sim.base_url) as c:
        with pytest.raises(AuthError) as exc:
            await c.health("mock")
        assert secret not in repr(c)
    msg = str(exc.value)
    assert msg == "RunPod rejected the API key (401): check RUNPOD_API_KEY"
    assert exc.value.status_code == 401
    assert secret not in msg and secret not in repr(exc.value)


@pytest.mark.parametrize("key", [None, "", "   "])
async def test_missing_key_refused_before_any_request(sim, key):
    before = requests_seen(sim)
    async with RunPodClient(key, sim.base_url) as c:
        with pytest.raises(AuthError) as exc:
            await c.run("mock", req())
    assert "no API key" in str(exc.value) and "RUNPOD_API_KEY" in str(exc.value)
    assert requests_seen(sim) == before


async def test_key_travels_as_bearer_header_only():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"jobs": {}, "workers": {}})

    async with RunPodClient("k-123", "https://api.example.invalid/v2",
                            transport=httpx.MockTransport(handler)) as c:  # fmt: skip
        await c.health("ep1")
    assert seen[0].headers["authorization"] == "Bearer k-123"
    assert "k-123" not in str(seen[0].url)


# ---------------------------------------------------------------------------- insecure transport


@pytest.mark.parametrize(
    "base", ["http://api.runpod.ai/v2", "http://10.0.0.5:8000/v2", "http://localhost.evil.com/v2"]
)
async def test_plain_http_to_remote_host_is_refused_and_nothing_is_sent(base):
    """MockTransport here only to prove no request goes out (the refusal is local)."""
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200, json={}))
    async with RunPodClient("secret-key", base, transport=transport) as c:
        with pytest.raises(InsecureTransport) as exc:
            await c.health("ep1")
        with pytest.raises(InsecureTransport):
            await c.run("ep1", req())
    host = httpx.URL(base).host
    assert f"plain http to {host}" in str(exc.value)
    assert "secret-key" not in str(exc.value)
    assert sent == []


@pytest.mark.parametrize(
    "base, allow",
    [
        ("http://api.runpod.ai/v2", True),
        ("http://localhost:9/v2", False),
        ("http://127.0.0.9:9/v2", False),
        ("http://[::1]:9/v2", False),
        ("https://api.runpod.ai/v2", False),
    ],
)
async def test_http_allowed_for_loopback_https_or_explicit_opt_in(base, allow):
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(
        lambda r: sent.append(r) or httpx.Response(200, json={"jobs": {}, "workers": {}})
    )
    async with RunPodClient("k", base, transport=transport, allow_insecure_http=allow) as c:
        await c.health("ep1")
    assert len(sent) == 1


# ---------------------------------------------------------------------------- local refusals


BAD_IDS = ["../mock", "a/b", "", "a?b=1", "a#b", "%2e%2e", "a b", "x" * 200, "\x1b[2J"]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_unsafe_ids_refused_without_a_request(sim, bad):
    before = requests_seen(sim)
    async with client_for(sim) as c:
        for call in (
            lambda: c.run(bad, req()),
            lambda: c.runsync(bad, req()),
            lambda: c.health(bad),
            lambda: c.purge_queue(bad),
            lambda: c.status("mock", bad),
            lambda: c.status_sync("mock", bad),
            lambda: c.stream_once("mock", bad),
            lambda: c.cancel("mock", bad),
            lambda: c.retry("mock", bad),
            lambda: c.status(bad, "job-1"),
        ):
            with pytest.raises(InvalidInput) as exc:
                await call()
            assert not CONTROL.search(str(exc.value))
        with pytest.raises(InvalidInput):
            async for _ in c.stream("mock", bad):
                pass
    assert requests_seen(sim) == before


async def test_oversized_payload_refused_locally(sim):
    big = "x" * 10_000_001
    before = requests_seen(sim)
    async with client_for(sim) as c:
        with pytest.raises(InvalidInput) as exc:
            await c.run("mock", req(blob=big))
        assert "/run accepts at most 10 MB" in str(exc.value)
        with pytest.raises(InvalidInput) as exc:
            await c.runsync("mock", req(blob="y" * 20_000_001))
        assert "/runsync accepts at most 20 MB" in str(exc.value)
        with pytest.raises(InvalidInput):
            await c.run("mock", req(bad=float("nan")))
    assert requests_seen(sim) == before


async def test_server_413_is_payload_too_large(sim, monkeypatch):
    # lift the local guard to see what the server says about the same body
    monkeypatch.setattr(client_mod, "RUN_MAX_BYTES", 10**9)
    async with client_for(sim) as c:
        with pytest.raises(PayloadTooLarge) as exc:
            await c.run("mock", req(blob="x" * 10_000_100))
    assert exc.value.status_code == 413
    assert "too large (413)" in str(exc.value)
    assert submitted(sim) == 0


# ---------------------------------------------------------------------------- 4xx


async def test_404_says_endpoint_or_job(sim):
    async with client_for(sim) as c:
        with pytest.raises(NotFound) as ep:
            await c.health("no-such-endpoint")
        with pytest.raises(NotFound) as ep2:
            await c.status("no-such-endpoint", "job-1")
        with pytest.raises(NotFound) as job:
            await c.status("mock", "no-such-job-u1")
        # a 404 to a job request cannot tell what is missing; /health, asked once, can
        assert await c.which_not_found("no-such-endpoint") == "endpoint"
        assert await c.which_not_found("mock") == "job"
    assert str(ep.value).startswith("endpoint no-such-endpoint not found (404)")
    assert ep.value.job_id is None and not ep.value.ambiguous
    # the simulator's body says "endpoint": rpdash does not read 404 wording (issue 14.11)
    assert str(ep2.value).startswith("job job-1 not found on endpoint no-such-endpoint (404)")
    assert "or the endpoint is unknown" in str(ep2.value) and ep2.value.ambiguous
    assert str(job.value).startswith("job no-such-job-u1 not found on endpoint mock (404)")
    assert "the job expired or never existed, or the endpoint is unknown" in str(job.value)
    assert job.value.job_id == "no-such-job-u1" and job.value.ambiguous


async def test_404_wording_is_never_read():
    """Whatever a 404 body says, a job request's 404 is reported as undecided."""
    bodies = [b'{"error": "endpoint not found"}', b'{"error": "job not found"}', b"Not Found", b""]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, content=bodies[int(request.url.path.rsplit("-", 1)[1])])

    async with RunPodClient("k", "http://127.0.0.1:1/v2", transport=httpx.MockTransport(handler)) as c:
        for i in range(len(bodies)):
            with pytest.raises(NotFound) as err:
                await c.status("ep", f"job-{i}")
            assert err.value.ambiguous and err.value.job_id == f"job-{i}", bodies[i]
            assert "the job expired or never existed, or the endpoint is unknown" in str(err.value)


async def test_400_carries_the_servers_reason(sim):
    async with client_for(sim) as c:
        job = await c.runsync("mock", req())
        with pytest.raises(BadRequest) as exc:
            await c.retry("mock", job.id)
    msg = str(exc.value)
    assert "(400)" in msg and "only FAILED or TIMED_OUT jobs can be retried" in msg
    assert exc.value.status_code == 400


# ---------------------------------------------------------------------------- 429


async def test_429_with_retry_after_is_honoured_then_succeeds(sim):
    sim.set_faults(operation="health", throttle_rate=1.0, retry_after=7)
    clock = StepClock(clear_faults_on_first_sleep(sim))
    async with client_for(sim, clock=clock) as c:
        h = await c.health("mock")
    assert h.jobs.completed == 0
    assert len(clock.slept) == 1 and 7 <= clock.slept[0] <= 7.1


async def test_429_without_retry_after_backs_off_exponentially(sim):
    sim.set_faults(operation="status", throttle_rate=1.0, retry_after=None)
    clock = StepClock()
    async with client_for(sim, clock=clock, max_retries=4) as c:
        ref = await c.run("mock", req())
        with pytest.raises(RateLimited) as exc:
            await c.status("mock", ref.id)
    assert exc.value.retry_after is None
    assert len(clock.slept) == 4
    for i, s in enumerate(clock.slept):  # 0.5, 1, 2, 4 s plus up to 0.5 s of jitter
        assert 0.5 * 2**i <= s <= 0.5 * 2**i + 0.5
    assert "slow down and retry" in str(exc.value)


async def test_retry_after_is_capped(sim):
    sim.set_faults(operation="health", throttle_rate=1.0, retry_after=3600)
    clock = StepClock(clear_faults_on_first_sleep(sim))
    async with client_for(sim, clock=clock) as c:
        await c.health("mock")
    assert clock.slept and clock.slept[0] <= RETRY_AFTER_CAP + 0.1


async def test_run_is_not_resent_after_429(sim):
    sim.set_faults(operation="run", throttle_rate=1.0, retry_after=5)
    clock = StepClock()
    async with client_for(sim, clock=clock) as c:
        with pytest.raises(RateLimited) as exc:
            await c.run("mock", req())
    assert exc.value.retry_after == 5
    assert "retry in 5 s" in str(exc.value)
    assert clock.slept == []
    assert submitted(sim) == 0


def test_parse_retry_after_forms():
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("Fri, 15 Jan 2027 08:00:30 GMT", now) == 30
    assert parse_retry_after("Fri, 15 Jan 2027 07:00:00 GMT", now) == 0  # in the past
    assert parse_retry_after("-5", now) == 0
    for junk in (None, "", "soon", "nan", "inf", "Thu, 99 Foo 2027"):
        assert parse_retry_after(junk, now) is None


# ---------------------------------------------------------------------------- 5xx, garbage


async def test_5xx_is_retried_then_succeeds(sim):
    sim.set_faults(operation="status", error_rate=1.0, error_codes=[503])
    clock = StepClock(clear_faults_on_first_sleep(sim))
    async with client_for(sim, clock=clock) as c:
        ref = await c.run("mock", req(mock_return="ok"))
        job = await c.status("mock", ref.id)
    assert job.id == ref.id
    assert len(clock.slept) == 1 and 0.5 <= clock.slept[0] <= 1.0


async def test_5xx_gives_up_after_max_retries(sim):
    sim.set_faults(operation="health", error_rate=1.0, error_codes=[502])
    clock = StepClock()
    async with client_for(sim, clock=clock, max_retries=3) as c:
        with pytest.raises(ServerError) as exc:
            await c.health("mock")
    assert len(clock.slept) == 3
    assert exc.value.status_code == 502 and "server error 502" in str(exc.value)


async def test_5xx_on_run_is_not_retried(sim):
    sim.set_faults(operation="run", error_rate=1.0, error_codes=[500])
    clock = StepClock()
    async with client_for(sim, clock=clock) as c:
        with pytest.raises(ServerError):
            await c.run("mock", req())
    assert clock.slept == [] and submitted(sim) == 0


async def test_garbage_body_is_bad_response_with_a_clean_excerpt(sim):
    sim.set_faults(operation="status", garbage_rate=1.0)
    async with client_for(sim, max_retries=0) as c:
        ref = await c.run("mock", req())
        messages = set()
        for _ in range(12):  # the simulator picks among several garbage bodies
            with pytest.raises(BadResponse) as exc:
                await c.status("mock", ref.id)
            messages.add(str(exc.value))
    assert len(messages) >= 2
    for msg in messages:
        assert msg.startswith("RunPod's answer to /status on endpoint mock is ")
        assert not CONTROL.search(msg) and len(msg) < 260


async def test_wrong_shape_is_bad_response(sim):
    sim.set_faults(operation="health", wrong_shape_rate=1.0)
    sim.set_faults(operation="status", wrong_shape_rate=1.0)
    async with client_for(sim, max_retries=0) as c:
        for _ in range(12):
            with pytest.raises(BadResponse):
                await c.health("mock")
            with pytest.raises(BadResponse):
                await c.status("mock", "any-job")


async def test_unreadable_answer_to_run_says_the_job_may_exist_and_is_not_resent(sim):
    sim.set_faults(operation="run", garbage_rate=0.5, wrong_shape_rate=0.5)
    clock = StepClock()
    async with client_for(sim, clock=clock) as c:
        for _ in range(6):
            with pytest.raises(BadResponse) as exc:
                await c.run("mock", req())
            assert "may have received it (not sent again)" in str(exc.value)
            assert exc.value.endpoint_id == "mock"
    assert clock.slept == [] and submitted(sim) == 6  # one job per request, none repeated
    # a read that changes nothing says no such thing (it is simply retried)
    sim.set_faults(reset=True)
    sim.set_faults(operation="health", garbage_rate=1.0)
    async with client_for(sim, max_retries=0) as c:
        with pytest.raises(BadResponse) as exc:
            await c.health("mock")
    assert "may have received" not in str(exc.value)


# ---------------------------------------------------------------------------- dropped connections


async def test_dropped_status_is_retried(sim):
    sim.set_faults(operation="status", drop_rate=1.0)
    clock = StepClock(clear_faults_on_first_sleep(sim))
    async with client_for(sim, clock=clock) as c:
        ref = await c.run("mock", req())
        job = await c.status("mock", ref.id)
    assert job.id == ref.id and len(clock.slept) == 1


async def test_dropped_run_is_never_sent_twice(sim):
    sim.set_faults(operation="run", drop_rate=1.0)
    sim.set_faults(operation="runsync", drop_rate=1.0)
    clock = StepClock()
    async with client_for(sim, clock=clock) as c:
        with pytest.raises(Unreachable) as exc:
            await c.run("mock", req())
        with pytest.raises(Unreachable):
            await c.runsync("mock", req())  # runsync too
    assert "dropped during /run" in str(exc.value)
    assert clock.slept == []
    assert submitted(sim) == 2  # each request created exactly one job; none was repeated


async def test_dropped_cancel_is_not_retried(sim):
    park_jobs(sim)
    clock = StepClock()
    async with client_for(sim, clock=clock) as c:
        ref = await c.run("mock", req())
        sim.set_faults(operation="cancel", drop_rate=1.0)
        with pytest.raises(Unreachable):
            await c.cancel("mock", ref.id)
    assert clock.slept == []


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def test_connection_refused_is_unreachable_and_safe_to_resend():
    """A refused connection means nothing was sent: even /run may be tried again."""
    clock = StepClock()
    base = f"http://127.0.0.1:{_closed_port()}/v2"
    async with RunPodClient("k", base, clock=clock, max_retries=2) as c:
        with pytest.raises(Unreachable) as exc:
            await c.run("mock", req())
        assert len(clock.slept) == 2
        with pytest.raises(Unreachable):
            await c.health("mock")
    assert "cannot reach 127.0.0.1" in str(exc.value)
    assert len(clock.slept) == 4


async def test_slow_answer_is_timeout_and_run_is_not_resent(sim):
    sim.set_faults(operation="run", latency=1.0)
    clock = StepClock()
    async with client_for(sim, clock=clock, timeout=0.3) as c:
        with pytest.raises(Timeout) as exc:
            await c.run("mock", req())
    assert "no answer from 127.0.0.1 to /run" in str(exc.value)
    assert clock.slept == []


# ---------------------------------------------------------------------------- pacing


async def test_pacing_keeps_purge_under_its_limit(sim_factory):
    """purge-queue: 2 per 10 s. With pacing the third call waits on the client's clock and
    the (fake-clocked) simulator never answers 429."""
    sim = sim_factory(clock=FakeClock())
    clock = StepClock(on_sleep=lambda s: sim.advance(s))
    async with client_for(sim, clock=clock) as c:
        for _ in range(3):
            assert (await c.purge_queue("mock")).removed == 0
    assert len(clock.slept) == 1 and clock.slept[0] == pytest.approx(10.0)


async def test_without_pacing_the_server_answers_429(sim_factory):
    sim = sim_factory(clock=FakeClock())
    clock = StepClock()
    async with client_for(sim, clock=clock, rate_limits=False) as c:
        await c.purge_queue("mock")
        await c.purge_queue("mock")
        with pytest.raises(RateLimited) as exc:
            await c.purge_queue("mock")
    assert exc.value.retry_after == 10
    assert clock.slept == []  # purge is not retried automatically


async def test_sliding_window_is_exact_on_the_injected_clock():
    clock = FakeClock()
    w = SlidingWindow(5, 10.0, clock)
    assert [w.reserve() for _ in range(5)] == [0, 0, 0, 0, 0]
    assert w.reserve() == pytest.approx(10.0)  # the 6th waits for the 1st to age out
    assert w.reserve() == pytest.approx(10.0)
    clock.advance_sync(4.0)
    assert w.reserve() == pytest.approx(6.0)


async def test_concurrency_caps_and_global_bound():
    """cancel is capped at 2 in flight (custom limit), everything at 3 (global bound)."""
    pacer = Pacer(FakeClock(), limits={"cancel": OpLimit(1000, 10.0, 2)}, max_concurrency=3)
    inside = {"cancel": 0, "status": 0}
    release = asyncio.Event()

    async def one(op: str) -> None:
        async with pacer.slot("ep", op):
            inside[op] += 1
            await release.wait()

    tasks = [asyncio.create_task(one("cancel")) for _ in range(4)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert inside["cancel"] == 2  # the cancel cap
    tasks += [asyncio.create_task(one("status")) for _ in range(4)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert inside == {"cancel": 2, "status": 1}  # the global bound: 3 in flight
    release.set()
    await asyncio.gather(*tasks)
    assert inside == {"cancel": 4, "status": 4}


async def test_status_family_shares_one_window():
    clock = FakeClock()
    pacer = Pacer(clock)
    assert pacer.slot("ep", "status") is pacer.slot("ep", "stream")
    assert pacer.slot("ep", "status") is pacer.slot("ep", "status-sync")
    assert pacer.slot("ep", "status") is not pacer.slot("other", "status")
    assert pacer.slot("ep", "run") is not pacer.slot("ep", "runsync")


# ---------------------------------------------------------------------------- never raw


async def test_only_rpdash_errors_escape(sim):
    """A mixed bag of faults: whatever happens, the caller sees rpdash errors only."""
    sim.set_faults(
        error_rate=0.2, throttle_rate=0.1, drop_rate=0.15, garbage_rate=0.15,
        wrong_shape_rate=0.15,
    )  # fmt: skip
    clock = StepClock()
    async with client_for(sim, clock=clock, max_retries=1) as c:
        for i in range(40):
            try:
                if i % 3 == 0:
                    await c.run("mock", req())
                elif i % 3 == 1:
                    await c.health("mock")
                else:
                    await c.status("mock", "job-x")
            except RpdashError as exc:
                assert "\n" not in str(exc) and not CONTROL.search(str(exc))
            except Exception as exc:  # pragma: no cover - the failure we look for
                pytest.fail(f"raw {type(exc).__name__} escaped: {exc}")


async def test_cancelled_status_parses(sim):
    park_jobs(sim)
    async with client_for(sim) as c:
        ref = await c.run("mock", RunRequest(input={}))
        await c.cancel("mock", ref.id)
        job = await c.status("mock", ref.id)
    assert job.status is JobStatus.CANCELLED and job.terminal
