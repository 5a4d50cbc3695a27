"""Stopping a worker: running tasks finish within the grace period, the rest is handed back."""

from __future__ import annotations

import signal

import pytest

from app.celery_compat import states
from app.celery_compat.exceptions import WorkerLostError
from app.celery_compat.result import AsyncResult
from tests import compat_tasks
from tests.support import wait_for


@pytest.mark.parametrize("pool", ["prefork", "fork", "solo"])
def test_sigterm_lets_the_running_task_finish_then_the_worker_exits(celery_app, worker_process, pool):
    # Given a worker running a two-second task
    worker = worker_process("-P", pool, "-c", "1")
    result = compat_tasks.tracked.delay(2)
    wait_for(lambda: AsyncResult(result.id).state == states.STARTED, timeout=15)
    # When it is asked to stop
    worker.send_signal(signal.SIGTERM)
    # Then the task still succeeds and the worker exits cleanly
    assert result.get(timeout=20) == "tracked"
    assert worker.wait(timeout=20) == 0


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_a_stop_that_arrives_as_the_worker_looks_for_its_next_task_ends_it_at_once(
        celery_app, worker_process, pool):
    import time

    # Given workers that have just finished a task, and so look for the next one
    for _ in range(3):
        worker = worker_process("-P", pool, "-c", "1")
        assert compat_tasks.add.delay(1, 1).get(timeout=20) == 2
        # When a stop arrives right then
        asked = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        # Then the worker exits at once instead of waiting out its blocking pop
        assert worker.wait(timeout=30) == 0
        assert time.monotonic() - asked < 5


def test_a_task_still_running_after_the_grace_period_is_handed_back_to_the_queue(
        celery_app, worker_process, redis_conn):
    # Given a worker with a one-second grace period running a long task that is safe to repeat
    worker = worker_process("-P", "prefork", "-c", "1", "--grace-period", "1")
    result = compat_tasks.safe_to_repeat.delay("handed-back", 3)
    wait_for(lambda: redis_conn.llen("record:handed-back") == 1, timeout=15)
    # When the worker is stopped
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    # Then the task is queued again, not lost, and another worker completes it
    wait_for(lambda: celery_app.queue("celery").count == 1, timeout=10)
    worker_process("-P", "prefork", "-c", "1")
    assert result.get(timeout=30) == "finished"
    assert redis_conn.llen("record:handed-back") == 2


def test_a_second_signal_forces_the_stop_and_the_forced_task_follows_the_worker_lost_rule(
        celery_app, worker_process, tmp_path):
    worker = worker_process("-P", "prefork", "-c", "1")
    result = compat_tasks.tracked.delay(30)
    wait_for(lambda: AsyncResult(result.id).state == states.STARTED, timeout=15)
    worker.send_signal(signal.SIGINT)
    # (two signals sent at once would merge into one, as two quick Ctrl-C presses would not)
    wait_for(lambda: "warm shutdown" in (tmp_path / "worker-0.log").read_text(), timeout=10)
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=20) == 0
    with pytest.raises(WorkerLostError):
        result.get(timeout=10)


def test_revoke_with_terminate_replaces_only_the_process_running_that_task(celery_app, worker_process):
    # Given two work processes, each running a task
    worker_process("-P", "prefork", "-c", "2", workers=2)
    doomed, spared = compat_tasks.tracked.delay(30), compat_tasks.tracked.delay(3)
    wait_for(lambda: {AsyncResult(doomed.id).state, AsyncResult(spared.id).state} == {states.STARTED}, timeout=15)
    # When one is revoked with terminate=True
    doomed.revoke(terminate=True)
    # Then it is REVOKED while the other finishes normally, and the pool keeps working
    assert AsyncResult(doomed.id).state == states.REVOKED
    assert spared.get(timeout=20) == "tracked"
    assert compat_tasks.add.delay(1, 1).get(timeout=20) == 2


def test_max_tasks_per_child_replaces_a_work_process_after_that_many_tasks(celery_app, worker_process):
    worker_process("-P", "prefork", "-c", "1", "--max-tasks-per-child", "2")
    pids = [compat_tasks.pid.delay().get(timeout=20) for _ in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_work_processes_stop_by_themselves_when_their_supervisor_is_killed(celery_app, worker_process):
    import os

    from rq import Worker

    # Given a prefork worker whose supervisor dies without a chance to clean up
    supervisor = worker_process("-P", "prefork", "-c", "2", workers=2)
    children = [worker.pid for worker in Worker.all(connection=celery_app.connection)]
    os.kill(supervisor.pid, signal.SIGKILL)
    # Then its work processes notice within a heartbeat and exit instead of working unsupervised

    def all_gone() -> bool:
        alive = []
        for pid in children:
            try:
                # A zombie has exited: it only waits for a parent (init, or a container's PID 1
                # that may be slow to reap) to collect its status.
                if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
            except (FileNotFoundError, ProcessLookupError):
                pass
        return not alive

    wait_for(all_gone, timeout=20)
