"""Stopping a worker while its Redis is down: quick when idle, and quiet.

A real worker on a test's own Redis server, which the test stops for real.
"""

from __future__ import annotations

import signal
import time

import pytest
from rq import Worker
from rq.job import Job

from app.celery_compat import states
from app.celery_compat.result import AsyncResult
from tests.support import stop_workers, wait_for
from tests.support_faults import app_on, log_lines, start_worker, submit


def test_sigterm_during_an_outage_with_no_task_running_exits_within_two_seconds(own_redis_server, tmp_path):
    # Given an idle worker with two work processes, registered on its Redis
    log = tmp_path / "worker.log"
    worker = start_worker(own_redis_server.url, log, "-c", "2")
    try:
        connection = own_redis_server.client()
        wait_for(lambda: Worker.count(connection=connection) >= 2 or worker.poll() is not None, timeout=30)
        connection.close()
        # When Redis goes away for a few seconds and the worker is then asked to stop
        time.sleep(0.5)  # its start-up lines are written
        before_outage = len(log_lines(log))
        own_redis_server.stop()
        time.sleep(4)
        during_outage = len(log_lines(log))
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=10)
        took = time.monotonic() - started
    finally:
        stop_workers([worker])
    # Then it exits cleanly within two seconds, having said little, and no traceback
    lines = log_lines(log)
    assert code == 0, lines[-20:]
    assert took < 2.0, (took, lines[-20:])
    assert during_outage - before_outage <= 14, lines[before_outage:]
    assert len(lines) - during_outage <= 8, lines[during_outage:]
    assert not any("Traceback" in line for line in lines), lines


@pytest.mark.parametrize("pool", ["fork", "solo"])
def test_a_single_process_worker_rides_out_a_long_outage_quietly_and_takes_tasks_again(
        own_redis_server, tmp_path, pool):
    from tests import compat_tasks

    # Given a -P fork (or solo) worker that ran a task
    log = tmp_path / "worker.log"
    worker = start_worker(own_redis_server.url, log, "-P", pool, "-c", "1")
    try:
        with app_on(own_redis_server.url):
            assert compat_tasks.add.delay(1, 1).get(timeout=30) == 2
            # When Redis stays down for 8 s
            own_redis_server.stop()
            time.sleep(8)
            assert worker.poll() is None, "\n".join(log_lines(log)[-30:])
            own_redis_server.start()
            # Then the same worker runs tasks again, and never printed a traceback
            result = wait_for(lambda: submit(compat_tasks.add, 2, 3), timeout=20)
            assert result.get(timeout=40) == 5
        assert worker.poll() is None
        assert not any("Traceback" in line for line in log_lines(log)), log_lines(log)
    finally:
        stop_workers([worker])


def test_sigterm_during_an_outage_with_a_task_running_leaves_it_to_the_recovery_rule_quietly(
        start_redis_server, tmp_path):
    from tests import compat_tasks

    # Given a worker running a long task, on a Redis that keeps its data across a restart
    server = start_redis_server(appendonly=True)
    log = tmp_path / "worker.log"
    worker = start_worker(server.url, log, "-c", "2", "--grace-period", "2")
    try:
        with app_on(server.url) as app:
            connection = server.client()
            wait_for(lambda: Worker.count(connection=connection) >= 2 or worker.poll() is not None, timeout=30)
            running = compat_tasks.sleep.delay(30)
            wait_for(lambda: Job.fetch(running.id, connection=connection).get_status() == "started", timeout=20)
            connection.close()
            # When Redis goes away and the worker is asked to stop
            server.stop()
            time.sleep(2)
            before = len(log_lines(log))
            started = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=15)
            took = time.monotonic() - started
            # Then it stops at the end of its grace period, saying little and no traceback
            lines = log_lines(log)
            assert took < 5, (took, lines[before:])
            assert len(lines) - before <= 12, lines[before:]
            assert not any("Traceback" in line for line in lines), lines
            # And the task was not failed by the outage: it waits, started, for the recovery rule
            server.start()
            connection = server.client()
            job = Job.fetch(running.id, connection=connection)
            assert job.get_status() == "started"
            assert AsyncResult(running.id, app=app).state != states.FAILURE
            connection.close()
    finally:
        stop_workers([worker])
        server.stop()
