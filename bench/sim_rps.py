"""Requests per second the simulator serves on one core.

The server (a SimServer, rate limits off) runs in a child process pinned to CPU 0; this
process generates load from CPU 1 (when there is one) with raw asyncio HTTP/1.1 keep-alive
connections, one request in flight per connection, and counts complete answers.

    .venv/bin/python bench/sim_rps.py                 # /health and /status, 5 s each
    .venv/bin/python bench/sim_rps.py --seconds 10 --conns 32 --ops health
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "bench-key"


def _pin(cpu: int) -> str:
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if cpu < len(cpus):
            os.sched_setaffinity(0, {cpus[cpu]})
            return f"cpu {cpus[cpu]}"
        return "unpinned (not enough cpus)"
    except (AttributeError, OSError):
        return "unpinned"


def serve_child() -> None:
    """Child: start the simulator, print port and a job id, wait for stdin to close."""
    where = _pin(0)
    sys.path.insert(0, ROOT)
    from rpdash.sim.server import SimServer

    sim = SimServer(api_key=KEY, rate_limits=False).start()
    job = sim.call(sim.engine.submit, "mock", {"input": {"mock_return": {"ok": True}}})
    print(json.dumps({"port": sim.port, "job": job.id, "pinned": where}), flush=True)
    sys.stdin.read()
    sim.stop()


async def _client(port: int, request: bytes, stop_at: list[float], counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at[0]:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
            await reader.readexactly(length)
            counts[0] += 1
    finally:
        writer.close()


async def _load(port: int, path: str, seconds: float, conns: int) -> float:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {KEY}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    # warm up
    warm = [time.perf_counter() + 0.5]
    await asyncio.gather(*(_client(port, request, warm, [0]) for _ in range(conns)))
    counts = [0]
    t0 = time.perf_counter()
    stop_at = [t0 + seconds]
    await asyncio.gather(*(_client(port, request, stop_at, counts) for _ in range(conns)))
    return counts[0] / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--ops", default="health,status", help="comma list of health,status")
    ap.add_argument("--server-loop", choices=("uvloop", "asyncio"), default="uvloop",
                    help="event loop of the server (uvloop when installed, or stock asyncio)")
    ap.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_child:
        serve_child()
        return

    env = dict(os.environ, RPDASH_SIM_LOOP=args.server_loop)
    child = subprocess.Popen([sys.executable, __file__, "--serve-child"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    info = json.loads(child.stdout.readline())
    where = _pin(1)
    try:
        import uvloop

        loop_name = "uvloop"
        runner = uvloop.run
    except ImportError:
        loop_name = "asyncio"
        runner = asyncio.run
    print(f"server: SimServer pid {child.pid} ({info['pinned']}, {args.server_loop}); load: {args.conns} keep-alive "
          f"connections from this process ({where}, {loop_name}); {args.seconds:g} s per op")  # fmt: skip
    paths = {"health": "/v2/mock/health", "status": f"/v2/mock/status/{info['job']}"}
    try:
        for op in args.ops.split(","):
            rps = runner(_load(info["port"], paths[op.strip()], args.seconds, args.conns))
            print(f"{op.strip():8s} {rps:10,.0f} req/s")
    finally:
        child.stdin.close()
        child.wait(10)


if __name__ == "__main__":
    main()
