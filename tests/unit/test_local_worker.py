"""The local dev worker client against the REAL runpod-python dev server.

Each server is ``python tests/fixtures/dev_handler.py --rp_serve_api`` in a subprocess on a
free loopback port (one with a normal handler, one with a generator handler; each started
once for this module, ~1.5 s). It runs offline: the worker pings RunPod only when
``RUNPOD_AI_API_KEY``/``RUNPOD_POD_ID`` are set, so they are removed from its environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpdash.api.local_worker import CAPABILITIES, LocalWorkerClient, Unsupported, probe
from rpdash.api.protocol import StreamEnd
from rpdash.core.errors import BadRequest, InvalidInput, NotFound, ServerError, Unreachable
from rpdash.core.models import JobStatus, RunRequest, StreamChunk

pytest.importorskip("runpod")

HANDLER = Path(__file__).resolve().parents[1] / "fixtures" / "dev_handler.py"
_OFFLINE_DROP = ("RUNPOD_AI_API_KEY", "RUNPOD_POD_ID", "RUNPOD_WEBHOOK_PING", "RUNPOD_ENDPOINT_ID",
                 "RUNPOD_WEBHOOK_GET_JOB", "RUNPOD_REALTIME_PORT")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*extra: str) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in _OFFLINE_DROP}
    env["RUNPOD_LOG_LEVEL"] = "ERROR"
    env["UVICORN_LOG_LEVEL"] = "warning"
    proc = subprocess.Popen(
        [sys.executable, str(HANDLER), "--rp_serve_api", "--rp_api_port", str(port),
         "--rp_api_host", "127.0.0.1", *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=HANDLER.parent,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    pytest.fail(f"the dev server exited ({proc.returncode}): {err[-500:]}")
                if time.monotonic() > deadline:
                    pytest.fail("the dev server did not open its port within 30 s")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()


@pytest.fixture(scope="module")
def dev_url() -> Iterator[str]:
    yield from _start()


@pytest.fixture(scope="module")
def gen_url() -> Iterator[str]:
    yield from _start("--generator")


def req(**inp: object) -> RunRequest:
    return RunRequest(input=dict(inp))


async def test_runsync_and_run_then_status(dev_url: str) -> None:
    async with LocalWorkerClient(dev_url) as c:
        ids: list[str] = []
        job = await c.runsync("ignored", req(x=1), on_job_id=ids.append)
        assert job.status is JobStatus.COMPLETED and job.output == {"echo": {"x": 1}}
        assert ids == [job.id] and job.id.startswith("test-")

        ref = await c.run("ignored", req(mock_return=[1, 2]))
        assert ref.status is JobStatus.IN_PROGRESS  # the dev server never says IN_QUEUE
        done = await c.status("ignored", ref.id)  # runs the job now
        assert done.status is JobStatus.COMPLETED and done.output == [1, 2]
        # the server forgot it; the client did not
        assert await c.status("ignored", ref.id) == done
        assert (await c.status_sync("ignored", ref.id)).output == [1, 2]


async def test_handler_error_unknown_job_and_bad_input(dev_url: str) -> None:
    async with LocalWorkerClient(dev_url) as c:
        failed = await c.runsync("x", req(mock_error=True))
        assert failed.status is JobStatus.FAILED and "Mock error" in (failed.error_text or "")
        with pytest.raises(NotFound, match="forgets a job"):
            await c.status("x", "test-never-seen")
        # a non-object input is refused by the server's body model (422)
        http = c._client()
        r = await http.post(dev_url + "/runsync", json={"input": 5})
        assert r.status_code == 422
        with pytest.raises(BadRequest, match="422"):
            await c._post("/runsync", b'{"input": 5}', "/runsync")


async def test_stream_on_a_generator_handler(gen_url: str) -> None:
    async with LocalWorkerClient(gen_url) as c:
        ref = await c.run("x", req(mock_return=["a", "b", "c"]))
        items = [i async for i in c.stream("x", ref.id)]
        chunks = [i.output for i in items if isinstance(i, StreamChunk)]
        end = items[-1]
        assert chunks == ["a", "b", "c"] and isinstance(end, StreamEnd)
        assert end.job.status is JobStatus.COMPLETED and end.job.output == ["a", "b", "c"]
        # runsync aggregates a generator's items
        assert (await c.runsync("x", req(mock_return=[1, 2]))).output == [1, 2]
        # a generator that raises makes the dev server answer 500 (runpod-python issue 306)
        with pytest.raises(ServerError, match="issue 306"):
            await c.runsync("x", req(mock_error=True))


async def test_stream_on_a_plain_handler_fails_clearly(dev_url: str) -> None:
    async with LocalWorkerClient(dev_url) as c:
        ref = await c.run("x", req())
        batch = await c.stream_once("x", ref.id)
        assert batch.status is JobStatus.FAILED and batch.stream == []
        job = await c.status("x", ref.id)
        assert job.status is JobStatus.FAILED and "handler must be a generator" in (job.error_text or "")


async def test_missing_operations_are_refused_before_any_request() -> None:
    c = LocalWorkerClient("http://127.0.0.1:9")  # nothing listens there: no request may go out
    assert c.capabilities == CAPABILITIES and not c.supports("cancel") and c.supports("stream")
    for call, route in ((c.cancel("e", "j"), "/cancel"), (c.retry("e", "j"), "/retry"),
                        (c.health("e"), "/health"), (c.purge_queue("e"), "/purge-queue")):  # fmt: skip
        with pytest.raises(Unsupported, match=f"the local dev worker has no {route}"):
            await call
    assert issubclass(Unsupported, InvalidInput)
    with pytest.raises(Unreachable, match="--rp_serve_api"):
        await c.runsync("e", req())
    await c.aclose()


async def test_probe_recognises_the_dev_server(dev_url: str) -> None:
    assert await probe(dev_url)
    assert not await probe("http://127.0.0.1:9", timeout=0.5)
