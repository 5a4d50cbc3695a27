"""A claim whose reply was lost gives its task back: it runs once, never fails as WorkerLostError.

The lean worker claims a task in one Lua call that pops its id and enters ``<job id>:<execution
id>`` in the started registry. When Redis ran that call but the reply never came back (the
connection cut, a socket timeout), the task sits in the registry under a claim nobody beats;
sending the call again claims a second task. Celery's broker would redeliver an unacknowledged
message: here the task goes back to the front of its queue, not counted as a redelivery, and runs
once. The replies are lost for real (tests/support_faults.LostReplies): Redis runs the call, the
client sees its connection drop.
"""

from __future__ import annotations

import time

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from app.celery_compat import keys, scripts, states
from app.celery_compat.protocol import Envelope
from app.celery_compat.worker import lean, pool
from app.celery_compat.worker.reach import EXIT_UNSURE_CLAIMS
from tests import compat_tasks
from tests.support_faults import LostReplies

TASKS = 6


def send_tasks(key: str) -> list:
    return [compat_tasks.remember.delay(number, key) for number in range(TASKS)]


def assert_each_ran_once(results: list, redis_conn, key: str) -> None:
    """Every task succeeded, ran once, was never redelivered, and holds no claim any more."""
    assert [result.get(timeout=5) for result in results] == list(range(TASKS))
    assert {result.state for result in results} == {states.SUCCESS}
    assert sorted(int(value) for value in redis_conn.lrange(f"record:{key}", 0, -1)) == list(range(TASKS))
    for result in results:
        job = Job.fetch(result.id, connection=redis_conn, serializer=JSONSerializer)
        assert "redelivered" not in Envelope.options_of(job)
    assert redis_conn.zrange(keys.started("celery"), 0, -1) == []
    assert redis_conn.llen(keys.queue("celery")) == 0


def test_a_finish_and_next_claim_whose_reply_was_lost_on_a_retrying_client_runs_every_task_once(
        client_retries, burst_worker, redis_conn, monkeypatch):
    # Given tasks queued, a client that sends a command again after a lost reply (redis-py's
    # retry), and the reply lost of the first round trip that records a success and claims the
    # next task (sent again, it would claim a second task under the same execution id, the first
    # one's claim left in the started registry)
    client_retries(2)
    results = send_tasks("retrying")
    lost = LostReplies(scripts.CLAIM_NEXT, in_pipeline=True).install(monkeypatch)
    # When a worker drains the queue
    burst_worker()
    # Then the reply was lost once, and each task ran once and succeeded: the task claimed went
    # back to its queue instead of waiting for the heartbeat sweep to fail it
    assert lost.lost == 1
    assert_each_ran_once(results, redis_conn, "retrying")


@pytest.mark.parametrize("retries", [0, 2])
def test_a_claim_whose_reply_was_lost_runs_its_task_once(retries, client_retries, burst_worker, redis_conn,
                                                         monkeypatch):
    # Given tasks queued, on a client that does not send a command again after a lost reply
    # (redis-py's default for a URL) or one that does, and the reply of the worker's first claim lost
    client_retries(retries)
    results = send_tasks(f"claim-{retries}")
    lost = LostReplies(scripts.CLAIM_NEXT, in_pipeline=False).install(monkeypatch)
    # When a worker drains the queue
    burst_worker()
    # Then the task that claim took ran once, as every other
    assert lost.lost == 1
    assert_each_ran_once(results, redis_conn, f"claim-{retries}")


@pytest.mark.parametrize("times", [1, 3])
def test_a_finish_and_next_claim_whose_reply_was_lost_runs_every_task_once(
        times, client_retries, burst_worker, redis_conn, monkeypatch):
    # Given tasks queued, a client that does not send a command again, and the reply lost of the
    # round trip that records a success and claims the next task: once, or three round trips
    # in a row (each claim taken while the last one's task is still to be given back)
    client_retries(0)
    results = send_tasks(f"finish-{times}")
    lost = LostReplies(scripts.CLAIM_NEXT, in_pipeline=True, times=times).install(monkeypatch)
    # When a worker drains the queue
    burst_worker()
    # Then every one of those replies was lost, and yet each task ran once and succeeded
    assert lost.lost == times
    assert_each_ran_once(results, redis_conn, f"finish-{times}")


def test_a_lost_claims_task_is_given_back_before_the_heartbeat_sweep_takes_it_for_abandoned(
        client_retries, burst_worker, redis_conn, monkeypatch):
    # Given a short heartbeat (abandoned after 2 s), the reply of the worker's first claim lost,
    # and the worker's next try at claiming coming only after 6 s (a long backoff in an outage)
    app = client_retries(0)
    app.conf.worker_heartbeat_interval, app.conf.worker_heartbeat_ttl = 0.5, 2.0
    results = send_tasks("backoff")
    lost = LostReplies(scripts.CLAIM_NEXT, in_pipeline=False).install(monkeypatch)
    monkeypatch.setattr(lean, "sleep_unless", lambda seconds, stop: time.sleep(6) or True)
    # When a worker drains the queue
    burst_worker()
    # Then its heartbeat thread gave the task back before its sweep could fail it as WorkerLostError
    assert lost.lost == 1
    assert_each_ran_once(results, redis_conn, "backoff")


def test_a_work_process_leaving_with_a_lost_claim_not_given_back_exits_for_its_supervisor(monkeypatch):
    # Given a work process whose worker could not give back a lost claim's task (Redis unreachable)
    class Leaving:
        name = "worker-1"
        unsure_claims = {"execution-id": ["rq:wip:celery"]}

    # When it leaves, Then it exits with the code that makes its supervisor give back what it claimed
    with pytest.raises(SystemExit) as leaving:
        pool._leave(Leaving())
    assert leaving.value.code == EXIT_UNSURE_CLAIMS
    # (and a worker with nothing left to give back leaves quietly)
    Leaving.unsure_claims = {}
    pool._leave(Leaving())
