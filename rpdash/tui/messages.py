"""Textual messages that carry the background services' events to the UI.

The services call ``sink(event)``; :class:`EventPump` is that sink. It turns each event
into a message posted to the app, so handlers (never the services) change widgets.

Busy events are coalesced *before* they become messages: job updates are merged per job id
(the latest record wins) and stream batches are queued per job, and only one message of
each kind is in flight at a time. Ten thousand status changes or two hundred thousand
stream chunks therefore cost a handful of messages, and the handler applies them in one
``batch_update``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.message import Message

from rpdash.core.records import JobRecord
from rpdash.services.events import (
    Event,
    HealthEvent,
    JobFinished,
    JobsEvent,
    ProblemEvent,
    StreamEvent,
)

if TYPE_CHECKING:
    from textual.app import App


class HealthUpdated(Message):
    """An endpoint's health or connection state changed."""

    def __init__(self, event: HealthEvent) -> None:
        super().__init__()
        self.event = event


class JobsChanged(Message):
    """Some jobs changed; the handler drains :meth:`EventPump.take_jobs`."""


class StreamArrived(Message):
    """Stream chunks arrived; the handler drains :meth:`EventPump.take_streams`."""


class JobDone(Message):
    """A tracked job reached a terminal state (toast)."""

    def __init__(self, job: JobRecord) -> None:
        super().__init__()
        self.job = job


class ApiProblem(Message):
    """Something a person should read."""

    def __init__(self, event: ProblemEvent) -> None:
        super().__init__()
        self.event = event


class Flash(Message):
    """Routine news from a widget for the flash line (the screen shows it)."""

    def __init__(self, text: str, severity: str = "information") -> None:
        super().__init__()
        self.text = text
        self.severity = severity


class EventPump:
    """The ``Sink`` handed to the Session: service events in, Textual messages out.

    Safe to call from the app's event loop (the normal case) and from other threads
    (it then hops onto the app's loop with ``call_from_thread``).
    """

    def __init__(self, app: App) -> None:
        self._app = app
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._jobs: dict[str, JobRecord] = {}
        self._jobs_posted = False
        self._streams: list[StreamEvent] = []
        self._streams_posted = False
        self.closed = False
        self.events_in = 0  # for the debug/bench view

    def __call__(self, event: Event) -> None:
        if self.closed:
            return
        self.events_in += 1
        if isinstance(event, JobsEvent):
            with self._lock:
                for rec in event.jobs:
                    self._jobs[rec.job_id] = rec
                if self._jobs_posted:
                    return
                self._jobs_posted = True
            self._post(JobsChanged())
        elif isinstance(event, StreamEvent):
            with self._lock:
                self._streams.append(event)
                if self._streams_posted:
                    return
                self._streams_posted = True
            self._post(StreamArrived())
        elif isinstance(event, HealthEvent):
            self._post(HealthUpdated(event))
        elif isinstance(event, JobFinished):
            self._post(JobDone(event.job))
        elif isinstance(event, ProblemEvent):
            self._post(ApiProblem(event))

    def _post(self, message: Message) -> None:
        app = self._app
        if threading.get_ident() == self._loop_thread:
            app.post_message(message)
        else:
            try:
                app.call_from_thread(app.post_message, message)
            except RuntimeError:  # app not running any more
                pass

    def take_jobs(self) -> list[JobRecord]:
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
            self._jobs_posted = False
        return jobs

    def take_streams(self) -> list[StreamEvent]:
        with self._lock:
            streams = self._streams
            self._streams = []
            self._streams_posted = False
        return streams


SinkFactory = Callable[["App"], EventPump]
