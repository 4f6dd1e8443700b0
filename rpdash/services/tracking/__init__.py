"""Job tracking: keep every live job's record current with as few requests as possible.

Polling every job every ``interval`` is what the official SDKs do (one loop per job); at
scale it costs a request per job per second and runs into the rate limit long before the
work is done. The tracker instead uses what the API tells for free. Its parts:

``book``       ``JobBook``, the one place a job record changes: merges API answers into new
               records, writes the history store, emits coalesced events.
``lanes``      what the tracker knows beyond the record: ``TrackedJob`` (one live job's
               scheduling state) and ``Lane`` (one endpoint's live jobs, health, budget).
``scheduler``  the due heap, the ready queues (on-screen jobs first), the concurrency bound
               and each endpoint's request budget; when a started job is expected to end.
``positions``  the queue-position inference, a swappable strategy (``QueuePositions``):
               FIFO lanes, health counts and probes (``FifoPositions``, the default).
``unordered``  ``UnorderedPositions``: the strategy that assumes no pickup order at all.
``quirks``     what the platform does that tracking must survive: re-runs (a status going
               back to IN_QUEUE, ``retries``), a job stuck IN_PROGRESS after completion.
``selected``   the selected job, followed by one ``/status-sync`` long-poll at a time.
``failures``   what a failed status check means (429, 404, transient) and when to retry.
``notfound``   ``NotFoundCheck``: after a 404, asks ``/health`` (once per endpoint per 30 s,
               shared per client) whether the job or its endpoint is missing.
``tracker``    ``JobTracker``, the loop that wires them: public API, polls, answers.

What decides a job's next check:

1. **Terminal jobs leave the heap for good.** Nothing ever polls them again.
2. **Queue position** (``positions``): queued jobs behind others of ours are not polled;
   health counts and probes tell which have started.
3. **Expected completion** (``scheduler``). A started job is first checked at ``start +
   p50`` of the execution times the lane has seen, then at ``start + p90``, then at steps
   that grow with its age in progress. An ``IN_PROGRESS`` answer carrying
   ``executionTime`` or ``delayTime`` pins the start.
4. **What health says about finishes** (``positions``): identical consecutive samples mean
   nothing finished; ``k`` finishes pull that share of our started jobs forward.
5. **On screen first.** A visible job is polled at least every ``interval`` while it runs
   (progress output), and visible jobs go first when more polls are due than slots.
6. **The selected job** (``selected``) is not in the heap at all.
7. **Safety net.** A queued job is still checked now and then, and more often once the
   order proves not FIFO, so a broken assumption costs time, never a lost job.
8. **Platform quirks** (``quirks``): a re-run job is followed back through the queue; a
   job stuck IN_PROGRESS after it completed is recognised and finished.

Measured (tests/unit/test_services_tracker.py in simulated time; bench/polling_bench.py over
HTTP against the simulator): 2,000 jobs of 1-2 s on 50 workers cost about 1.5 status
requests per job, finishes are seen 0.4 s (p50) / under 2 s (p95) after they happen, the
selected job at once, with no 429; one loop per job polling every second (runpod-python's
asyncio client) costs over 20 requests per job and tens of thousands of 429s on the same work.
"""

from rpdash.services.tracking.book import EXPIRED_MESSAGE, PURGED_MESSAGE, JobBook, merge_job
from rpdash.services.tracking.lanes import TrackerStats
from rpdash.services.tracking.positions import FifoPositions, QueuePositions
from rpdash.services.tracking.tracker import JobTracker
from rpdash.services.tracking.unordered import UnorderedPositions

__all__ = [
    "EXPIRED_MESSAGE",
    "PURGED_MESSAGE",
    "FifoPositions",
    "JobBook",
    "JobTracker",
    "QueuePositions",
    "TrackerStats",
    "UnorderedPositions",
    "merge_job",
]
