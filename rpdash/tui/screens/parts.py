"""What the dashboard's parts (the pane-action mixins) may use of the dashboard screen.

Each mixin (:mod:`job_actions`, :mod:`endpoint_actions`, :mod:`submit_actions`,
:mod:`output_actions`, :mod:`connection`) derives from :class:`DashboardPart`, which only
declares, for the type checker and the reader, what the screen provides.
"""

from __future__ import annotations

from typing import Any


class DashboardPart:
    """Declarations only: the screen that mixes the part in provides these."""

    query_one: Any
    app: Any
    session: Any
    names: dict[str, str]
    notices: Any
    _app: Any
    _run_op: Any
    _show_job: Any
    _problem: Any
    _update_jobs_title: Any
    focus_pane: Any
    on_jobs: Any
    select_job: Any
    current_endpoint: Any
    flash: Any
