"""Run the six benchmarks of issue 5 and print one table: measured, goal, anchor, ratio, met?

    .venv/bin/python bench/run_all.py            # the full set (about 8 minutes)
    .venv/bin/python bench/run_all.py --quick    # smaller and fewer runs (about 2 minutes)
    .venv/bin/python bench/run_all.py --only stream,joblist --json results.json

Each benchmark runs in its own process (``bench/<name>.py --json``), one after the other
(never two at once: they would measure each other). Where a run is cheap it is repeated and
the median is reported (stream viewer, job list, start-up, simulator); the polling
benchmark (about 2.5 minutes for both clients) and the idle measurements (60 s each plus
the soak) run once. These are benchmarks, not tests: the exit code is 0 whatever the
numbers say, and ``--quick`` numbers are smoke figures (smaller sizes), not the goals'.

=========  ========================================  ==========================================
name       script                                    what
=========  ========================================  ==========================================
stream     stream_viewer_bench.py                    200k chunks: follower + OutputViewer vs Log
joblist    joblist_bench.py                          100k history, 10k rows: paint, 10k changes
polling    polling_bench.py                          2,000 jobs, 50 workers, per pickup order: rpdash vs runpod-python
polling10k polling_bench.py                          10,000 jobs, 20 endpoints, 100 workers (issue 16)
startup    startup_bench.py                          rpdash --demo in a pty vs hello-world Textual
idle       idle_bench.py                             5 quiet endpoints in tmux, 60 s; 30 min soak
sim        sim_rps.py                                simulator req/s on one pinned core
keys       key_latency_bench.py                      key -> frame p95, --demo, 1,000 jobs vs bare app
bigpaste   big_input_bench.py                        10 MB JSON pasted into the submit editor
=========  ========================================  ==========================================
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable
ORDER = ("stream", "joblist", "polling", "polling10k", "startup", "idle", "sim", "keys",
         "bigpaste")


def run_json(script: str, *args: str, timeout: float = 1800) -> Any:
    cmd = [PY, str(HERE / script), *args]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{script} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    line = [x for x in p.stdout.splitlines() if x.strip()][-1]
    print(f"  {script} {' '.join(args)}: {dt:.0f} s", file=sys.stderr, flush=True)
    return json.loads(line)


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_before": " ".join(f"{x:.2f}" for x in load),
    }


# ------------------------------------------------------------------ the six


def bench_stream(quick: bool) -> list[dict[str, Any]]:
    r = run_json("stream_viewer_bench.py", "--json", "--repeat", "1" if quick else "3")
    early, late = r["frame_ms_early"], r["frame_ms_late"]
    return [
        row("1 stream viewer: chunks/s (follower + viewer, 200k chunks)", r["rate"], "/s",
            ">= 50,000/s and >= 20x anchor", r["anchor_rate"],
            f"Log, chunk by chunk, {r['anchor_chunks']:,} chunks",
            r["rate"] / r["anchor_rate"], r["rate"] >= 50_000 and r["ratio"] >= 20),
        row(f"1 stream viewer: frame cost, first vs last 20 % (at {r['paced_rate']:,.0f}/s)",
            late, "ms", "does not grow", early, "first 20 % of frames", late / early,
            late <= early * 1.5 + 1.0, measured_text=f"{early:.1f} -> {late:.1f} ms"),
        row("1 stream viewer: lines kept on screen", r["lines_kept"], "lines",
            f"<= {r['max_lines_cap']:,} (store keeps all)", None, "", None,
            r["lines_kept"] <= r["max_lines_cap"]),
    ]


def bench_joblist(quick: bool) -> list[dict[str, Any]]:
    r = run_json("joblist_bench.py", "--json", "--repeat", "1" if quick else "3")
    return [
        row("2 job list: first paint (100k history, 10k rows)", r["first_paint_s"], "s",
            "<= 0.5 s", None, "", None, r["first_paint_s"] <= 0.5),
        row("2 job list: 10,000 status changes, UI time", r["ui_ms"], "ms",
            "<= 30 ms, cursor kept", r["anchor_ms"], "clear + refill DataTable",
            r["anchor_ms"] / r["ui_ms"], r["ui_ms"] <= 30 and r["cursor_kept"],
            note="cursor kept" if r["cursor_kept"] else "cursor LOST"),
    ]


def bench_polling(quick: bool) -> list[dict[str, Any]]:
    """One comparison per pickup order (fifo, batch, random): rpdash's Session and, on half
    the jobs, runpod-python's asyncio client, in the same run."""
    args = ["--json", "--pickup", "fifo,batch,random", "--sdk-share", "0.5"]
    return polling_rows(run_json("polling_bench.py", *args + (["--jobs", "500"] if quick else [])))


def bench_polling10k(quick: bool) -> list[dict[str, Any]]:
    """Issue 16's size: 10,000 live jobs across 20 endpoints (100 workers, FIFO pickup),
    runpod-python on a tenth of them in the same run (``--quick``: 2,000 jobs)."""
    args = ["--json", "--jobs", "2000" if quick else "10000", "--endpoints", "20",
            "--workers", "100", "--pickup", "fifo", "--sdk-share", "0.1"]
    return polling_rows(run_json("polling_bench.py", *args), tag_prefix="3b polling at scale")


def polling_rows(res: list[dict[str, Any]], tag_prefix: str = "3 polling") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for order in dict.fromkeys(x["pickup"] for x in res):
        ours = next(x for x in res if x["who"].startswith("rpdash") and x["pickup"] == order)
        sdk = next((x for x in res if x["who"].startswith("runpod") and x["pickup"] == order), None)
        n, tag = ours["jobs"], f"{tag_prefix} [{order}, {ours.get('positions', '?')}]"
        rows += [
            row(f"{tag}: lag p95 ({n} jobs, {ours['workers']} workers"
                + (f", {ours['endpoints']} endpoints)" if ours.get("endpoints", 1) > 1 else ")"), ours["lag_p95"], "s",
                "<= 5 s", sdk and sdk["lag_p95"], "runpod-python asyncio",
                sdk and sdk["lag_p95"] / ours["lag_p95"], ours["lag_p95"] <= 5 and ours["noticed"] == n),
            row(f"{tag}: selected job lag", ours["selected_lag"], "s", "<= 1 s", None, "", None,
                ours["selected_lag"] <= 1),
            row(f"{tag}: HTTP 429 answers (all operations)", ours["http_429"], "",
                "0", sdk and sdk["http_429"], "runpod-python asyncio", None, ours["http_429"] == 0,
                note=f"/run resubmits {ours.get('run_resubmits', 0)}"),
            row(f"{tag}: status requests per job", ours["status_per_job"], "/job", "<= 2",
                sdk and sdk["status_per_job"], "runpod-python asyncio",
                sdk and sdk["status_per_job"] / ours["status_per_job"], ours["status_per_job"] <= 2),
        ]  # fmt: skip
    return rows


def bench_startup(quick: bool) -> list[dict[str, Any]]:
    r = run_json("startup_bench.py", "--json", "--repeat", "3" if quick else "7")
    clean = all(r["no_textual"].values())
    return [
        row("4 start-up: rpdash --demo to the dashboard's panes (pty)", r["demo_s"], "s",
            "<= 1.5x anchor", r["hello_s"], "hello-world Textual app, same pty",
            r["demo_s"] / r["hello_s"], r["ratio"] <= 1.5,
            note=f"first frame of any kind {r['demo_first_frame_s']:.2f} s"),
        row("4 start-up: rpdash --demo to live numbers (first ok health row)",
            r.get("demo_live_s", r["demo_s"]), "s", "<= 0.6 s", None, "", None,
            r.get("demo_live_s", r["demo_s"]) <= 0.6),
        row("4 start-up: --help, --version, status, health import Textual", 0 if clean else 1,
            "", "never", None, "", None, clean,
            measured_text="no" if clean else "YES: " + ",".join(
                k for k, v in r["no_textual"].items() if not v)),
    ]


def bench_idle(quick: bool) -> list[dict[str, Any]]:
    args = ["--json"] + (["--seconds", "20", "--warmup", "8", "--soak-minutes", "10",
                          "--history", "200", "--anchor-seconds", "10"] if quick else [])
    r = run_json("idle_bench.py", *args)
    hello = r.get("hello", {}).get("cpu_pct")
    out = [row("5 idle: CPU, 5 quiet endpoints, empty job list (tmux)", r["cpu"]["cpu_pct"], "%",
               "<= 0.5 % of a core", hello, "hello-world Textual app idle", None,
               r["cpu"]["cpu_pct"] <= 0.5, note=f"over {r['cpu']['seconds']:.0f} s")]
    if "cpu_history" in r:
        c = r["cpu_history"]
        out.append(row(f"5 idle: CPU, same, {c['history_jobs']} finished jobs listed", c["cpu_pct"],
                       "%", "<= 0.5 % of a core", None, "", None, c["cpu_pct"] <= 0.5,
                       note=f"over {c['seconds']:.0f} s"))
    s = r["soak"]
    flat = s["second_half_growth_per_job_kb"] <= 20  # a job record and its row, not more
    out.append(row(f"5 idle: traced heap, {s['simulated_minutes']:g} min soak (60x clock), "
                   "second half", s["traced_end_mb"], "MB", "flat (after caches fill)",
                   s["traced_mid_mb"], f"at {s['mid_minute']:.0f} min", None, flat,
                   measured_text=f"{s['traced_start_mb']:.1f} -> {s['traced_mid_mb']:.1f} -> "
                                 f"{s['traced_end_mb']:.1f} MB",
                   note=f"{s['second_half_growth_per_job_kb']:+.1f} kB per job in the 2nd half; "
                        f"RSS {s['rss_start_mb']:.0f} -> {s['rss_mid_mb']:.0f} -> "
                        f"{s['rss_end_mb']:.0f} MB"))
    return out


def bench_sim(quick: bool) -> list[dict[str, Any]]:
    vals: dict[str, list[float]] = {"health": [], "status": []}
    for _ in range(1 if quick else 3):
        p = subprocess.run([PY, str(HERE / "sim_rps.py"), "--seconds", "2" if quick else "5"],
                           capture_output=True, text=True, timeout=300)
        for op in vals:
            m = re.search(rf"^{op}\s+([\d,]+) req/s", p.stdout, re.M)
            if m:
                vals[op].append(float(m.group(1).replace(",", "")))
    print(f"  sim_rps.py: {vals}", file=sys.stderr, flush=True)
    worst = min(statistics.median(v) for v in vals.values() if v)
    return [row("6 simulator: req/s on one core (/health, /status; the lower)", worst, "/s",
                ">= 2,000/s", None, "", None, worst >= 2000,
                note=", ".join(f"{k} {statistics.median(v):,.0f}" for k, v in vals.items() if v))]


def bench_keys(quick: bool) -> list[dict[str, Any]]:
    args = ["--json"] + (["--presses", "5", "--quit-runs", "2"] if quick else [])
    r = run_json("key_latency_bench.py", *args, timeout=3600)
    load = f"load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}"
    out = []
    for name, v in r["keys"].items():
        goal = 300.0 if name.startswith("q ") else 100.0
        a = r["anchor"].get(name)
        out.append(row(f"7 keys: {name} (p95 of {v['n']})", v["p95"], "ms", f"<= {goal:.0f} ms",
                       a and a["p95"], "bare Textual app, DataTable of 1,000 rows",
                       a and v["p95"] / a["p95"], v["p95"] <= goal and not v["timeouts"],
                       note=f"p50 {v['p50']:.0f} ms; {load}"
                            + (f"; {v['timeouts']} timed out" if v["timeouts"] else "")))
    return out


def bench_bigpaste(quick: bool) -> list[dict[str, Any]]:
    # each typed key costs 15-40 s at 10 MB today (README, 8.): 5 presses, not 30
    args = ["--json"] + (["--mb", "2", "--presses", "3"] if quick else ["--presses", "5"])
    r = run_json("big_input_bench.py", *args, timeout=3600)
    load = f"load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}"
    out = []
    for name, v in r["keys"].items():
        timed = name.startswith(("paste", "ctrl+f"))
        out.append(row(f"8 {r['bytes'] / 1e6:.0f} MB paste: {name} (p95 of {v['n']})", v["p95"],
                       "ms", "measured" if timed else "<= 100 ms", None, "", None,
                       None if timed else v["p95"] <= 100 and not v["timeouts"],
                       note=f"p50 {v['p50']:.0f} ms; {load}"))
    return out


# ------------------------------------------------------------------ table


def spread(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per benchmark row: with several runs, the run whose value is the median (the
    lower one of the middle two for an even count; its goal verdict is that run's), with every
    run's value and the load average after it in the note."""
    if len(runs) == 1:
        return runs[0]
    out = []
    for first in runs[0]:
        same = [r for run in runs for r in run if r.get("key") == first.get("key")]
        valued = sorted((r for r in same if r["value"] is not None), key=lambda r: r["value"])
        if not valued:
            out.append(first)
            continue
        mid = dict(valued[(len(valued) - 1) // 2])
        each = ", ".join(f"{fmt(r['value'], r['unit'])} (load {r['load']:.1f})" for r in same
                         if r["value"] is not None)
        mid["note"] = (mid["note"] + "; " if mid["note"] else "") + f"median of {len(valued)}: {each}"
        mid["runs"] = [r["value"] for r in same]
        out.append(mid)
    return out




def row(name: str, value: float | None, unit: str, goal: str, anchor: float | None,
        anchor_what: str, ratio: float | None, met: bool | None, *, measured_text: str = "",
        note: str = "") -> dict[str, Any]:
    return {"benchmark": name, "value": value, "unit": unit, "goal": goal, "anchor": anchor,
            "anchor_what": anchor_what, "ratio": ratio, "met": met,
            "measured_text": measured_text, "note": note}


def fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit in ("ms", "MB"):
        return f"{value:.1f} {unit}"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "/job":
        return f"{value:.2f}/job"
    if unit == "lines":
        return f"{value:,.0f} lines"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.2f}"


def table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    head = ["benchmark", "measured", "goal", "anchor", "ratio", "met?"]
    body = []
    for r in rows:
        measured = r["measured_text"] or fmt(r["value"], r["unit"])
        if r["note"]:
            measured += f" ({r['note']})"
        anchor = fmt(r["anchor"], r["unit"]) if r["anchor"] is not None else "-"
        if r["anchor_what"] and r["anchor"] is not None:
            anchor += f" ({r['anchor_what']})"
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] is not None else "-"
        met = {True: "yes", False: "NO", None: "see note"}[r["met"]]
        body.append([r["benchmark"], measured, r["goal"], anchor, ratio, met])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines)
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    widths[0] = min(widths[0], 70)
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, single runs")
    ap.add_argument("--only", default=",".join(ORDER), help="comma list of " + ",".join(ORDER))
    ap.add_argument("--json", metavar="FILE", help="also write the rows and the machine here")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--runs", type=int, default=1,
                    help="repeat the whole set N times; report each row's median run and the spread")
    a = ap.parse_args()
    benches = {"stream": bench_stream, "joblist": bench_joblist, "polling": bench_polling,
               "polling10k": bench_polling10k,
               "startup": bench_startup, "idle": bench_idle, "sim": bench_sim,
               "keys": bench_keys, "bigpaste": bench_bigpaste}
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, {info['os']}; "
          f"load average before: {info['load_before']}", flush=True)
    names = [x.strip() for x in a.only.split(",") if x.strip()]
    for name in names:
        if name not in benches:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(ORDER)}")
    t0 = time.perf_counter()
    runs: list[list[dict[str, Any]]] = []
    for n in range(a.runs):  # whole rounds, so the runs of one benchmark are minutes apart
        if a.runs > 1:
            print(f"round {n + 1} of {a.runs} (load {os.getloadavg()[0]:.2f})", file=sys.stderr,
                  flush=True)
        found: list[dict[str, Any]] = []
        for name in names:
            try:
                got = benches[name](a.quick)
            except Exception as exc:  # noqa: BLE001 - one failing bench must not hide the rest
                got = [row(f"{name}: FAILED ({type(exc).__name__})", None, "", "-", None, "",
                           None, False, note=str(exc).splitlines()[0][:80])]
            for i, r in enumerate(got):
                r["key"] = f"{name}#{i}"
                r["load"] = os.getloadavg()[0]
            found += got
        runs.append(found)
    rows = spread(runs)
    print(f"\n{'QUICK (smoke sizes) ' if a.quick else ''}results, {time.perf_counter() - t0:.0f} s:")
    print(table(rows, markdown=a.markdown))
    met = sum(1 for r in rows if r["met"])
    print(f"\n{met} of {len(rows)} rows meet their goal. Load average after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": info, "quick": a.quick, "rows": rows,
                                            "runs": runs}, indent=2, default=str))


if __name__ == "__main__":
    main()
