"""States while a task runs: custom states with meta (PROGRESS) and STARTED with track_started."""

from __future__ import annotations

from app.celery_compat import states
from app.celery_compat.result import AsyncResult
from tests import compat_tasks
from tests.support import wait_for


def test_update_state_publishes_progress_that_clients_read_while_the_task_runs(celery_app, worker_process):
    # Given a worker and a task that reports four steps
    worker_process("-P", "solo")
    result = compat_tasks.progress.delay(4, delay=0.3)
    # When a client polls a fresh AsyncResult
    seen = []

    def finished() -> bool:
        # One read of the stored document: reading .state, then .info, could straddle the end
        meta = celery_app.backend.get_task_meta(result.id)
        if meta["status"] == "PROGRESS" and meta["result"] not in seen:
            seen.append(meta["result"])
        return AsyncResult(result.id).ready()

    wait_for(finished, timeout=20, interval=0.05)
    # Then it saw the meta move forward, then the final value
    assert len(seen) >= 2
    assert [step["current"] for step in seen] == sorted(step["current"] for step in seen)
    assert seen[-1]["total"] == 4
    assert (result.state, result.get()) == (states.SUCCESS, "done")


def test_a_running_task_reads_pending_without_track_started(celery_app, worker_process):
    worker_process("-P", "solo")
    result = compat_tasks.sleep.delay(1.5)
    wait_for(lambda: celery_app.queue("celery").count == 0)
    assert result.state == states.PENDING
    result.get(timeout=10)


def test_track_started_shows_started_with_the_workers_pid(celery_app, worker_process):
    worker_process("-P", "solo")
    result = compat_tasks.tracked.delay(1.5)
    wait_for(lambda: AsyncResult(result.id).state == states.STARTED, timeout=10)
    assert set(AsyncResult(result.id).info) == {"pid", "hostname"}
    assert result.get(timeout=10) == "tracked"
