"""What the headless commands write to the job history (the same SQLite file as the
dashboard's), so ``rpdash metrics`` and the dashboard know about jobs the CLI ran."""

from __future__ import annotations

import sys
from typing import Any

from rpdash.cli.output import safe
from rpdash.cli.state import State


class CliHistory:
    """What the headless commands write to the job history (the same SQLite file as the
    dashboard's): a submitted job's id, committed the moment it is known, then its final
    state and stream chunks. The history never decides the outcome of a command: when it
    cannot be opened or written, one warning line goes to stderr (once) and the command
    carries on; the job id is still printed."""

    #: stream chunks are written in batches of this many (one transaction each)
    CHUNK_BATCH = 500

    def __init__(self, path: Any, state: State) -> None:
        self.path = path
        self._state = state
        self._store: Any = None
        self._broken = False
        self._chunks: list[Any] = []
        self._chunk_seq = 0
        self._chunk_job: str | None = None

    def _warn(self, exc: BaseException, what: str = "the job is not recorded in the "
              "history") -> None:
        if not self._broken:
            self._broken = True
            msg = str(exc) or type(exc).__name__
            print(f"rpdash: warning: {safe(self._state.scrub(msg))}; {what}",
                  file=sys.stderr, flush=True)

    def _open(self) -> Any:
        if self._store is None and not self._broken and self.path is not None:
            try:
                from rpdash.store.history import HistoryStore

                store = HistoryStore(self.path)
                if not store.writable:
                    problem = store.problem
                    store.close()
                    raise problem or OSError("history is read-only")
                self._store = store
            except Exception as exc:  # noqa: BLE001 - the history must not fail a command
                self._warn(exc)
        return self._store

    def _do(self, method: str, *args: Any) -> None:
        store = self._open()
        if store is None:
            return
        try:
            getattr(store, method)(*args)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)

    def submitted(self, job_id: str, endpoint_id: str, mode: str, request: Any, *,
                  sent_with: str | None = None) -> None:
        import time

        from rpdash.core.models import JobStatus
        from rpdash.core.records import JobRecord

        now = time.time()
        extra: dict[str, Any] = {"via": "cli"}
        if sent_with:  # "/runsync": RunPod keeps that result 1 min, not 30 (services/expiry.py)
            extra["sent_with"] = sent_with
        if request is not None and getattr(request, "policy", None) is not None:
            extra["policy"] = request.policy.body()
        rec = JobRecord(
            job_id=job_id, endpoint_id=endpoint_id, status=JobStatus.IN_QUEUE, mode=mode,
            input=getattr(request, "input", None), submitted_at=now, updated_at=now,
            extra=extra,
        )
        store = self._open()
        if store is None:
            return
        try:
            store.record_submitted(rec)
            return
        except Exception as exc:  # noqa: BLE001
            first = exc
        # A full disk often still has room for the id alone (a big input does not fit):
        # the id is what must not be lost.
        try:
            store.record_submitted(rec.copy(input=None, extra={**extra, "input": "not saved"}))
        except Exception:  # noqa: BLE001
            self._warn(first)
        else:
            self._warn(first, "the job id is recorded in the history, its input and "
                              "results are not")

    def _known(self, job_id: str) -> Any:
        """The history's record of ``job_id``, or None."""
        store = self._open()
        if store is None:
            return None
        try:
            return store.get(job_id)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)
            return None

    def job(self, job: Any, endpoint_id: str, mode: str | None = None) -> None:
        """The job's latest state as the API answered it (status, output, error, times).
        Without ``mode`` the history's mode of the job is kept (``run`` for a new one), so
        a job that ends while ``rpdash status`` looks is counted by ``rpdash metrics``."""
        import time

        from rpdash.core.records import JobRecord

        if mode is None:
            known = self._known(job.id)
            mode = known.mode if known is not None else "run"
        if self._chunk_job == job.id:
            self.flush_chunks()
        try:
            raw = job.raw()
        except Exception:  # noqa: BLE001
            raw = None
        rec = JobRecord(
            job_id=job.id, endpoint_id=endpoint_id, status=job.status, mode=mode,
            updated_at=time.time(), delay_ms=job.delayTime, execution_ms=job.executionTime,
            retries=job.retries or 0,
            progress=None if job.terminal else job.output,
            output=job.output if job.terminal else None,
            error=job.error_text, worker_id=job.workerId,
            chunk_count=self._chunk_seq if self._chunk_job == job.id else 0,
        )
        self._do("update", rec, raw)

    def answered(self, ref: Any, endpoint_id: str, *, retried: bool = False) -> None:
        """A ``/cancel`` or ``/retry`` answer (``{id, status}``). A cancel is recorded when it
        ended the job (not over a job the history already saw end); a retry puts the job
        back in the queue, its output and error cleared."""
        import time

        from rpdash.core.models import JobStatus
        from rpdash.core.records import JobRecord

        known = self._known(ref.id)
        if retried:
            status = ref.status if ref.status is not JobStatus.UNKNOWN else JobStatus.IN_QUEUE
        elif ref.status.terminal and (known is None or not known.terminal):
            status = ref.status
        else:
            return
        rec = JobRecord(
            job_id=ref.id, endpoint_id=endpoint_id, status=status,
            mode=known.mode if known is not None else "run", updated_at=time.time(),
            retries=(known.retries if known is not None else 0) + (1 if retried else 0),
        )
        self._do("update", rec, None)

    def chunk(self, job_id: str, output: Any) -> None:
        if self._broken:
            return
        if self._chunk_job != job_id:
            self._chunk_job, self._chunk_seq, self._chunks = job_id, 0, []
        self._chunks.append(output)
        if len(self._chunks) >= self.CHUNK_BATCH:
            self.flush_chunks()

    def flush_chunks(self) -> None:
        if self._chunks and self._chunk_job is not None:
            outputs, self._chunks = self._chunks, []
            self._do("append_chunks", self._chunk_job, self._chunk_seq, outputs)
            self._chunk_seq += len(outputs)

    def close(self) -> None:
        self.flush_chunks()
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001
                pass
            self._store = None
