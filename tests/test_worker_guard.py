"""A job written straight into Redis runs only if it is one of ours: the entry point and a registered task.

Anyone who can write to Redis can write a job hash naming ``os.system``. Every way of running a
worker (the three pools of ``python worker.py`` and the stock ``rq worker`` started as the README
says) must refuse it, store a Celery FAILURE that says why, and never import or call it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from rq.registry import FailedJobRegistry

from app.celery_compat.protocol import EXECUTE_TASK, may_import
from tests import compat_tasks
from tests.support import ROOT, wait_for

#: The stock worker's command as the README gives it (``{url}``: the test's Redis).
STOCK_RQ_WORKER = [str(Path(sys.executable).with_name("rq")), "worker", "-u", "{url}", "--serializer", "json",
                   "--job-class", "app.celery_compat.worker.TaskJob", "--with-scheduler", "--burst", "celery"]


def write_job_by_hand(conn, func_name: str, args: list, queue: str = "celery") -> str:
    """Write a job hash and queue its id as an attacker with Redis access would, with no RQ code."""
    job_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data = zlib.compress(json.dumps([func_name, None, args, {}]).encode())
    conn.hset(f"rq:job:{job_id}", mapping={
        "data": data, "created_at": now, "enqueued_at": now, "origin": queue, "status": "queued",
        "description": "hand-written", "timeout": 180, "result_ttl": 500, "failure_ttl": 86400,
    })
    conn.sadd("rq:queues", f"rq:queue:{queue}")
    conn.rpush(f"rq:queue:{queue}", job_id)
    return job_id


def run_worker(kind: str, worker_process, redis_url: str) -> None:
    if kind == "stock rq worker":
        command = [part.format(url=redis_url) for part in STOCK_RQ_WORKER]
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    else:
        worker_process("-P", kind, "-c", "1")


WORKERS = ["prefork", "solo", "fork", "stock rq worker"]


@pytest.mark.parametrize("kind", WORKERS)
def test_a_job_naming_os_system_is_refused_by_every_worker_and_its_command_never_runs(
        kind, celery_app, redis_conn, redis_url, worker_process, tmp_path):
    # Given a job hash written by hand whose function is os.system, creating a file if it ran
    marker = tmp_path / "pwned"
    job_id = write_job_by_hand(redis_conn, "os.system", [f"touch {marker}"])
    # When a worker of this kind takes it
    run_worker(kind, worker_process, redis_url)
    result = celery_app.AsyncResult(job_id)
    wait_for(lambda: result.state == "FAILURE", timeout=20)
    # Then the command never ran, and the task failed with a message that says why
    assert not marker.exists()
    assert type(result.result).__name__ == "RefusedJob"
    assert "'os.system' is not the adapter's entry point" in str(result.result)
    # And RQ counts it as failed too (the dashboard shows it), not as running or queued
    wait_for(lambda: redis_conn.hget(f"rq:job:{job_id}", "status") == b"failed", timeout=10)


@pytest.mark.parametrize("kind", ["prefork", "stock rq worker"])
def test_the_entry_point_with_a_task_name_that_is_not_registered_fails_without_calling_it(
        kind, celery_app, redis_conn, redis_url, worker_process, tmp_path):
    # Given a job that names the adapter's entry point, but os.system as the task
    marker = tmp_path / "pwned"
    job_id = write_job_by_hand(redis_conn, EXECUTE_TASK, ["os.system", [f"touch {marker}"], {}])
    # When a worker takes it
    run_worker(kind, worker_process, redis_url)
    result = celery_app.AsyncResult(job_id)
    wait_for(lambda: result.state == "FAILURE", timeout=20)
    # Then nothing ran and the task failed as Celery's unregistered task does
    assert not marker.exists()
    assert type(result.result).__name__ == "NotRegistered" and "os.system" in str(result.result)


def test_a_malformed_task_message_fails_instead_of_staying_pending(celery_app, redis_conn, worker_process):
    job_id = write_job_by_hand(redis_conn, EXECUTE_TASK, [["not", "a", "name"], "args", {}])
    worker_process("-P", "solo")
    result = celery_app.AsyncResult(job_id)
    wait_for(lambda: result.state == "FAILURE", timeout=20)
    assert "malformed task message" in str(result.result)


def test_a_job_whose_data_cannot_be_decoded_fails_and_the_worker_runs_on(celery_app, redis_conn, burst_worker):
    # Given a task of a rate-limited name whose job data was overwritten with bytes no worker can decode,
    # queued before a sound task
    damaged = compat_tasks.paced.delay("damaged")
    redis_conn.hset(f"rq:job:{damaged.id}", "data", b"\x00not json")
    sound = compat_tasks.unpaced.delay("sound")
    # When a worker drains the queue
    burst_worker()
    # Then the damaged one failed, refused and never run, and the worker went on to the next
    assert damaged.state == "FAILURE"
    assert type(damaged.result).__name__ == "RefusedJob" and "cannot be decoded" in str(damaged.result)
    assert redis_conn.lrange("record:damaged", 0, -1) == []
    assert damaged.id in FailedJobRegistry("celery", connection=redis_conn).get_job_ids()
    assert sound.state == "SUCCESS"


def test_a_message_may_import_only_the_projects_own_modules():
    # The project's task modules (under the working directory) may be imported on demand
    assert may_import("tests.compat_tasks") and may_import("app.tasks.email")
    # The standard library, installed packages and nonsense never are
    for module in ("os", "subprocess", "rq.cli", "redis", "antigravity", "sys", "", None, "a b", "../x"):
        assert not may_import(module), module
