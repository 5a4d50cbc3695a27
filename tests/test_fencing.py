"""Never twice, never backwards: every state write is fenced with the writer's claim on the task.

A worker's claim on a task is its started-registry entry ``<job id>:<execution id>``. The
recovery rule (a dead or frozen worker's task re-queued or failed) removes that entry in the
same step as it acts, so a worker that lost its claim can write nothing afterwards: no state,
no result, no RQ bookkeeping. The worker tests use tests/chaos_tasks.py, whose heartbeat is
0.5 s and whose tasks count as abandoned after 2 s without one.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from rq import Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from app.celery_compat import keys, scripts, states
from app.celery_compat._state import Context
from app.celery_compat.app.trace import trace_task
from app.celery_compat.backends.redis import hold_claim, release_claim
from app.celery_compat.worker.recovery import reap_expired
from tests import chaos_tasks, compat_tasks
from tests.support import wait_for
from tests.support_chaos import StateLog, claim_on, lost_claim, runs


def status(app, task_id: str) -> str:
    return app.backend.get_task_meta(task_id)["status"]


# -- the fence itself --------------------------------------------------------------------------
def test_a_worker_that_lost_its_claim_writes_no_state(chaos_app, redis_conn):
    # Given a worker holding its claim on a task, which has written PROGRESS
    claim = claim_on(redis_conn, "t-lost")
    hold_claim("t-lost", claim)
    try:
        chaos_app.backend.store_result("t-lost", {"step": 1}, "PROGRESS")
        assert status(chaos_app, "t-lost") == "PROGRESS"
        # When the recovery rule takes the task from it (its entry is removed)
        redis_conn.zrem(claim.registry, claim.entry)
        # Then its later writes, final or not, are refused
        chaos_app.backend.store_result("t-lost", 42, states.SUCCESS)
        chaos_app.backend.store_result("t-lost", {"step": 2}, "PROGRESS")
        assert status(chaos_app, "t-lost") == "PROGRESS"
        assert chaos_app.backend.get_task_meta("t-lost")["result"] == {"step": 1}
    finally:
        release_claim("t-lost")


def test_a_worker_whose_redis_lost_everything_still_stores_its_outcome(chaos_app, redis_conn):
    # Given a running task, when Redis restarts without its data (no AOF): claim and job are gone
    hold_claim("t-amnesia", claim_on(redis_conn, "t-amnesia"))
    try:
        redis_conn.flushdb()
        # Then its outcome is still stored: nobody else can have taken a job that no longer exists
        chaos_app.backend.store_result("t-amnesia", 42, states.SUCCESS)
        assert status(chaos_app, "t-amnesia") == states.SUCCESS
    finally:
        release_claim("t-amnesia")


def test_a_stale_run_writes_and_sends_nothing_once_the_task_succeeded_elsewhere_and_its_job_expired(
        celery_app, burst_worker, redis_conn):
    # Given a task that another run finished with SUCCESS, its job hash kept 1 s, then expired
    celery_app.conf.worker_job_keep_seconds = 1
    result = compat_tasks.add.delay(1, 2)
    burst_worker()
    assert result.get(timeout=5) == 3
    wait_for(lambda: not redis_conn.exists(keys.job(result.id)), timeout=5)
    # When a run of it that stalled longer (its claim taken) resumes and ends
    claim = lost_claim(result.id)
    hold_claim(result.id, claim)
    try:
        request = Context(id=result.id, args=[99], kwargs={}, called_directly=False, retries=0,
                          delivery_info={"routing_key": "celery"}, callbacks=[compat_tasks.add.si(0, 0)],
                          chain=[compat_tasks.add.si(0, 1)], connection=redis_conn)
        trace_task(compat_tasks.echo, request, [99], {}, store=True)  # this run's result: 99
    finally:
        release_claim(result.id)
    # Then it stored nothing over the other run's result and sent none of what follows the task
    assert celery_app.AsyncResult(result.id).get(timeout=1) == 3
    assert redis_conn.llen(keys.queue("celery")) == 0
    # And the worker's own scripts agree: its end records nothing, its heartbeat finds the claim lost
    info, stale_doc = keys.task_info(result.id), '{"status": "SUCCESS", "result": -1}'
    finish_keys = [keys.job(result.id), claim.registry, keys.registry("finished", "celery"), info, keys.meta(result.id)]
    assert redis_conn.eval(scripts.FINISH_SUCCESS, 5, *finish_keys, result.id, "stale", "now", 60, 0, stale_doc, 0) == 0
    assert celery_app.AsyncResult(result.id).get(timeout=1) == 3
    assert redis_conn.eval(scripts.BEAT, 3, claim.registry, keys.job(result.id), info, claim.entry, 0, "now") == 0


def _run_with_follow_ups(connection, task_id: str, fail: bool = False):
    """Run chaos_tasks' task in this process as a worker would, with a callback, an errback and a next step."""
    request = Context(id=task_id, args=[], kwargs={}, called_directly=False, retries=0,
                      delivery_info={"routing_key": "celery"},
                      callbacks=[chaos_tasks.counted.si()], errbacks=[chaos_tasks.counted.si()],
                      chain=[chaos_tasks.counted.si()], connection=connection)
    task = chaos_tasks.fails if fail else chaos_tasks.counted
    return trace_task(task, request, [], {}, store=True)


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_a_run_that_lost_its_claim_sends_nothing_that_follows_its_task(chaos_app, redis_conn, fail):
    # Given a run whose claim the recovery rule took (the task went to another worker)
    claim = claim_on(redis_conn, "t-stale")
    hold_claim("t-stale", claim)
    redis_conn.zrem(claim.registry, claim.entry)
    try:
        # When the run ends, with callbacks, errbacks and a next chain step to send
        _run_with_follow_ups(redis_conn, "t-stale", fail)
    finally:
        release_claim("t-stale")
    # Then it sends none of them: the run that holds the task now sends them, once
    assert redis_conn.llen(keys.queue("celery")) == 0
    # While a run that still holds its claim sends them
    hold_claim("t-live", claim_on(redis_conn, "t-live"))
    try:
        _run_with_follow_ups(redis_conn, "t-live", fail)
    finally:
        release_claim("t-live")
    assert redis_conn.llen(keys.queue("celery")) >= 1


def test_a_final_state_is_never_followed_by_an_earlier_one_of_the_same_run(chaos_app, redis_conn):
    # Given a run that stored SUCCESS while still holding its claim
    hold_claim("t-final", claim_on(redis_conn, "t-final", execution="run1"))
    try:
        chaos_app.backend.store_result("t-final", 42, states.SUCCESS)
        # When a thread of the task reports progress afterwards
        chaos_app.backend.store_result("t-final", {"step": 9}, "PROGRESS")
        # Then SUCCESS stands
        assert status(chaos_app, "t-final") == states.SUCCESS
    finally:
        release_claim("t-final")
    # But a new run of the same task (a retry from the failed registry, a redelivery) writes again
    hold_claim("t-final", claim_on(redis_conn, "t-final", execution="run2"))
    try:
        chaos_app.backend.store_result("t-final", {"step": 0}, "PROGRESS")
        assert status(chaos_app, "t-final") == "PROGRESS"
    finally:
        release_claim("t-final")


def test_an_expired_task_is_recovered_once_when_several_workers_sweep_at_once(chaos_app, redis_conn):
    # Given a task whose worker stopped beating (its entry expired a second ago)
    result = chaos_tasks.counted.delay()
    queue_key = keys.queue("celery")
    redis_conn.lrem(queue_key, 1, result.id)
    redis_conn.hset(keys.job(result.id), "status", "started")
    redis_conn.zadd(keys.started("celery"), {f"{result.id}:dead": time.time() - 1})
    # When eight workers sweep at the same moment
    barrier = threading.Barrier(8)
    recovered: list[list[str]] = []

    def sweep() -> None:
        barrier.wait()
        recovered.append(reap_expired(chaos_app.connection, "celery", app=chaos_app))

    threads = [threading.Thread(target=sweep) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one re-queued it, once
    assert sorted(len(ids) for ids in recovered) == [0] * 7 + [1]
    assert redis_conn.lrange(queue_key, 0, -1) == [result.id.encode()]
    assert redis_conn.zcard(keys.started("celery")) == 0


def test_a_fresh_beat_keeps_a_task_with_its_worker(chaos_app, redis_conn):
    # Given a task whose entry is fresh (its worker beats)
    redis_conn.zadd(keys.started("celery"), {"t-alive:e1": time.time() + 2})
    # When a sweep runs
    assert reap_expired(chaos_app.connection, "celery", app=chaos_app) == []
    # Then the claim stands
    assert redis_conn.zscore(keys.started("celery"), "t-alive:e1") is not None


# -- real workers ------------------------------------------------------------------------------
def test_a_frozen_worker_resumed_writes_nothing_and_registers_again(chaos_app, worker_process, redis_conn,
                                                                     tmp_path):
    # Given a whole worker (supervisor and work process) running a task that reports progress
    frozen = worker_process("-P", "prefork", "-c", "1", app="tests.chaos_tasks")
    states_seen = StateLog(chaos_app.connection)
    result = chaos_tasks.counted.delay(6.0, 30)
    wait_for(lambda: runs(redis_conn, result.id) == 1, timeout=30)
    frozen_names = {worker.name for worker in Worker.all(connection=redis_conn)}
    worker_process("-P", "solo", app="tests.chaos_tasks")
    # When it is frozen (SIGSTOP) past its heartbeat and the other worker takes the task over
    os.killpg(frozen.pid, signal.SIGSTOP)
    try:
        assert result.get(timeout=60) == result.id
        wait_for(lambda: not frozen_names & {w.name for w in Worker.all(connection=redis_conn)}, timeout=30)
    finally:
        # And then resumes (SIGCONT) in the middle of its copy of the task
        os.killpg(frozen.pid, signal.SIGCONT)
    # Then it stops its copy and writes nothing: SUCCESS is never followed by another state
    def log() -> str:
        return (tmp_path / "worker-0.log").read_text(errors="replace")  # worker_process's name for it

    wait_for(lambda: "lost task" in log(), timeout=15, describe=log)
    wait_for(lambda: len(Worker.all(connection=redis_conn)) == 2, timeout=15,
             describe=lambda: str([w.name for w in Worker.all(connection=redis_conn)]))
    time.sleep(1.0)  # a window for any late write of the stale copy to show up (none may)
    assert status(chaos_app, result.id) == states.SUCCESS
    assert states_seen.after_final(result.id) == []
    assert runs(redis_conn, result.id) == 2  # at least once: the frozen run, then the one that finished
    assert int(redis_conn.hget(chaos_tasks.DONE, result.id) or 0) == 1
    states_seen.close()


def test_a_task_stuck_between_pop_and_claim_goes_back_to_its_queue(chaos_app, worker_process, redis_conn):
    # Given a task whose worker died after RQ's blocking pop moved it to the intermediate list
    result = chaos_tasks.counted.delay()
    queue_key = keys.queue("celery")
    redis_conn.lmove(queue_key, keys.intermediate(queue_key), "LEFT", "RIGHT")
    # When a worker sweeps
    worker_process("-P", "solo", app="tests.chaos_tasks")
    # Then the task runs (within a few seconds, not RQ's minute, and never as a FAILED job in RQ alone)
    assert result.get(timeout=20) == result.id
    assert runs(redis_conn, result.id) == 1
    # (RQ's bookkeeping follows the published SUCCESS in the same pipeline, one command later)
    wait_for(lambda: Job.fetch(result.id, connection=redis_conn, serializer=JSONSerializer).get_status() == "finished",
             timeout=5)


def test_a_busy_cpu_task_is_not_taken_for_abandoned(chaos_app, worker_process, redis_conn):
    # Given a worker whose heartbeat counts a task abandoned after 2 s, and a second worker sweeping
    worker_process("-P", "prefork", "-c", "1", app="tests.chaos_tasks")
    worker_process("-P", "solo", app="tests.chaos_tasks")
    # When a task keeps the CPU busy for three times that
    result = chaos_tasks.busy.delay(6.0)
    # Then it finishes once: its heartbeat comes from a thread, independent of the task
    assert result.get(timeout=60) > 0
    assert runs(redis_conn, result.id) == 1


def test_a_whole_worker_killed_is_recovered_within_10_s_by_default(celery_app, worker_process, redis_conn):
    # Given a worker with the default heartbeat running a task safe to repeat, and a second worker
    doomed = worker_process("-P", "prefork", "-c", "1", "-Q", "celery")
    result = compat_tasks.safe_to_repeat.delay("whole10", 8)
    wait_for(lambda: redis_conn.llen("record:whole10") == 1, timeout=30)
    worker_process("-P", "solo", "-Q", "celery")
    # When the whole worker dies (every process of it, as with its machine)
    killed_at = time.monotonic()
    os.killpg(doomed.pid, signal.SIGKILL)
    # Then the task starts again elsewhere within 10 s
    wait_for(lambda: redis_conn.llen("record:whole10") == 2, timeout=30)
    assert time.monotonic() - killed_at < 10
    assert result.get(timeout=30) == "finished"


def test_an_idle_worker_frozen_past_its_registration_registers_again(chaos_app, worker_process, redis_conn):
    # Given an idle worker
    frozen = worker_process("-P", "solo", app="tests.chaos_tasks")
    [name] = [worker.name for worker in Worker.all(connection=redis_conn)]
    wait_for(lambda: 0 < redis_conn.ttl(f"rq:worker:{name}") <= 3, timeout=15)  # beating (RQ's birth sets 90 s)
    # When it is frozen until its registration expired (heartbeat 0.5 s + TTL 2 s)
    os.killpg(frozen.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: not redis_conn.exists(f"rq:worker:{name}"), timeout=15)
    finally:
        os.killpg(frozen.pid, signal.SIGCONT)
    # Then on resuming it registers again, as a live worker /healthz and the dashboard count
    wait_for(lambda: name in {worker.name for worker in Worker.all(connection=redis_conn)}
             and redis_conn.hget(f"rq:worker:{name}", "birth") is not None, timeout=15)
    # And takes tasks again
    assert chaos_tasks.counted.delay().get(timeout=30)
