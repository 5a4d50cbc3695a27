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


# -- the next task's claim rides with the last one's record ------------------------------------
def lean_worker(celery_app, worker_class=None):
    from rq.serializers import JSONSerializer

    from app.celery_compat.worker import LeanWorker, rq_queues

    queues = rq_queues(celery_app, [celery_app.conf.task_default_queue])
    return (worker_class or LeanWorker)(queues, connection=celery_app.connection, serializer=JSONSerializer)


def test_a_busy_worker_claims_its_next_task_in_the_round_trip_that_records_the_last(celery_app, monkeypatch):
    from app.celery_compat.worker import LeanWorker

    alone = []  # the claims made in a round trip of their own
    claim = LeanWorker._claim_from_lists
    monkeypatch.setattr(LeanWorker, "_claim_from_lists", lambda self, *args: alone.append(1) or claim(self, *args))
    results = [compat_tasks.add.delay(i, 1) for i in range(10)]
    lean_worker(celery_app).work(burst=True, logging_level="WARNING")
    assert [result.get(timeout=5) for result in results] == [i + 1 for i in range(10)]
    assert len(alone) == 2  # the first task's, and the one that found the queue empty: not 11


def test_a_worker_told_to_take_n_tasks_claims_no_more(celery_app, redis_conn):
    results = [compat_tasks.add.delay(i, 1) for i in range(5)]
    lean_worker(celery_app).work(burst=True, max_jobs=2, logging_level="WARNING")
    assert [result.state for result in results] == [states.SUCCESS] * 2 + [states.PENDING] * 3
    assert redis_conn.llen(keys.queue(celery_app.conf.task_default_queue)) == 3
    assert not redis_conn.zrange(keys.started(celery_app.conf.task_default_queue), 0, -1)


def test_a_claimed_next_task_goes_back_to_its_queue_when_the_loop_ends_by_an_error(celery_app, redis_conn):
    from app.celery_compat.worker import LeanWorker

    class Failing(LeanWorker):
        def _perform(self, *claimed):
            super()._perform(*claimed)
            raise RuntimeError("the loop breaks after a task")

    results = [compat_tasks.add.delay(i, 1) for i in range(3)]
    with pytest.raises(RuntimeError):
        lean_worker(celery_app, Failing).work(burst=True, logging_level="WARNING")
    assert results[0].get(timeout=5) == 1
    queue = celery_app.conf.task_default_queue
    # at the front, where it was: the order of the queue is kept
    assert redis_conn.lrange(keys.queue(queue), 0, -1) == [results[1].id.encode(), results[2].id.encode()]
    assert redis_conn.hget(keys.job(results[1].id), "status") == b"queued"
    assert not redis_conn.zrange(keys.started(queue), 0, -1)


def test_a_task_whose_data_is_compressed_runs(celery_app, burst_worker, redis_conn):
    from app.celery_compat.app.amqp import COMPRESS_ABOVE

    text = "x" * (COMPRESS_ABOVE * 2)
    result = compat_tasks.echo.delay(text)
    assert redis_conn.hget(keys.job(result.id), "data")[:1] == b"x"  # zlib's header, not JSON's "["
    burst_worker()
    assert result.get(timeout=5) == text
