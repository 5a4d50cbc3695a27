"""Jobs queued before the restructure still run: the message layout on Redis did not change.

The job is written by hand, byte for byte as the adapter wrote it before ``protocol.Envelope``
existed: RQ's hash, ``data`` = zlib(JSON [entry point, null, [name, args, kwargs], {}]), and
Celery's options in ``meta`` = JSON ``{"celery": {...}}``.
"""

from __future__ import annotations

import json
import uuid
import zlib
from datetime import datetime, timezone

import pytest

from app.celery_compat.protocol import EXECUTE_TASK, Envelope, MalformedMessage
from tests import compat_tasks
from tests.support import wait_for

LEGACY_REVOKED_PREFIX = "celery-compat-revoked-"  # how a revoke was marked before the keys module


def enqueue_in_todays_layout(conn, name: str, args: list, kwargs: dict, options: dict,
                             queue: str = "celery") -> str:
    job_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn.hset(f"rq:job:{job_id}", mapping={
        "data": zlib.compress(json.dumps([EXECUTE_TASK, None, [name, args, kwargs], {}]).encode()),
        "meta": json.dumps({"celery": options}), "created_at": now, "enqueued_at": now, "origin": queue,
        "status": "queued", "description": f"{name}(...)", "timeout": -1, "result_ttl": 86400,
        "failure_ttl": 604800, "failure_callback_name": "app.celery_compat.recovery.on_job_failure",
    })
    conn.sadd("rq:queues", f"rq:queue:{queue}")
    conn.rpush(f"rq:queue:{queue}", job_id)
    return job_id


@pytest.mark.parametrize("pool", ["prefork", "fork"])
def test_a_job_queued_by_the_previous_layout_runs_to_success(pool, celery_app, redis_conn, worker_process):
    # Given a job written as the adapter wrote it before, with its module and a time limit
    job_id = enqueue_in_todays_layout(redis_conn, "tests.compat_tasks.add", [2, 40], {},
                                      {"module": "tests.compat_tasks", "time_limit": 30})
    # When today's worker runs it
    worker_process("-P", pool, "-c", "1")
    # Then it succeeds with Celery's result, and RQ's record agrees
    assert celery_app.AsyncResult(job_id).get(timeout=20) == 42
    wait_for(lambda: redis_conn.hget(f"rq:job:{job_id}", "status") == b"finished", timeout=10)


def test_a_revoke_recorded_by_the_previous_layout_is_still_honoured(celery_app, redis_conn, worker_process):
    # Given a queued task revoked before the upgrade: the mark under its old name (the lean worker
    # reads the revoke from the job hash instead; RQ's own workers read this mark)
    result = compat_tasks.add.delay(1, 1)
    redis_conn.set(f"{LEGACY_REVOKED_PREFIX}{result.id}", 1)
    # When RQ's forking worker reaches it, then it is discarded as revoked
    worker_process("-P", "fork")
    wait_for(lambda: result.state == "REVOKED", timeout=20)


def test_the_envelope_reads_what_send_task_writes(celery_app, redis_conn):
    from rq.job import Job
    from rq.serializers import JSONSerializer

    result = compat_tasks.add.apply_async((1, 2), countdown=0, time_limit=5)
    job = Job.fetch(result.id, connection=redis_conn, serializer=JSONSerializer)
    envelope = Envelope.of(job)
    assert (envelope.name, envelope.args, envelope.kwargs) == ("tests.compat_tasks.add", [1, 2], {})
    assert envelope.module == "tests.compat_tasks" and envelope.time_limit == 5


@pytest.mark.parametrize("job_args", [None, [], ["a", [], {}, 1], [1, [], {}], ["a", {}, {}], ["a", [], []]])
def test_the_envelope_refuses_what_is_not_a_task_message(job_args):
    with pytest.raises(MalformedMessage):
        Envelope.parse(job_args, {})
