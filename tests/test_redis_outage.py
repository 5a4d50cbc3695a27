"""Redis outages: workers wait and resume by themselves; a restart with persistence loses nothing.

Each test owns its Redis server, stops it for real and starts it again on the same port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis

from app.celery_compat import Celery, states
from app.celery_compat.result import AsyncResult
from tests.support import ROOT, stop_workers, wait_for
from tests.support_faults import app_on


@pytest.fixture
def own_app(own_redis_server):
    """The test tasks' Celery app, pointed at this test's own Redis server."""
    with app_on(own_redis_server.url) as app:
        yield app


def start_worker(url: str, tmp_path, *args: str) -> subprocess.Popen:
    log = open(tmp_path / "worker.log", "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        [sys.executable, "worker.py", "-A", "tests.compat_tasks", "-u", url, "-l", "INFO", *args],
        cwd=ROOT, env={**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )


@pytest.mark.parametrize("pool", ["prefork", "fork"])
def test_a_worker_survives_a_redis_outage_and_resumes_by_itself(own_redis_server, own_app, tmp_path, pool):
    from tests import compat_tasks

    # Given a worker that already ran a task
    worker = start_worker(own_redis_server.url, tmp_path, "-P", pool, "-c", "1")
    try:
        assert compat_tasks.add.delay(1, 1).get(timeout=30) == 2
        # When Redis is down for a few seconds
        own_redis_server.stop()
        time.sleep(3)  # the outage itself: the worker must ride it out
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
        own_redis_server.start()
        # Then, without a restart, the same worker runs new tasks
        result = wait_for(lambda: _submit(compat_tasks), timeout=20)
        assert result.get(timeout=30) == 5
        assert worker.poll() is None
    finally:
        stop_workers([worker])


def _submit(compat_tasks):
    try:
        return compat_tasks.add.delay(2, 3)
    except redis.exceptions.ConnectionError:
        return None


def test_with_append_only_persistence_a_restart_keeps_queued_tasks_and_results(
        start_redis_server, tmp_path):
    from tests import compat_tasks

    # Given an append-only Redis (as in docker-compose.yml) holding a result and a queued task
    server = start_redis_server(appendonly=True)
    app = Celery("persist", broker=server.url, set_as_current=False)
    app.register_task(compat_tasks.add)
    finished = app.send_task("tests.compat_tasks.add", (1, 2))
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    SimpleWorker([app.queue("celery")], connection=app.connection, serializer=JSONSerializer).work(burst=True)
    queued = app.send_task("tests.compat_tasks.add", (3, 4))
    # When Redis restarts
    server.stop()
    server.start()
    app._connection = None
    # Then the finished result is still there and the queued task still runs
    assert AsyncResult(finished.id, app=app).get(timeout=5) == 3
    assert AsyncResult(queued.id, app=app).state == states.PENDING
    SimpleWorker([app.queue("celery")], connection=app.connection, serializer=JSONSerializer).work(burst=True)
    assert AsyncResult(queued.id, app=app).get(timeout=5) == 7
    server.stop()


def test_a_task_running_through_an_outage_still_reaches_its_result(own_redis_server, own_app, tmp_path):
    from tests import compat_tasks

    # Given a task reporting progress every 0.2 s for about 3 s
    worker = start_worker(own_redis_server.url, tmp_path, "-c", "1")
    try:
        result = compat_tasks.progress.delay(15, delay=0.2)
        wait_for(lambda: _state(result) == "PROGRESS", timeout=20)
        # When Redis goes away for two seconds in the middle of it
        own_redis_server.stop()
        time.sleep(2)  # the outage itself
        own_redis_server.start()
        # Then the task waits out the outage and its result still arrives; nothing is lost
        assert result.get(timeout=60) == "done"
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        stop_workers([worker])


def _state(result) -> str | None:
    try:
        return AsyncResult(result.id, app=result.app).state
    except redis.exceptions.ConnectionError:
        return None
