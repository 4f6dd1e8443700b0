"""Incident drills (issue 15, "Tests"): one per simulator scenario, on the simulator's clock.

Each drill starts the scenario, waits for the verdict in the endpoint's health row (within 30
simulated seconds), checks that the alert fires exactly once (one bell, one desktop
notification, the flash line), pulls the lever an operator would pull FROM THE KEYBOARD, and
checks in the simulator that the incident ended, with the recovery line and the "recovered"
notification (no second bell). The app runs on the simulator's clock, so the alert hold
times (``verdict_for``, ``recover_for``) are simulated seconds, as a real incident's are.
The worker-cap drill lives in test_drill_worker_cap.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input

from rpdash.services.alerts import AlertRules
from rpdash.sim.server import SimServer
from rpdash.tui.app import RpdashApp
from rpdash.tui.screens.confirm import ConfirmScreen
from rpdash.tui.screens.drain import DrainScreen
from rpdash.tui.widgets.bars import StatusBar
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer

from .conftest import started, text_of, wait_for
from .test_incidents import bells, incident_sim, osc, row_text  # noqa: F401 (a fixture)

SIZE = (200, 48)
#: one alert per incident: the verdict rule, held 10 simulated seconds before it fires and
#: 10 clear before it recovers (the other rules would be second alerts of the same incident)
RULES = AlertRules(verdict_for=10, recover_for=10,
                   disabled=["unhealthy", "queue", "oldest_queued", "failure_rate", "p90_delay"])


def app_for(sim: SimServer, settings_for: Any, ep: str, **kw: Any) -> RpdashApp:
    """The dashboard on ``ep`` alone, its alert hold times on the simulator's clock."""
    settings = settings_for(sim, endpoint_id=ep, endpoints={}, alerts=RULES, **kw)
    app = RpdashApp(settings, strict_errors=True)
    app.hold_clock = sim.clock  # type: ignore[attr-defined]
    return app


def flashes(app: RpdashApp) -> str:
    return " | ".join(app.dashboard.query_one(StatusBar).flashes)


async def see_verdict(sim: SimServer, app: RpdashApp, pilot: Any, ep: str, words: str,
                      since: float | None = None) -> str:
    """Wait for ``words`` in the row of ``ep``: within 30 simulated seconds of ``since``
    (when the incident began; now by default)."""
    start = sim.clock.now() if since is None else since
    await wait_for(pilot, lambda: words in row_text(app.dashboard, ep), timeout=8,
                   what=f"{words!r} in the row ({row_text(app.dashboard, ep)[:60]})")
    took = sim.clock.now() - start
    assert took <= 30, f"verdict after {took:.0f} simulated seconds"
    assert words.split(" (")[0] in text_of(app.dashboard.query_one(StatusBar))
    return row_text(app.dashboard, ep)


async def alert_fired_once(sim: SimServer, app: RpdashApp, pilot: Any, ep: str, *words: str) -> None:
    """One bell, one desktop notification naming the verdict (one of ``words``: the one
    shown when it fired), the flash line; then no second one while the incident lasts (20
    more simulated seconds)."""
    await wait_for(pilot, lambda: bells(app), timeout=8, what="the bell")
    bar = app.dashboard.query_one(StatusBar)
    fired = osc(app)
    assert len(fired) == 1
    said = next((w for w in words if w in fired[0]), None)
    assert said is not None, fired[0]
    assert any(f.startswith(f"⚠ alert: {ep}: {said}") for f in bar.flashes), bar.flashes
    until = sim.clock.now() + 20
    await wait_for(pilot, lambda: sim.clock.now() >= until, timeout=5, what="20 s more")
    assert len(bells(app)) == 1 and len(osc(app)) == 1, "one alert per incident"


async def recovered(app: RpdashApp, pilot: Any, ep: str) -> None:
    """The recovery line, the "recovered" notification, no second bell."""
    bar = app.dashboard.query_one(StatusBar)
    await wait_for(pilot, lambda: any(f.startswith(f"✓ recovered: {ep}") for f in bar.flashes),
                   timeout=10, what="the recovery line")
    assert "rpdash: recovered" in osc(app)[-1]
    assert len(bells(app)) == 1, "recovery does not ring"
    assert len([w for w in osc(app) if "rpdash: recovered" not in w]) == 1


async def command(pilot: Any, text: str) -> None:
    await pilot.press("colon", *text, "enter")


async def drain_by_keyboard(app: RpdashApp, pilot: Any, ep: str) -> None:
    """``:drain``, the endpoint's name typed key by key, enter."""
    await command(pilot, "drain")
    modal = await wait_for(pilot, lambda: isinstance(app.screen, DrainScreen) and app.screen.is_mounted
                           and app.screen, what="the drain dialog")
    assert modal.focused is modal.query_one("#purge-name", Input)
    await pilot.press(*[{"-": "minus"}.get(ch, ch) for ch in ep], "enter")
    await wait_for(pilot, lambda: f"drained {ep}" in flashes(app), timeout=8, what="the drain result")


async def restore_by_keyboard(app: RpdashApp, pilot: Any, ep: str) -> None:
    """``:restore``, then ``y`` on the before -> after confirm."""
    await command(pilot, "restore")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen.is_mounted,
                   what=f"the restore confirm ({flashes(app)})")
    await pilot.press("y")
    await wait_for(pilot, lambda: f"restored {ep}" in flashes(app), timeout=8, what="the restore result")


async def scale_max_by_keyboard(app: RpdashApp, pilot: Any, ep: str, wmax: int) -> None:
    """``s`` on the endpoint's row, tab to max workers, type it, enter, ``y``."""
    from rpdash.tui.screens.scale import ScaleScreen

    await pilot.press("alt+1", "s")
    form = await wait_for(pilot, lambda: isinstance(app.screen, ScaleScreen) and app.screen.is_mounted
                          and app.screen, what="the scale form")
    for _ in range(4):
        if getattr(form.focused, "id", None) == "sc-max":
            break
        await pilot.press("tab")
    assert form.focused.id == "sc-max"
    await pilot.press("end", *["backspace"] * 8, *str(wmax), "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the scale confirm")
    await pilot.press("y")
    await wait_for(pilot, lambda: f"-{wmax} (read back)" in flashes(app), timeout=8, what=f"the read-back ({flashes(app)})")


def sim_state(sim: SimServer, ep: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        e = sim.engine.endpoint(ep)
        states = [w.state for w in e.workers.values()]
        return {"max": e.cfg.workers_max, "min": e.cfg.workers_min, "in_queue": e.in_queue,
                "unhealthy": states.count("unhealthy"), "throttled": states.count("throttled"),
                "workers": len(states),
                "serving": sum(1 for s in states if s in ("idle", "running")),
                "completed": e.completed}

    return sim.call(read)


# ------------------------------------------------------------------ crashloop


@pytest.mark.parametrize("incident_sim", ["crashloop"], indirect=True)
async def test_crashloop_drill_drain_then_restore_after_the_fix(incident_sim, settings_for):
    """Every new worker of ``broken`` fails its start-up checks. The lever is the drain
    (``:drain``, the name typed): a crash loop burns GPU time on workers that never serve
    and RunPod keeps starting new ones; scaling up would only crash more. Once RunPod's
    operator (the test) has fixed the image, ``:restore`` puts the scale back and the new
    workers serve the queue."""
    sim = incident_sim
    app = app_for(sim, settings_for, "broken")
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        began = sim.call(lambda: sim.engine.endpoint("broken").created_at)  # the app's start counts
        row = await see_verdict(sim, app, pilot, "broken", "crash-looping", since=began)
        assert "unhealthy" in row
        await alert_fired_once(sim, app, pilot, "broken", "crash-looping")
        await pilot.press("alt+1")
        await drain_by_keyboard(app, pilot, "broken")
        # max 0 stops the workers at once (the unhealthy ones too): no crash loop any more
        drained = sim_state(sim, "broken")
        assert drained["max"] == 0 and drained["workers"] == 0
        assert "removed " in flashes(app)  # the queue was purged (new jobs still arrive)
        # what the operator asked for, not an incident: no alert while it lasts
        await wait_for(pilot, lambda: "drained (:restore)" in row_text(app.dashboard, "broken"), timeout=5,
                       what="drained in the row")
        assert "crash-looping" not in row_text(app.dashboard, "broken")
        # RunPod's operator fixes the image; the scale goes back from the keyboard
        sim.call(lambda: sim.engine.update_endpoint("broken", start_failure=0.0))
        await restore_by_keyboard(app, pilot, "broken")
        assert sim_state(sim, "broken")["max"] > 0
        # RunPod's crash-loop cut-back had halved max workers (4 -> 1) before the drain
        # saved it: raise it back with the scale form
        await scale_max_by_keyboard(app, pilot, "broken", 4)
        await recovered(app, pilot, "broken")
        # the new workers serve: the queue drains, nothing turns unhealthy
        await wait_for(pilot, lambda: sim_state(sim, "broken")["completed"] > 0
                       and sim_state(sim, "broken")["in_queue"] == 0, timeout=8, what="the queue served")
        assert sim_state(sim, "broken")["unhealthy"] == 0
        assert "crash-looping" not in row_text(app.dashboard, "broken")


# ------------------------------------------------------------------ bad-release


@pytest.mark.parametrize("incident_sim", ["bad-release"], indirect=True)
async def test_bad_release_drill_drain_then_restore_after_the_rollback(incident_sim, settings_for):
    """At 30 s a release of ``api`` fails its start-up checks; the outdated workers still
    serve, but each is replaced by a crashing one as the rollout goes on. The lever is the
    drain (``:drain``, the name typed): it stops the rollout from starting ever more
    crashing workers and holds new work back until the release is fixed; an operator
    rolls back the image (the test, as RunPod's console would) and ``:restore`` puts the
    scale back, on healthy workers of the new release."""
    sim = incident_sim
    app = app_for(sim, settings_for, "api")
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await wait_for(pilot, lambda: sim.call(lambda: sim.engine.endpoint("api").version) > 1, timeout=6,
                       what="the release")
        released = sim.call(lambda: sim.engine.endpoint("api").releases[-1]["at"])
        await see_verdict(sim, app, pilot, "api", "bad release", since=released)
        await alert_fired_once(sim, app, pilot, "api", "bad release")
        assert "outdated serving)" in osc(app)[0]  # the row's column is narrower
        await pilot.press("alt+1")
        await drain_by_keyboard(app, pilot, "api")
        drained = sim_state(sim, "api")
        assert drained["max"] == 0 and drained["unhealthy"] == 0
        # what the operator asked for, not an incident: no alert while it lasts
        await wait_for(pilot, lambda: "drained (:restore)" in row_text(app.dashboard, "api"), timeout=5,
                       what="drained in the row")
        # the release is rolled back (a new, good version); the scale goes back
        sim.call(lambda: sim.engine.release("api", note="rollback to api:1.9"))
        await restore_by_keyboard(app, pilot, "api")
        assert sim_state(sim, "api")["max"] >= 1
        if sim_state(sim, "api")["max"] < 3:  # RunPod's crash-loop cut-back came first
            await scale_max_by_keyboard(app, pilot, "api", 3)
        await recovered(app, pilot, "api")
        await wait_for(pilot, lambda: sim_state(sim, "api")["serving"] >= 2, timeout=5,
                       what="new workers serving")
        end = sim_state(sim, "api")
        assert end["unhealthy"] == 0
        assert "bad release" not in row_text(app.dashboard, "api")


# ------------------------------------------------------------------ gpu-shortage


async def purge_by_keyboard(app: RpdashApp, pilot: Any, ep: str) -> int:
    """``ctrl+d`` on the endpoints pane, the name typed, enter; the jobs removed."""
    from rpdash.tui.screens.confirm import PurgeScreen

    await pilot.press("alt+1", "ctrl+d")
    await wait_for(pilot, lambda: isinstance(app.screen, PurgeScreen) and app.screen.is_mounted,
                   what="the purge dialog")
    await pilot.press(*[{"-": "minus"}.get(ch, ch) for ch in ep], "enter")
    await wait_for(pilot, lambda: app.dashboard.last_purge and app.dashboard.last_purge[0] == ep,
                   timeout=8, what="the purge result")
    return app.dashboard.last_purge[1]


@pytest.mark.parametrize("incident_sim", ["gpu-shortage"], indirect=True)
async def test_gpu_shortage_drill_purge_the_queue_until_gpus_are_back(incident_sim, settings_for):
    """No GPU of ``sdxl``'s type is free: its workers stay THROTTLED and jobs pile up.
    Scaling up adds more throttled workers and a drain would only stop the ones waiting
    for a GPU; the lever is the purge (``ctrl+d`` on the endpoints pane, the name typed):
    the queued requests are stale by the time GPUs come back (their callers gave up) and
    would all start at once. RunPod's capacity comes back (the simulator's knob) and new
    requests are served."""
    sim = incident_sim
    app = app_for(sim, settings_for, "sdxl")
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        began = sim.call(lambda: sim.engine.endpoint("sdxl").created_at)  # the app's start counts
        row = await see_verdict(sim, app, pilot, "sdxl", "no GPUs", since=began)
        assert "throttled)" in row
        await alert_fired_once(sim, app, pilot, "sdxl", "no GPUs")
        short = sim_state(sim, "sdxl")
        assert short["in_queue"] > 0 and short["serving"] == 0
        removed = await purge_by_keyboard(app, pilot, "sdxl")
        assert removed >= short["in_queue"]
        sim.call(lambda: sim.engine.set_capacity("sdxl", 0))  # GPUs are back
        await recovered(app, pilot, "sdxl")
        end = sim_state(sim, "sdxl")
        assert end["throttled"] == 0 and end["completed"] > 0
        await wait_for(pilot, lambda: sim_state(sim, "sdxl")["in_queue"] == 0, timeout=5,
                       what="the queue served")
        assert "no GPUs" not in row_text(app.dashboard, "sdxl")


# ------------------------------------------------------------------ retry-storm


@pytest.mark.parametrize("incident_sim", ["retry-storm"], indirect=True)
async def test_retry_storm_drill_cancel_the_poison_job(incident_sim, settings_for):
    """One job of ``oom`` kills every worker it meets and RunPod puts it back each time.
    Its id is in the worker logs; the operator watches it (``:watch ID``), sees the verdict
    name it, and cancels it from the job list (``ctrl+d``, confirm): more workers would
    only die on it too, and a drain would stop every other job. (The scenario's background
    jobs that crash now and then are switched off: the drill's incident is the poison job.)"""
    sim = incident_sim
    sim.call(lambda: sim.engine.remove_traffic("oom"))
    poison = sim.call(lambda: next(iter(sim.engine.endpoint("oom").jobs)))
    app = app_for(sim, settings_for, "oom")
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await command(pilot, f"watch {poison}")
        await wait_for(pilot, lambda: poison in app.dashboard.query_one(JobTable).records,
                       what="the watched job")
        row = await see_verdict(sim, app, pilot, "oom", "retry storm")
        assert f"job {poison[:8]}" in row
        # the alert may have fired on the unhealthy workers before the job was watched:
        # one alert all the same, the verdict named it better since
        await alert_fired_once(sim, app, pilot, "oom", "retry storm", "crash-looping")
        jobs = app.dashboard.query_one(JobTable)
        assert "↻" in text_of(jobs)
        await pilot.press("alt+2")
        await wait_for(pilot, lambda: jobs.current_job_id == poison, what="the cursor on the job")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the cancel confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: sim.call(lambda: sim.engine.endpoint("oom").jobs[poison].status)
                       == "CANCELLED", timeout=5, what="CANCELLED in the simulator")
        retries = sim.call(lambda: sim.engine.endpoint("oom").jobs[poison].retries)
        await recovered(app, pilot, "oom")
        # no job re-running: the retries stopped, no worker is unhealthy
        assert sim.call(lambda: sim.engine.endpoint("oom").jobs[poison].retries) == retries
        assert sim_state(sim, "oom")["unhealthy"] == 0
        assert "retry storm" not in row_text(app.dashboard, "oom")


# ------------------------------------------------------------------ stuck-progress


def stuck_in_sim(sim: SimServer) -> list[str]:
    """The jobs of ``render`` the simulator keeps IN_PROGRESS after they finished."""
    return sim.call(lambda: [j.id for j in sim.engine.endpoint("render").jobs.values()
                             if j.stuck and j.status == "IN_PROGRESS"])


async def watch_the_stuck_jobs(sim: SimServer, app: RpdashApp, pilot: Any) -> list[str]:
    """Clients report jobs that never end: ``:watch ID`` each; rpdash shows them COMPLETED*.
    The scenario's traffic stops at the first stuck job (a late update leaves 30 % of the
    jobs stuck: the drill deals with the ones there are once the jobs running have ended)."""
    await wait_for(pilot, lambda: stuck_in_sim(sim), timeout=10, what="a stuck job in the simulator")
    sim.call(lambda: sim.engine.remove_traffic("render"))
    await wait_for(pilot, lambda: sim_state(sim, "render")["in_queue"] == 0
                   and sim.call(lambda: sim.engine.endpoint("render").in_progress) == 0,
                   timeout=5, what="the jobs running ended")
    await pilot.pause(0.1)  # a late progress update lands 0.05 simulated s after the end
    stuck = stuck_in_sim(sim)
    jobs = app.dashboard.query_one(JobTable)
    for job in stuck:
        await command(pilot, f"watch {job}")
        await wait_for(pilot, lambda: (r := jobs.records.get(job)) is not None and r.stuck_progress,
                       timeout=8, what="the job recognised as stuck")
    return stuck


async def cursor_on(app: RpdashApp, pilot: Any, job: str) -> None:
    jobs = app.dashboard.query_one(JobTable)
    await pilot.press("alt+2")
    for _ in range(10):
        if jobs.current_job_id == job:
            return
        await pilot.press("down" if jobs.cursor_row < jobs.get_row_index(job) else "up")
    await wait_for(pilot, lambda: jobs.current_job_id == job, what="the cursor on the job")


@pytest.mark.parametrize("incident_sim", ["stuck-progress"], indirect=True)
async def test_stuck_progress_drill_cancel_clears_the_job_at_runpod(incident_sim, settings_for):
    """A late progress update leaves a finished job of ``render`` IN_PROGRESS for good. A
    client reports it; the operator watches it (``:watch ID``): rpdash recognises it, shows
    it COMPLETED* with its output, and the verdict and one alert say so. The lever: to
    RunPod it is an IN_PROGRESS job, so ``ctrl+d`` on it offers RunPod's cancel (the
    confirm says so); the simulator shows it CANCELLED, no job of the endpoint is stuck any
    more, rpdash keeps it COMPLETED* with its output and a note, and the incident recovers.
    (A moment's queue while the first workers boot is no "max workers reached" alert.)"""
    sim = incident_sim
    app = app_for(sim, settings_for, "render")
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        stuck = await watch_the_stuck_jobs(sim, app, pilot)
        job = stuck[0]
        row = await see_verdict(sim, app, pilot, "render", "stuck job")
        assert "stuck job (" in row and any(f"stuck job ({j[:8]}" in row for j in stuck)
        await alert_fired_once(sim, app, pilot, "render", "stuck job")
        jobs = app.dashboard.query_one(JobTable)
        assert "COMPLETED*" in text_of(jobs)
        outputs = {j: sim.call(lambda j=j: sim.engine.endpoint("render").jobs[j].output) for j in stuck}
        for job in stuck:
            await cursor_on(app, pilot, job)
            await pilot.press("ctrl+d")
            modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen)
                                   and app.screen.is_mounted and app.screen, what="the cancel confirm")
            said = " ".join(" ".join(text_of(w).split()) for w in modal.query("Static"))
            assert "RunPod still reports it IN_PROGRESS" in said, said
            assert "cancelling clears it there" in said and "keeps the output it has" in said
            await pilot.press("y")
            await wait_for(pilot, lambda: sim.call(lambda: sim.engine.endpoint("render").jobs[job].status)
                           == "CANCELLED", timeout=5, what="CANCELLED in the simulator")
            await wait_for(pilot, lambda: f"Cleared {job[:8]}" in flashes(app), timeout=5,
                           what=f"the cancel's result ({flashes(app)})")
        assert stuck_in_sim(sim) == []  # no job stuck IN_PROGRESS at RunPod any more
        for job in stuck:  # rpdash keeps what it knew: finished, with its output
            rec = jobs.records[job]
            assert rec.status.value == "COMPLETED" and rec.stuck_progress and rec.output == outputs[job]
        head = app.dashboard.query_one(OutputViewer).query_one("#out-head")
        await pilot.press("enter")  # the last one's output, with what happened to it
        await wait_for(pilot, lambda: "cleared at RunPod by cancel" in text_of(head),
                       timeout=3, what=f"the note in the Output header ({text_of(head)[:120]})")
        await recovered(app, pilot, "render")
        assert "stuck job" not in row_text(app.dashboard, "render")


# ------------------------------------------------------------------ read-only


@pytest.mark.parametrize(("incident_sim", "ep", "words"), [
    ("crashloop", "broken", "crash-looping"), ("bad-release", "api", "bad release"),
    ("gpu-shortage", "sdxl", "no GPUs"), ("retry-storm", "oom", "crash-looping"),
    ("stuck-progress", "render", None),
], indirect=["incident_sim"])  # fmt: skip
async def test_read_only_the_drills_levers_are_refused(incident_sim, settings_for, ep, words):
    """In read-only mode the verdict and the alert come as usual; the drill's lever (drain,
    purge, cancel) is refused from the keyboard with one line, and nothing reaches RunPod."""
    sim = incident_sim
    app = app_for(sim, settings_for, ep, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        if ep == "render":
            job = (await watch_the_stuck_jobs(sim, app, pilot))[0]
            words = "stuck job"
        await wait_for(pilot, lambda: words in row_text(app.dashboard, ep), timeout=10, what=words)
        if ep == "render":
            await cursor_on(app, pilot, job)
            await pilot.press("ctrl+d")
            refused = "cancel"
        elif ep == "oom":
            poison = sim.call(lambda: next(iter(sim.engine.endpoint("oom").jobs)))
            await command(pilot, f"watch {poison}")
            jobs = app.dashboard.query_one(JobTable)
            await pilot.press("alt+2")
            await wait_for(pilot, lambda: jobs.current_job_id == poison, what="the cursor on the job")
            await pilot.press("ctrl+d")
            refused = "cancel"
        elif ep == "sdxl":
            await pilot.press("alt+1", "ctrl+d")
            refused = "purge"
        else:
            await pilot.press("alt+1")
            await command(pilot, "drain")
            refused = ":drain"
        await wait_for(pilot, lambda: any(f.startswith("Read-only mode") and refused in f.lower()
                                          for f in app.dashboard.query_one(StatusBar).flashes),
                       timeout=3, what=f"the refusal ({flashes(app)})")
        assert app.screen is app.dashboard
        after = sim_state(sim, ep)
        assert after["max"] > 0  # not drained (RunPod's crash-loop cut-back may have halved it)
        if ep == "render":
            assert job in stuck_in_sim(sim)  # still IN_PROGRESS at RunPod
        if ep == "oom":
            assert sim.call(lambda: sim.engine.endpoint("oom").jobs[poison].status) != "CANCELLED"
        elif ep == "sdxl":
            assert after["in_queue"] > 0
