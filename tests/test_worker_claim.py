"""The lean worker's claim returns only the job fields its task needs (issue 19), and loses nothing by it.

The claim scripts return an HMGET of worker/claimed.py's CLAIM_FIELDS instead of the whole job
hash. RQ's failure and retry paths save the whole job, and a task may look at its RQ job: both
must see every field as it is in Redis, never a default written over a field the claim left out.
"""

from __future__ import annotations

import re

import pytest
from rq import get_current_job

from app.celery_compat import keys, scripts, states
from app.celery_compat.worker import claimed
from tests import compat_tasks

#: Fields the worker changes (or RQ's failure and retry paths do): the rest must stay as sent.
CHANGED = {b"status", b"started_at", b"ended_at", b"last_heartbeat", b"worker_name", b"exc_info",
           b"number_of_retries", b"meta", b"data", b"enqueued_at", b"celery_final"}


@compat_tasks.app.task
def look_at_my_job():
    job = get_current_job()
    return [job.description, job.created_at.isoformat(), job.origin, job._failure_callback_name]


def kept(sent: dict, now: dict) -> dict:
    """The fields sent that nothing should change, as they are ``now`` (RQ's save may add empty ones)."""
    return {field: now.get(field) for field in sent if field not in CHANGED}


def commands(redis_conn, name: str) -> int:
    return redis_conn.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0)


@pytest.mark.parametrize("script", [scripts.CLAIM_NEXT, scripts.CLAIM_GIVEN])
def test_the_claim_scripts_return_the_fields_the_worker_reads_in_its_order(script):
    listed = re.search(r"'HMGET', job_key, ([^)]*)\)", script).group(1)
    assert tuple(re.findall(r"'([a-z_]+)'", listed)) == claimed.CLAIM_FIELDS
    assert "HGETALL" not in script


def test_a_successful_task_reads_no_more_of_its_job_than_the_claim_returned(celery_app, burst_worker, redis_conn):
    results = [compat_tasks.add.delay(i, 1) for i in range(5)]
    before = commands(redis_conn, "hgetall")
    burst_worker()
    assert [result.get(timeout=5) for result in results] == [i + 1 for i in range(5)]
    assert commands(redis_conn, "hgetall") == before


def test_a_failed_task_keeps_every_field_of_its_job_hash(celery_app, burst_worker, redis_conn):
    result = compat_tasks.fail.delay("no")
    sent = redis_conn.hgetall(keys.job(result.id))
    burst_worker()
    assert result.state == states.FAILURE
    after = redis_conn.hgetall(keys.job(result.id))
    assert after[b"status"] == b"failed"
    assert kept(sent, after) == kept(sent, sent)


def test_a_retried_task_keeps_its_job_hash_and_runs_again(celery_app, burst_worker, redis_conn):
    result = compat_tasks.times_ten_after_a_retry.delay(4)
    sent = redis_conn.hgetall(keys.job(result.id))
    burst_worker()
    assert result.get(timeout=5) == 40
    after = redis_conn.hgetall(keys.job(result.id))
    assert after[b"number_of_retries"] == b"1"
    assert kept(sent, after) == kept(sent, sent)


def test_a_task_looking_at_its_rq_job_sees_the_fields_the_claim_left_out(celery_app, burst_worker, redis_conn):
    result = look_at_my_job.delay()
    sent = redis_conn.hgetall(keys.job(result.id))
    burst_worker()
    description, created_at, origin, callback = result.get(timeout=5)
    assert description == sent[b"description"].decode()
    assert created_at.startswith(sent[b"created_at"].decode()[:19])
    assert origin == sent[b"origin"].decode()
    assert callback == sent[b"failure_callback_name"].decode()


def test_a_queued_id_whose_hash_has_no_data_is_dropped_and_the_next_task_runs(celery_app, burst_worker, redis_conn):
    queue = keys.queue(celery_app.conf.task_default_queue)
    redis_conn.hset(keys.job("not-a-job"), "status", "queued")  # a bare hash: no job's data
    redis_conn.rpush(queue, "not-a-job")
    result = compat_tasks.add.delay(2, 3)
    burst_worker()
    assert result.get(timeout=5) == 5
    assert redis_conn.hget(keys.job("not-a-job"), "status") == b"queued"  # never marked started
    assert not redis_conn.zrange(keys.started(celery_app.conf.task_default_queue), 0, -1)
