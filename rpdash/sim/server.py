"""The simulator over HTTP: RunPod's serverless v2 routes on a lean hand-routed ASGI app
(app.py: data plane in dataplane.py, control plane in control.py, admin routes in
admin.py, shared plumbing in http.py), served by uvicorn (httptools) in a background
thread (:class:`SimServer`) or in the foreground (:func:`serve`, used by ``rpdash sim``).

Routes (``/v2/{endpoint_id}/...``; runpod-api.md sections 3 and 6)
------------------------------------------------------------------
=========================  =========  ===========================================================
``run``                    POST       ``{id, status: "IN_QUEUE"}``
``runsync``                POST       ``?wait`` ms (1000..300000, default 90000): the job
                                      object if it ends in time, else ``{id, status}``
``status/{id}``            GET, POST  job object; ``?ttl`` ms (see engine.py)
``status-sync/{id}``       GET, POST  long poll until terminal; ``?wait`` default 90000
``stream/{id}``            GET, POST  ``{status, stream: [{output}, ...]}``; draining; long
                                      poll while nothing is new, ``?wait`` default 9000
``cancel/{id}``            POST       ``{id, status}``
``retry/{id}``             POST       ``{id, status: "IN_QUEUE"}``; 400 unless FAILED/TIMED_OUT
``purge-queue``            POST       ``{removed, status: "completed"}``
``health``                 GET        ``{jobs{...}, workers{...}}``
=========================  =========  ===========================================================

Choices where runpod-api.md says [unconfirmed]
----------------------------------------------
- Error bodies are JSON ``{"error": "<one-line message>"}`` for every error status.
- Order of checks: unknown path -> 404; injected latency / 429 / 5xx faults (they model
  the gateway, so they come first); missing or wrong key -> 401 (``Authorization: Bearer
  KEY`` or bare ``Authorization: KEY``, any case for "Bearer"; ``api_key=None`` turns auth
  off); wrong method -> 405 with ``Allow``; unknown endpoint -> 404; rate limit -> 429 with
  ``Retry-After`` (limits.py); body too large -> 413; bad body or parameter -> 400; unknown
  or expired job -> 404.
- Sizes: MB = 10^6 bytes. /run bodies over 10 000 000 bytes and /runsync bodies over
  20 000 000 bytes get 413 (the body is read and discarded first, up to 100 MB, so the
  client sees the answer; beyond that the connection is closed after the 413).
- ``wait`` values outside 1000..300000 are clamped (not refused); a non-integer ``wait`` or
  ``ttl`` is a 400. Waits are in simulated time (a time scale shortens them).
- status-sync defaults to ``wait=90000`` like runsync. stream holds 9 s by default: the
  docs say "about 10 s", and runpod-python reads /stream with a 10 s read timeout, so a
  hold of 10 s or more would make it fail.
- A long poll whose client disconnects stops waiting and takes no chunks, so a reader that
  gave up does not lose chunks. Likewise a /stream answer damaged by a ``drop``, ``garbage``
  or ``wrong_shape`` fault does not consume its chunks: the next /stream hands them out.
- cancel/retry/purge ignore any body. Unknown top-level body keys are ignored.
- Admin routes (same auth) for tests and the demo, not part of RunPod's API:
  ``/_sim/faults`` (GET, POST, DELETE), ``/_sim/scenario`` (GET, POST ``{"name"}``),
  ``/_sim/endpoints`` (GET, POST config), ``/_sim/endpoints/{id}`` (GET, POST changes,
  DELETE), ``/_sim/endpoints/{id}/workers`` (GET), ``/_sim/endpoints/{id}/logs``
  (GET ``?worker=&tail=``), ``/_sim/rate-limits`` (GET, POST), ``/_sim/stats`` (GET),
  ``/_sim/control`` (GET, POST knobs of the control plane; see control.py).

Control plane on the same port (control.py): ``/v2/serverless``, ``/v2/serverless/{id}``,
``/v2/serverless/{id}/workers``, ``/v2/serverless/{id}/workers/{worker}/logs`` (SSE) and
``/graphql``; a control client uses :attr:`SimServer.url` as its base (RunPod's is
``https://api.runpod.io``). ``serverless`` is therefore not usable as an endpoint id.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from rpdash.core.clock import Clock, RealClock, ScaledClock
from rpdash.core.errors import ConfigError
from rpdash.sim.app import SimApp, create_app
from rpdash.sim.control import ControlPlane
from rpdash.sim.engine import Engine
from rpdash.sim.faults import Faults, FaultSpec
from rpdash.sim.scenarios import Scenario, apply_scenario, get_scenario

log = logging.getLogger("rpdash.sim")

_DROP_MESSAGE = "ASGI callable returned without completing response."


class _DropFilter(logging.Filter):
    """Hide uvicorn's complaint about the responses we cut on purpose (drop faults)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROP_MESSAGE


_drop_filter_installed = False


def _install_drop_filter() -> None:
    global _drop_filter_installed
    if not _drop_filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_DropFilter())
        _drop_filter_installed = True


# ---------------------------------------------------------------------------- hosting


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _make_clock(clock: Clock | None, time_scale: float) -> Clock:
    if clock is not None:
        return clock
    if time_scale <= 0:
        raise ConfigError("time scale must be > 0")
    return RealClock() if time_scale == 1.0 else ScaledClock(time_scale)


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, addr = infos[0]
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then,
    # and without it every answer (headers and body are two writes) waits ~40 ms (Nagle).
    sock = socket.socket(family, socktype, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (optional, faster) unless RPDASH_SIM_LOOP=asyncio."""
    if os.environ.get("RPDASH_SIM_LOOP", "").lower() != "asyncio":
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - depends on the environment
            pass
    return asyncio.new_event_loop()


class _Host:
    """uvicorn serving one app on one pre-bound socket, with a fast, clean shutdown."""

    def __init__(self, app: SimApp, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        self.stop_event: asyncio.Event | None = None

    async def run(self, on_ready: Callable[[], None]) -> None:
        import uvicorn

        _install_drop_filter()
        config = uvicorn.Config(
            self.app, lifespan="off", http="httptools", ws="none", log_level="warning",
            access_log=False, log_config=None, server_header=False, date_header=False,
            timeout_keep_alive=30,
        )  # fmt: skip
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        self.stop_event = asyncio.Event()
        await server.startup(sockets=[self.sock])
        engine = self.app.engine
        engine.attach(asyncio.get_running_loop())
        on_ready()
        try:
            await self.stop_event.wait()
        finally:
            engine.close()  # long polls answer now
            for srv in server.servers:
                srv.close()
            for conn in list(server.server_state.connections):
                conn.shutdown()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 2.0
            while server.server_state.tasks and loop.time() < deadline:
                await asyncio.sleep(0.005)
            for t in list(server.server_state.tasks):
                t.cancel()
            for conn in list(server.server_state.connections):
                conn.transport.close()
            await asyncio.sleep(0)


class SimServer:
    """The simulator in a background thread with its own event loop. Context manager.

    ``engine`` and ``faults`` live on that loop: change them through :meth:`call` /
    :meth:`set_faults` (before :meth:`start` they may be changed directly).

    With ``clock=FakeClock()`` simulated time moves only through :meth:`advance`. Give the
    simulator a FakeClock of its own: ``advance`` moves that clock from the server's thread,
    so a FakeClock shared with code running on another event loop would wake that loop's
    sleepers from the wrong thread.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, api_key: str | None = "sim-key",
                 scenario: str = "default", clock: Clock | None = None, seed: int = 0,
                 time_scale: float = 1.0, rate_limits: bool | None = None,
                 strict_policy: bool = True, allow_remote: bool = False,
                 pickup: str | None = None) -> None:  # fmt: skip
        if not allow_remote and not _is_loopback(host):
            raise ConfigError(
                f"refusing to serve the simulator on {host}: not a loopback address "
                "(pass allow_remote=True to do it anyway)"
            )
        self.host = host
        self.port = port
        self.api_key = api_key
        self.clock = _make_clock(clock, time_scale)
        self.engine = Engine(self.clock, seed, strict_policy=strict_policy)
        self.faults = Faults(seed)
        self.scenario: Scenario = apply_scenario(self.engine, self.faults, get_scenario(scenario),
                                                 rate_limits=rate_limits, pickup=pickup)  # fmt: skip
        self.app = create_app(self.engine, self.faults, api_key, scenario=self.scenario.name)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._host: _Host | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2"

    @property
    def control_url(self) -> str:
        """Base of the control plane (REST v2 under ``/v2/serverless``, ``/graphql``): the
        same origin as the data plane here; ``https://api.runpod.io`` at RunPod."""
        return self.url

    @property
    def control(self) -> ControlPlane:
        """The control plane's knobs (change them through :meth:`call`)."""
        return self.app.control

    @property
    def endpoints(self) -> list[str]:
        """Endpoint ids served now (the scenario's, plus/minus admin changes)."""
        return list(self.call(self.engine.endpoint_ids))

    def start(self) -> SimServer:
        if self._thread is not None:
            return self
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._host = _Host(self.app, sock)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,),
                                        name=f"rpdash-sim:{self.port}", daemon=True)  # fmt: skip
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("simulator did not start within 15 s")
        if self._error is not None:
            self._thread.join(1)
            self._thread = None
            raise RuntimeError(f"simulator failed to start: {self._error}") from self._error
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = _new_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        assert self._host is not None
        try:
            loop.run_until_complete(self._host.run(ready.set))
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            log.exception("simulator thread failed")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._host.sock.close()
                loop.close()
                ready.set()

    def stop(self) -> None:
        thread, loop, host = self._thread, self._loop, self._host
        if thread is None:
            return
        if loop is not None and host is not None and host.stop_event is not None and thread.is_alive():
            try:
                loop.call_soon_threadsafe(host.stop_event.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ control

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the server's loop thread and return its result
        (awaited if it is awaitable). Before start, runs it here."""
        loop = self._loop
        if loop is None or not self.running:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                raise RuntimeError("cannot await on a simulator that is not running")
            return result
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)

        async def runner() -> Any:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(runner(), loop).result(30)

    def set_faults(self, *, endpoint: str | None = None, operation: str | None = None,
                   reset: bool = False, **fields: Any) -> None:  # fmt: skip
        """Thread-safe. ``reset`` clears every fault first; the keyword fields (see
        :class:`~rpdash.sim.faults.FaultSpec`) then replace the spec for (endpoint,
        operation) (``None`` = any). ``set_faults(reset=True)`` turns faults off."""

        def apply() -> None:
            if reset:
                self.faults.clear()
            if fields or not reset:
                self.faults.set(FaultSpec.from_dict(fields), endpoint=endpoint, operation=operation)

        self.call(apply)

    def set_mutator(self, fn: Callable[[str, str, Any], Any] | None) -> None:
        """Thread-safe: install (or remove, with None) the ``Faults.mutate`` test hook."""

        def apply() -> None:
            self.faults.mutate = fn

        self.call(apply)

    def set_rate_limit(self, operation: str, count: int, window: float = 10.0,
                       concurrent: int | None = None) -> None:  # fmt: skip
        """Thread-safe: change one operation's limit (and turn limits on)."""

        def apply() -> None:
            self.engine.limiter.set_limit(operation, count, window, concurrent)
            self.engine.limiter.enabled = True

        self.call(apply)

    def load_scenario(self, name: str, *, rate_limits: bool | None = None,
                      pickup: str | None = None) -> Scenario:  # fmt: skip
        """Thread-safe: reset the engine and faults to another scenario (jobs are lost);
        ``pickup`` sets every endpoint's pickup order (scenarios.pickup_orders())."""
        sc: Scenario = self.call(apply_scenario, self.engine, self.faults, name,
                                 rate_limits=rate_limits, pickup=pickup)  # fmt: skip
        self.scenario = sc
        self.app.scenario = sc.name
        return sc

    def advance(self, seconds: float) -> None:
        """With a FakeClock: move simulated time, running what falls due, and let the
        answers that were waiting go out."""

        async def run() -> None:
            self.engine.advance(seconds)
            for _ in range(3):
                await asyncio.sleep(0)

        self.call(run)


# ---------------------------------------------------------------------------- foreground


def serve(host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          scenario: str = "default", seed: int = 0, time_scale: float = 1.0, *,
          allow_remote: bool = False, rate_limits: bool | None = None,
          quiet: bool = False, pickup: str | None = None) -> None:  # fmt: skip
    """Serve the simulator in the foreground until Ctrl+C / SIGTERM (``rpdash sim``).

    ``pickup`` (None = each endpoint's own, "fifo" by default) is the pickup order of
    every endpoint: one of ``rpdash.sim.pickup_orders()``.

    Raises ConfigError for a non-loopback host without ``allow_remote``, an unknown
    scenario or pickup order, a bad time scale or a port that cannot be bound.
    """
    import signal

    sim = SimServer(host=host, port=port, api_key=api_key, scenario=scenario, seed=seed,
                    time_scale=time_scale, rate_limits=rate_limits,
                    allow_remote=allow_remote, pickup=pickup)  # fmt: skip
    sock = _bind(host, port)
    sim.port = sock.getsockname()[1]
    hosted = _Host(sim.app, sock)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def ready() -> None:
            if quiet:
                return
            auth = "key required" if api_key else "no auth"
            scale = f", time x{time_scale:g}" if time_scale != 1 else ""
            if not _is_loopback(host):
                auth += ", REACHABLE FROM OTHER HOSTS"
            print(
                f"rpdash sim: {sim.base_url} (scenario {sim.scenario.name}: "
                f"{', '.join(sim.endpoints)}; {auth}{scale}; control plane at "
                f"{sim.control_url}/v2/serverless and /graphql). Ctrl+C stops.",
                flush=True,
            )

        run_task = asyncio.ensure_future(hosted.run(ready))
        while hosted.stop_event is None and not run_task.done():
            await asyncio.sleep(0.01)

        def stop() -> None:
            if hosted.stop_event is not None:
                hosted.stop_event.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                pass
        await run_task

    loop = _new_loop()
    try:
        loop.run_until_complete(main())
    except KeyboardInterrupt:  # pragma: no cover - signal handler normally catches it
        pass
    finally:
        sock.close()
        loop.close()


__all__ = ["SimApp", "SimServer", "create_app", "serve"]
