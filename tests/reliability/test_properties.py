"""Issue 4, "Property tests": random and mutated API answers fed to the client, and random
action sequences played on the dashboard against the simulator. No unhandled exception,
and the invariants hold: a terminal job never goes back to running on screen (unless the
user retried it), counts are never negative, every submitted id is in the history.

Example counts are kept small (the suite must stay fast); the seeds vary per run."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from rpdash.api.client import RunPodClient
from rpdash.core.errors import RpdashError
from rpdash.core.models import Health, Job, JobStatus, RunRequest
from rpdash.services.events import ConnState
from rpdash.tui.app import RpdashApp
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from tests.tui.conftest import started, wait_for

from .conftest import KEY, check_ids_kept, sim_ids, tally
from .test_matrix_tui import SIZE
from .test_matrix_tui import settings as app_settings

# ---------------------------------------------------------------- the client

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
                      st.floats(allow_nan=False), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=12)

GOOD = {
    "status": {"id": "j-1", "status": "IN_PROGRESS", "delayTime": 12, "executionTime": 40,
               "output": {"p": 1}, "workerId": "w1"},
    "health": {"jobs": {"completed": 1, "failed": 0, "inProgress": 2, "inQueue": 3,
                        "retried": 0},
               "workers": {"idle": 1, "running": 2, "initializing": 0, "ready": 1,
                           "throttled": 0, "unhealthy": 0}},
    "stream": {"status": "IN_PROGRESS", "stream": [{"output": "a"}, {"output": {"b": 2}}]},
    "run": {"id": "j-2", "status": "IN_QUEUE"},
}
STATUSES = ["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT",
            "RUNNING", "ERROR", "", "in_progress", "💥"]


@st.composite
def mutated(draw: Any, op: str) -> Any:
    """A documented answer with keys dropped, replaced by random JSON, or status garbled."""
    body = json.loads(json.dumps(GOOD[op]))
    for _ in range(draw(st.integers(0, 4))):
        target = body
        if isinstance(target, dict) and target and draw(st.booleans()):
            k = draw(st.sampled_from(sorted(target)))
            if isinstance(target[k], dict) and target[k] and draw(st.booleans()):
                target = target[k]
                k = draw(st.sampled_from(sorted(target)))
            action = draw(st.sampled_from(["drop", "replace", "status", "null"]))
            if action == "drop":
                target.pop(k, None)
            elif action == "null":
                target[k] = None
            elif action == "status" and "status" in body:
                body["status"] = draw(st.one_of(st.sampled_from(STATUSES), json_leaf))
            else:
                target[k] = draw(json_value)
    return body


raw_bytes = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_value.map(lambda v: json.dumps(v).encode()),
)
status_codes = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 405, 409,
                                413, 422, 429, 500, 502, 503, 504, 599])


def answer(op: str):
    return st.tuples(status_codes, st.one_of(mutated(op), raw_bytes),
                     st.one_of(st.none(), st.sampled_from(["0", "1", "-3", "soon", "1e9",
                                                          "Wed, 21 Oct 2015 07:28:00 GMT"])))


@settings(max_examples=120, deadline=None)
@given(op=st.sampled_from(["status", "health", "stream", "run"]), data=st.data())
def test_client_survives_any_answer(op: str, data: Any) -> None:
    code, body, retry_after = data.draw(answer(op))
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"retry-after": retry_after} if retry_after else {}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, content=content, headers=headers)

    async def go() -> Any:
        async with RunPodClient(KEY, "https://api.runpod.ai/v2", max_retries=0,
                                transport=httpx.MockTransport(handler)) as c:
            if op == "status":
                return await c.status("ep", "j-1")
            if op == "health":
                return await c.health("ep")
            if op == "stream":
                return await c.stream_once("ep", "j-1")
            return await c.run("ep", RunRequest(input={"a": 1}))

    tally("faults")
    try:
        result = asyncio.run(go())
    except RpdashError as e:  # the only kind allowed, one line, no key
        msg = str(e)
        assert msg and "\n" not in msg and KEY not in msg
        assert "\x1b" not in msg
        return
    assert 200 <= code < 300
    if isinstance(result, Health):
        for part in (result.jobs, result.workers):
            assert all(v >= 0 for v in part.model_dump().values() if isinstance(v, int))
    if isinstance(result, Job):
        assert isinstance(result.status, JobStatus) and isinstance(result.id, str)


# ---------------------------------------------------------------- the dashboard

ACTIONS = st.sampled_from([
    "submit_run", "submit_fail", "submit_stream", "submit_sync", "cancel_last", "cancel_all",
    "retry_failed", "purge", "fault_5xx", "fault_429", "fault_drop", "fault_garbage",
    "faults_off", "pause_resume", "watch_bad", "wait",
])


class Watcher:
    """Sees every record the job table is given (not only the last), and what it shows."""

    def __init__(self, table: JobTable) -> None:
        self.terminal_seen: dict[str, JobStatus] = {}
        self.violations: list[str] = []
        self.retried: set[str] = set()
        apply = table.apply

        def spy(records: Any) -> None:
            records = list(records)
            for rec in records:
                self.check(rec.job_id, rec.status, rec.terminal)
            apply(records)

        table.apply = spy  # type: ignore[method-assign]

    def check(self, job_id: str, status: JobStatus, terminal: bool) -> None:
        if terminal:
            self.terminal_seen[job_id] = status
        elif job_id in self.terminal_seen and job_id not in self.retried:
            self.violations.append(f"{job_id}: {self.terminal_seen[job_id]} -> {status}")


def counts_on_screen(dash: Any) -> list[int]:
    out = []
    for ep, view in dash.query_one(HealthTable).views.items():
        h = view.event.health if view.event else None
        if h is not None:
            out += [v for v in (*h.jobs.model_dump().values(), *h.workers.model_dump().values())
                    if isinstance(v, int)]
        row = dash.query_one(HealthTable).get_row(ep)
        for cell in row[2:]:
            text = str(cell).strip()
            if text.lstrip("-").isdigit():
                out.append(int(text))
    return out


async def play(sim: Any, actions: list[str], tmp: Path) -> None:
    app = RpdashApp(app_settings(sim, tmp), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        s = dash.session
        watcher = Watcher(dash.query_one(JobTable))
        mine: list[str] = []
        errors: list[str] = []
        for act in actions:
            tally("faults" if act.startswith("fault") else "bad_inputs" if act == "watch_bad"
                  else "faults", 0)
            try:
                if act == "submit_run":
                    mine.append((await s.submit("mock", {"mock_delay": 0.1})).job_id)
                elif act == "submit_fail":
                    mine.append((await s.submit("mock", {"mock_error": True})).job_id)
                elif act == "submit_stream":
                    mine.append((await s.submit("mock-stream", {"mock_return": ["a", "b", "c"],
                                                                 "mock_delay": 0.05},
                                                mode="stream")).job_id)
                elif act == "submit_sync":
                    mine.append((await s.submit("mock", {"mock_return": 1},
                                                mode="runsync")).job_id)
                elif act == "cancel_last" and mine:
                    await s.cancel(mine[-1:])
                elif act == "cancel_all" and mine:
                    await s.cancel(list(mine))
                elif act == "retry_failed":
                    failed = [j for j in mine if s.jobs.get(j) and
                              s.jobs[j].status in (JobStatus.FAILED, JobStatus.TIMED_OUT)]
                    if failed:
                        watcher.retried.add(failed[0])
                        await s.retry(failed[0])
                elif act == "purge":
                    await s.purge("mock")
                elif act == "fault_5xx":
                    sim.set_faults(error_rate=0.5, burst=6)
                    tally("faults")
                elif act == "fault_429":
                    sim.set_faults(throttle_rate=0.5, retry_after=1, burst=6)
                    tally("faults")
                elif act == "fault_drop":
                    sim.set_faults(drop_rate=0.5, burst=6)
                    tally("faults")
                elif act == "fault_garbage":
                    sim.set_faults(garbage_rate=0.3, wrong_shape_rate=0.2, burst=6)
                    tally("faults")
                elif act == "faults_off":
                    sim.set_faults(reset=True)
                elif act == "pause_resume":
                    s.pause()
                    await pilot.pause(0.1)
                    s.resume()
                elif act == "watch_bad":
                    dash.run_command("watch ../x mock")
                    tally("bad_inputs")
                elif act == "wait":
                    await pilot.pause(0.4)
            except RpdashError as e:
                errors.append(str(e))  # refused or failed with a message: allowed
            await pilot.pause(0.05)
            assert not watcher.violations, watcher.violations
            assert all(n >= 0 for n in counts_on_screen(dash))
        sim.set_faults(reset=True)
        # let everything settle, then the invariants once more
        for j in mine:
            await wait_for(pilot, lambda j=j: s.jobs[j].terminal, timeout=40,
                           what=f"{j} to end")
        assert not watcher.violations, watcher.violations
        assert all(n >= 0 for n in counts_on_screen(dash))
        for j in mine:  # what the screen ends with is what the API says
            rec = dash.query_one(JobTable).records[j]
            if not rec.expired:
                eng = sim.call(lambda j=j: (x := sim.engine.find_job(
                    rec.endpoint_id, j)) and x.status)
                assert eng is None or rec.status.value == eng, (j, rec.status, eng)
        assert not app.internal_errors
        health = dash.query_one(HealthTable)
        await wait_for(pilot, lambda: health.views["mock"].event is not None
                       and health.views["mock"].event.state in (ConnState.OK,
                                                                ConnState.RATE_LIMITED,
                                                                ConnState.RETRYING),
                       what="health answers again")
    submitted = sim_ids(sim, "mock") + sim_ids(sim, "mock-stream")
    # A /run whose answer was cut on the wire (an injected drop) created a job whose id
    # never reached rpdash: nobody can know it. rpdash must have said so, and not resent.
    unknowable = [j for j in submitted if j not in mine]
    said = [e for e in errors if "may have received it (not sent again)" in e]
    assert len(said) >= len(unknowable), (unknowable, errors)
    UNKNOWABLE.extend(unknowable)
    tally("unknowable", len(unknowable))
    check_ids_kept([j for j in submitted if j in mine], tmp / "history.db")


#: ids of jobs whose /run answer an injected drop destroyed (reported by the suite)
UNKNOWABLE: list[str] = []


@settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(actions=["submit_run", "fault_drop", "submit_fail", "submit_stream", "retry_failed",
                  "faults_off", "cancel_all"])
# found by hypothesis: a 200 with an HTML page or the wrong JSON shape answering /run and
# /runsync (the jobs exist; their ids are unknowable, and rpdash must say so)
@example(actions=["watch_bad", "fault_garbage", "cancel_all", "cancel_last", "submit_sync",
                  "purge", "submit_run", "submit_run"])
@given(actions=st.lists(ACTIONS, min_size=3, max_size=8))
def test_random_action_sequences_on_the_dashboard(sim_factory, actions: list[str]) -> None:
    sim = sim_factory(api_key=KEY, seed=len(actions))
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(play(sim, actions, Path(tmp)))
