"""Redis out of memory (maxmemory reached, noeviction): workers wait it out, then carry on.

A real Redis, its memory limit set just above what it holds, then filled with one big key;
a work process is killed mid-task meanwhile, so that the supervisor must recover that task
while Redis refuses every write.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from rq import Worker
from rq.job import Job

from app.celery_compat import states
from app.celery_compat.result import AsyncResult
from tests.support import stop_workers, wait_for
from tests.support_faults import app_on, log_lines, start_worker, submit


@pytest.fixture
def own_app(own_redis_server):
    with app_on(own_redis_server.url) as app:
        yield app


def fill_memory(connection: redis.Redis) -> None:
    """One big key, then maxmemory below the memory in use: every write is refused from now on."""
    before = int(connection.info("memory")["used_memory"])
    connection.set("ballast", b"x" * (4 * 1024 * 1024))
    connection.config_set("maxmemory-policy", "noeviction")
    connection.config_set("maxmemory", before + 2 * 1024 * 1024)  # the 4 MB key alone is over it
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        connection.set("probe", "1")


def pid_running(connection: redis.Redis, job_id: str) -> int:
    job = Job.fetch(job_id, connection=connection)
    return Worker.find_by_key(Worker.redis_worker_namespace_prefix + job.worker_name, connection=connection).pid


def test_workers_survive_redis_out_of_memory_and_carry_on_when_memory_is_freed(own_redis_server, own_app, tmp_path):
    from tests import compat_tasks

    # Given a worker with two work processes, one of them running a task
    log = tmp_path / "worker.log"
    worker = start_worker(own_redis_server.url, log, "-c", "2")
    connection = own_redis_server.client()
    try:
        wait_for(lambda: Worker.count(connection=connection) >= 2 or worker.poll() is not None, timeout=30)
        running = compat_tasks.sleep.delay(30)
        wait_for(lambda: AsyncResult(running.id, app=own_app).state == states.STARTED
                 or Job.fetch(running.id, connection=connection).get_status() == "started", timeout=20)
        child = pid_running(connection, running.id)
        # When Redis reaches its memory limit, and that work process dies meanwhile
        fill_memory(connection)
        before = len(log_lines(log))
        os.kill(child, signal.SIGKILL)
        time.sleep(5)
        # Then the worker is still there, quietly waiting, without a traceback
        lines = log_lines(log)[before:]
        assert worker.poll() is None, "\n".join(log_lines(log)[-40:])
        assert not any("Traceback" in line for line in lines), lines
        assert len(lines) <= 20, lines
        assert any("out of memory" in line for line in lines), lines
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            connection.set("probe", "1")  # still out of memory all along
        # And once memory is freed, the killed task gets its outcome and new tasks run
        connection.delete("ballast")
        wait_for(lambda: AsyncResult(running.id, app=own_app).state in (states.FAILURE, states.SUCCESS)
                 or Job.fetch(running.id, connection=connection).get_status() == "queued", timeout=30,
                 describe=lambda: "\n".join(log_lines(log)[-30:]))
        result = wait_for(lambda: submit(compat_tasks.add, 2, 3), timeout=20)
        assert result.get(timeout=40) == 5
        assert worker.poll() is None
    finally:
        connection.close()
        stop_workers([worker])
