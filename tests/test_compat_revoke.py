"""Revoking: a waiting task never runs, an expired one neither, a running one stops with terminate."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry
from rq.serializers import JSONSerializer

from app.celery_compat import states
from app.celery_compat.exceptions import TaskRevokedError
from app.celery_compat.result import AsyncResult
from tests import compat_tasks
from tests.support import wait_for


def test_revoking_a_queued_task_means_it_never_runs(celery_app, burst_worker, redis_conn):
    result = compat_tasks.ignored.apply_async(("revoked-ran",), ignore_result=False)
    result.revoke()
    burst_worker()
    assert redis_conn.lrange("record:revoked-ran", 0, -1) == []
    assert result.state == states.REVOKED
    with pytest.raises(TaskRevokedError, match="revoked"):
        result.get(timeout=5)


def test_app_control_revoke_also_stops_a_scheduled_task(celery_app, burst_worker):
    result = compat_tasks.add.apply_async((1, 1), countdown=1)
    celery_app.control.revoke(result.id)
    assert AsyncResult(result.id).state == states.REVOKED
    job = Job.fetch(result.id, connection=celery_app.connection, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.CANCELED


def test_a_revoke_that_races_the_dequeue_still_discards_the_task(celery_app, burst_worker, redis_conn):
    # Given a revoke recorded while the job still sits in the queue (as if a worker grabbed it meanwhile)
    result = compat_tasks.ignored.apply_async(("raced",), ignore_result=False)
    celery_app.backend.mark_revoked(result.id)
    burst_worker()
    assert redis_conn.lrange("record:raced", 0, -1) == []
    assert result.state == states.REVOKED


def test_an_expired_task_is_revoked_and_never_runs(celery_app, burst_worker):
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    result = compat_tasks.add.apply_async((1, 1), expires=past)
    burst_worker()
    assert result.state == states.REVOKED
    with pytest.raises(TaskRevokedError, match="expired"):
        result.get(timeout=5)


@pytest.mark.parametrize("pool", ["fork", "prefork", "solo"])
def test_revoke_with_terminate_stops_a_running_task(celery_app, worker_process, pool):
    # Given a worker running a long task
    worker_process("-P", pool, "-c", "1")
    result = compat_tasks.tracked.delay(30)
    wait_for(lambda: AsyncResult(result.id).state == states.STARTED, timeout=15)
    # When it is revoked with terminate=True
    result.revoke(terminate=True)
    # Then it is REVOKED at once, and once its work horse is stopped RQ files its job as canceled
    # (as a revoked waiting task's), not failed: rq-dashboard counts it under "Canceled"
    assert AsyncResult(result.id).state == states.REVOKED
    job = Job.fetch(result.id, connection=celery_app.connection, serializer=JSONSerializer)
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.CANCELED, timeout=15)
    options = {"connection": celery_app.connection, "serializer": JSONSerializer}
    assert CanceledJobRegistry("celery", **options).get_job_ids() == [result.id]
    assert FailedJobRegistry("celery", **options).get_job_ids() == []
    with pytest.raises(TaskRevokedError, match="terminated"):
        result.get(timeout=5)


def test_revoking_a_finished_task_leaves_its_result_alone(celery_app, burst_worker):
    result = compat_tasks.add.delay(2, 2)
    burst_worker()
    result.revoke()
    assert (AsyncResult(result.id).state, result.get()) == (states.SUCCESS, 4)
