"""A work process killed with -9 leaves no orphan behind: its RQ scheduler child stops and frees the lock."""

from __future__ import annotations

import os
import signal

from tests.support import wait_for
from tests.support_chaos import children_of, gone

LOCK = "rq:scheduler-lock:celery"


def test_the_scheduler_of_a_killed_work_process_stops_and_frees_its_lock(celery_app, worker_process, redis_conn):
    # Given a worker whose one work process runs RQ's scheduler in a child process
    supervisor = worker_process("-P", "prefork", "-c", "1")
    work_process = wait_for(lambda: children_of(supervisor.pid), timeout=15)[0]
    scheduler = wait_for(lambda: children_of(work_process), timeout=15)[0]
    holder = wait_for(lambda: redis_conn.get(LOCK), timeout=15)
    # When the work process is killed with -9
    os.kill(work_process, signal.SIGKILL)
    # Then its scheduler stops within seconds instead of living on as an orphan, and frees its lock
    wait_for(lambda: gone(scheduler), timeout=10)
    assert redis_conn.get(LOCK) != holder
