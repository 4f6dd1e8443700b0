"""The job list's ages: whole minutes change on the wall clock's minute boundaries, so every
listed job's age changes at the same second and an idle list repaints once a minute."""

from __future__ import annotations

from rpdash.tui.format import fmt_job_age


def test_seconds_then_minutes():
    assert fmt_job_age(1000.0, 1000.0) == "0s"
    assert fmt_job_age(1059.0, 1000.0) == "59s"
    assert fmt_job_age(1060.0, 1000.0) == "1m"
    assert fmt_job_age(1000.0 + 7200, 1000.0) == "2h"


def test_minute_ages_of_many_jobs_change_at_the_same_second():
    submitted = [10_000.0 + k * 0.9 for k in range(50)]  # jobs started over 45 s
    changes: set[float] = set()
    for t in range(10_200, 10_800):  # ten minutes of a 1 Hz tick
        now = float(t)
        for sub in submitted:
            if fmt_job_age(now, sub) != fmt_job_age(now - 1, sub) and now - 1 - sub >= 60:
                changes.add(now)
    assert changes and all(now % 60 == 0 for now in changes), sorted(changes)[:5]


def test_never_more_than_the_exact_age_nor_a_minute_less():
    for sub in (10_000.0, 10_000.5, 10_037.0):
        for now in range(10_100, 13_000, 7):
            shown = int(fmt_job_age(float(now), sub).rstrip("m"))
            exact = (now - sub) // 60
            assert exact - 1 <= shown <= exact and shown >= 1
