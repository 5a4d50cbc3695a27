"""What ``.delay()`` writes: the RQ job hash RQ itself would write (less its empty fields), without an rq Job."""

from __future__ import annotations

import fakeredis
import pytest
from rq import Callback, Queue
from rq.defaults import CALLBACK_TIMEOUT
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from app.celery_compat import Celery
from app.celery_compat.protocol import EXECUTE_TASK, FAILURE_CALLBACK

#: Written at different moments, so they differ between the two hashes; compared separately.
TIMESTAMPS = {b"created_at", b"enqueued_at"}


@pytest.fixture
def fake_app():
    app = Celery("fake", set_as_current=False)
    app._connection = fakeredis.FakeRedis()
    app._connection_url = app.broker_url

    @app.task(name="fake.add", time_limit=30)
    def add(x, y):
        return x + y

    return app, add


def rq_own_hash(app: Celery, task_id: str) -> dict[bytes, bytes]:
    """The hash RQ's ``Queue.create_job`` + ``enqueue_job`` write for the same job, read back from Redis."""
    sent = Job.fetch(task_id, connection=app.connection, serializer=JSONSerializer)
    queue = Queue("celery", connection=app.connection, serializer=JSONSerializer)
    job = queue.create_job(EXECUTE_TASK, args=sent.args, timeout=sent.timeout, result_ttl=sent.result_ttl,
                           failure_ttl=sent.failure_ttl, description=sent.description, job_id="reference",
                           meta=sent.meta, on_failure=Callback(FAILURE_CALLBACK))
    queue.enqueue_job(job)
    return app.connection.hgetall(job.key)


def test_a_sent_task_is_stored_with_the_fields_and_values_rq_writes(fake_app):
    app, add = fake_app
    # Given a task sent with .delay()
    result = add.delay(2, 3)
    ours = app.connection.hgetall(f"rq:job:{result.id}")
    # When RQ writes the same job its own way
    theirs = rq_own_hash(app, result.id)
    # Then ours has RQ's fields but the empty ones and the callback's default timeout (RQ reads a
    # missing field as empty, or as its default) and, but for the moments and data's compression,
    # the same values
    defaults = {field for field, value in theirs.items() if value == b""} | {b"failure_callback_timeout"}
    assert theirs[b"failure_callback_timeout"] == str(CALLBACK_TIMEOUT).encode()
    assert set(ours) == set(theirs) - defaults
    differing = {field for field in ours if ours[field] != theirs[field]}
    assert differing <= TIMESTAMPS | {b"data"}
    assert all(ours[field].endswith(b"Z") and len(ours[field]) == len(theirs[field]) for field in TIMESTAMPS)


def test_rq_reads_a_sent_task_back_as_the_job_the_worker_runs(fake_app):
    app, add = fake_app
    # Given a task sent with .delay()
    result = add.delay(2, y=3)
    # When RQ loads it as its workers do
    job = Job.fetch(result.id, connection=app.connection, serializer=JSONSerializer)
    # Then it is the adapter's entry point with the task's name, arguments and options, queued on its queue
    assert (job.func_name, job.args, job.kwargs) == (EXECUTE_TASK, ["fake.add", [2], {"y": 3}], {})
    assert (job.get_status(), job.origin, job.timeout) == (JobStatus.QUEUED, "celery", 31)
    assert (job.failure_callback.__name__, job.failure_callback_timeout) == ("on_job_failure", CALLBACK_TIMEOUT)
    assert job.enqueued_at == job.created_at
    assert app.connection.lrange("rq:queue:celery", 0, -1) == [result.id.encode()]


@pytest.mark.parametrize(("payload", "compressed"), [("x" * 10, False), ("x" * 5000, True)])
def test_large_arguments_are_stored_compressed_as_rq_does_and_small_ones_as_they_are(fake_app, payload, compressed):
    app, add = fake_app
    # Given a task sent with a small or a large argument
    result = add.delay(payload, "")
    stored = app.connection.hget(f"rq:job:{result.id}", "data")
    # Then only the large one is a zlib stream, and RQ reads both back the same way
    assert stored.startswith(b"x\x9c") is compressed
    assert len(stored) < 1000
    job = Job.fetch(result.id, connection=app.connection, serializer=JSONSerializer)
    assert job.args == ["fake.add", [payload, ""], {}]


@pytest.mark.parametrize("transaction", [False, True], ids=["plain send", "in a transaction"])
def test_a_send_the_client_repeats_after_a_lost_reply_queues_the_task_once(celery_app, redis_conn, monkeypatch,
                                                                          transaction):
    # redis-py sends a command again, as it was, after a timeout or a dropped connection (the web
    # app's client retries once): the first one may have been applied. Simulated: the send's
    # script call is on the pipeline twice.
    original = type(celery_app)._enqueue

    def enqueue_as_retried(self, queue, job_options, pipeline, index):
        original(self, queue, job_options, pipeline, index)
        pipeline.command_stack.append(pipeline.command_stack[-1])

    monkeypatch.setattr(type(celery_app), "_enqueue", enqueue_as_retried)
    pipe = celery_app.connection.pipeline(transaction=transaction)
    result = celery_app.send_task("tests.compat_tasks.add", (1, 2), pipeline=pipe)
    pipe.execute()
    # Then its id is queued once: it runs once
    assert [job_id.decode() for job_id in redis_conn.lrange("rq:queue:celery", 0, -1)] == [result.id]


def test_a_queue_is_in_rqs_set_of_queues_from_its_first_send_and_again_after_removal_by_hand(celery_app, redis_conn):
    celery_app.conf.task_index_trim_every = 3
    # When the first task goes to a queue: RQ's tools (rq info, rq-dashboard) find the queue
    celery_app.send_task("tests.compat_tasks.add", (1, 2))
    assert redis_conn.smembers("rq:queues") == {b"rq:queue:celery"}
    # Given the queue taken out of RQ's set by hand while it holds tasks
    redis_conn.srem("rq:queues", "rq:queue:celery")
    # Then it is registered again within the index's trim cadence (every third send here)
    for _ in range(3):
        celery_app.send_task("tests.compat_tasks.add", (1, 2))
    assert redis_conn.smembers("rq:queues") == {b"rq:queue:celery"}
