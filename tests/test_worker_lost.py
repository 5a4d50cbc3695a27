"""A worker killed mid-task: the task is re-queued when safe to repeat, else fails as WorkerLostError.

Each test causes the fault for real, with kill -9 on worker processes it started itself.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from app.celery_compat import keys, states
from app.celery_compat.exceptions import WorkerLostError
from app.celery_compat.result import AsyncResult
from app.celery_compat.worker.pool import unregister_dead
from tests import compat_tasks
from tests.support import wait_for


def started_pids(redis_conn, key: str) -> list[int]:
    return [int(value) for value in redis_conn.lrange(f"record:{key}", 0, -1)]


@pytest.mark.parametrize("pool", ["prefork", "fork"])
def test_a_task_safe_to_repeat_runs_again_after_its_process_is_killed(celery_app, worker_process, redis_conn, pool):
    # Given a worker running a task declared safe to repeat (acks_late + reject_on_worker_lost)
    worker_process("-P", pool, "-c", "1")
    result = compat_tasks.safe_to_repeat.delay("repeat", 1.5)
    wait_for(lambda: started_pids(redis_conn, "repeat"), timeout=15)
    # When the process running it is killed with SIGKILL
    killed_at = time.monotonic()
    os.kill(started_pids(redis_conn, "repeat")[0], signal.SIGKILL)
    # Then it runs again, in another process, and succeeds, well within a minute
    assert result.get(timeout=60) == "finished"
    assert time.monotonic() - killed_at < 60
    first, second = started_pids(redis_conn, "repeat")
    assert first != second


@pytest.mark.parametrize("pool", ["prefork", "fork"])
def test_any_other_task_fails_with_worker_lost_and_stays_in_the_failed_registry(
        celery_app, worker_process, redis_conn, pool):
    worker_process("-P", pool, "-c", "1")
    result = compat_tasks.tracked.delay(30)
    wait_for(lambda: AsyncResult(result.id).state == states.STARTED, timeout=15)
    os.kill(AsyncResult(result.id).info["pid"], signal.SIGKILL)
    with pytest.raises(WorkerLostError, match="signal 9"):
        result.get(timeout=60)
    assert result.id in FailedJobRegistry("celery", connection=celery_app.connection).get_job_ids()
    # and the worker goes on with the next task
    assert compat_tasks.add.delay(1, 2).get(timeout=20) == 3


def test_a_named_work_process_killed_is_replaced_at_once_under_its_name(celery_app, worker_process, redis_conn):
    # Given a one-process worker named with -n, so its work process has that very name
    worker_process("-P", "prefork", "-c", "1", "-n", "named@host")
    result = compat_tasks.safe_to_repeat.delay("named", 1.5)
    wait_for(lambda: started_pids(redis_conn, "named"), timeout=15)
    # When that process is killed with SIGKILL (its RQ registration outlives it)
    os.kill(started_pids(redis_conn, "named")[0], signal.SIGKILL)
    # Then its successor registers under the same name at once (RQ refuses a live registration's
    # name: it used to wait out the dead one's TTL) and runs the task again, then the next one
    assert result.get(timeout=8) == "finished"
    assert compat_tasks.add.delay(1, 2).get(timeout=8) == 3


def test_a_dead_work_process_unregistered_late_leaves_its_successor_registered(celery_app, worker_process,
                                                                              redis_conn):
    # Given a one-process worker named with -n whose work process was killed and replaced under its name
    worker_process("-P", "prefork", "-c", "1", "-n", "late@host")
    worker_key = keys.worker("late@host")
    dead = int(redis_conn.hget(worker_key, "pid"))
    os.kill(dead, signal.SIGKILL)
    wait_for(lambda: redis_conn.hget(worker_key, "pid") not in (None, str(dead).encode()), timeout=15)
    # When the supervisor's unregistration of the dead one runs only now (Redis was down when it died)
    removed = unregister_dead(redis_conn, "late@host", dead, celery_app.amqp.priorities.consume_order(["celery"]))
    # Then the successor's registration is left alone, and it still takes tasks
    assert not removed
    assert redis_conn.exists(worker_key) and redis_conn.sismember(keys.WORKERS, worker_key)
    assert compat_tasks.add.delay(1, 2).get(timeout=8) == 3


def test_a_task_that_kills_its_worker_every_time_ends_as_failure(celery_app, worker_process, redis_conn):
    worker = worker_process("-P", "prefork", "-c", "1")
    result = compat_tasks.kills_its_worker.delay("suicidal")
    with pytest.raises(WorkerLostError):
        result.get(timeout=60)
    assert len(started_pids(redis_conn, "suicidal")) == 4  # the first run and three redeliveries
    # And a stop that comes while the supervisor replaces the last dead process still stops it
    asked = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert time.monotonic() - asked < 10


def test_a_whole_worker_killed_is_noticed_by_another_worker_within_a_minute(
        celery_app, worker_process, redis_conn):
    # Given a worker (supervisor and child) running a task safe to repeat, and a second worker
    doomed = worker_process("-P", "prefork", "-c", "1", "-Q", "celery")
    result = compat_tasks.safe_to_repeat.delay("whole", 2)
    wait_for(lambda: started_pids(redis_conn, "whole"), timeout=15)
    worker_process("-P", "solo", "-Q", "celery")
    # When the first worker dies entirely (every process it started, as with its machine)
    killed_at = time.monotonic()
    os.killpg(doomed.pid, signal.SIGKILL)
    # Then the second worker finds the abandoned task through its heartbeat and runs it again
    assert result.get(timeout=75) == "finished"
    assert time.monotonic() - killed_at < 60
    assert len(started_pids(redis_conn, "whole")) == 2


def test_a_task_that_ignores_its_hard_time_limit_is_killed_with_its_process(celery_app, worker_process):
    worker_process("-P", "prefork", "-c", "1")
    result = compat_tasks.swallows_time_limit.delay()
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        result.get(timeout=30)
    assert type(raised.value).__name__ == "TimeLimitExceeded"
    assert time.monotonic() - started < 15
    job = Job.fetch(result.id, connection=celery_app.connection, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FAILED
    assert compat_tasks.add.delay(2, 2).get(timeout=20) == 4


def test_the_api_shows_which_worker_ran_a_recovered_task_its_heartbeat_and_the_redelivery(
        client, project_worker, redis_conn):
    from rq import Worker

    from app.tasks.long_running import long_running

    # Given the project's worker running a long task (its tasks are safe to repeat)
    result = long_running.delay(4)
    job = Job.fetch(result.id, connection=redis_conn, serializer=JSONSerializer)

    def running() -> bool:
        job.refresh()
        return bool(job.worker_name) and AsyncResult(result.id).state == "PROGRESS"

    wait_for(running, timeout=20)
    # When the work process running it is killed
    [worker] = [w for w in Worker.all(connection=redis_conn) if w.name == job.worker_name]
    os.kill(worker.pid, signal.SIGKILL)
    # Then the API says it was re-queued once, which worker ran it and when it last heard of it
    wait_for(lambda: client.get(f"/api/tasks/{result.id}").json["redelivered"] == 1, timeout=30)
    status = client.get(f"/api/tasks/{result.id}").json
    assert status["worker"] and status["last_heartbeat"]
    # And it runs to the end on the replacement process
    assert result.get(timeout=60)["duration"] == 4
