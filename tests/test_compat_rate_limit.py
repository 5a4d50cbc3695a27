"""A task's ``rate_limit`` holds its tasks per worker node, as Celery's worker does.

Celery semantics: ``"2/s"`` means the tasks of that name start at most two a second on each
worker node (evenly spaced: a bucket of one token), a task over the rate waits (still PENDING, no
retry counted) while other tasks run, and ``app.control.rate_limit`` changes it on the workers.
The tasks (tests/compat_tasks.py) record when they started and which work process ran them.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.scheduler import RQScheduler

from app.celery_compat.contrib.testing.worker import start_worker
from app.celery_compat.worker.rate_limits import rate
from tests import compat_tasks
from tests.support import wait_for
from tests.support_chaos import children_of, gone

#: Generous: the machine is shared.
TIMEOUT = 30.0
#: What a start may lose to the work before a task's first line (Redis round trips, tracing).
SLACK = 0.05


def starts(redis_conn, key: str) -> list[tuple[float, str]]:
    """(start time, RQ worker name) of each task that recorded under ``key``, earliest first."""
    entries = [entry.decode().split(" ", 1) for entry in redis_conn.lrange(f"record:{key}", 0, -1)]
    return sorted((float(moment), worker) for moment, worker in entries)


def span(records: list[tuple[float, str]]) -> float:
    return records[-1][0] - records[0][0]


@pytest.mark.parametrize(("limit", "per_second"), [
    ("10/s", 10.0), ("10", 10.0), ("120/m", 2.0), ("3600/h", 1.0), ("0.5/s", 0.5), (5, 5.0), (0.25, 0.25),
    (None, 0.0), (0, 0.0), ("", 0.0),
])
def test_a_rate_is_read_as_celery_reads_it(limit, per_second):
    assert rate(limit) == pytest.approx(per_second)


@pytest.mark.parametrize("limit", ["2/fortnight", "many/s", "1/d", "1e-300/s", "0.0001/h", 1e-9])
def test_a_malformed_rate_is_a_value_error(limit):
    with pytest.raises(ValueError):
        rate(limit)


def test_a_limited_task_is_spaced_on_a_prefork_worker_while_an_unlimited_one_runs(celery_app, worker_process,
                                                                                 redis_conn):
    # Given a worker node with two work processes
    worker_process("-P", "prefork", "-c", "2", "-n", "paced@test", workers=2)
    # When six tasks limited to two a second are sent, then one without a limit
    limited = [compat_tasks.paced.delay("paced") for _ in range(6)]
    free = compat_tasks.unpaced.delay("free")
    # Then the last one is held, PENDING, while the first ones run
    wait_for(lambda: len(starts(redis_conn, "paced")) >= 2, timeout=TIMEOUT)
    assert limited[-1].state == "PENDING"
    # and all succeed, their starts spread over (6 - 1) / 2 s at least
    assert [result.get(timeout=TIMEOUT) for result in limited] == [None] * 6
    paced = starts(redis_conn, "paced")
    assert span(paced) >= 2.5 - SLACK
    # while the unlimited task did not wait behind them
    free.get(timeout=TIMEOUT)
    assert starts(redis_conn, "free")[0][0] < paced[-1][0]
    # and holding a task is no retry
    assert all(not Job.fetch(result.id, connection=redis_conn).number_of_retries for result in limited)


def test_the_rate_limit_command_speeds_up_what_a_prefork_worker_holds(celery_app, worker_process, redis_conn):
    # Given a two-process worker holding ten tasks limited to one a second
    worker_process("-P", "prefork", "-c", "2", "-n", "change@test", workers=2)
    results = [compat_tasks.slow_paced.delay("slow", 0.3) for _ in range(10)]
    wait_for(lambda: len(starts(redis_conn, "slow")) >= 2, timeout=TIMEOUT)
    before = starts(redis_conn, "slow")
    # When the worker is told the task may run a thousand times a second
    replies = celery_app.control.rate_limit("tests.compat_tasks.slow_paced", "1000/s", reply=True, timeout=TIMEOUT)
    assert replies == [{"change@test": {"ok": "new rate limit set successfully"}}]
    # Then the rest run at once, on both work processes, not one a second for eight more seconds
    assert [result.get(timeout=TIMEOUT) for result in results] == [None] * 10
    records = starts(redis_conn, "slow")
    after = records[len(before):]
    assert before[1][0] - before[0][0] >= 1.0 - SLACK
    assert after[-1][0] - after[0][0] < 4.0
    assert len({worker for _, worker in after}) == 2


def test_the_rate_limit_command_brings_back_what_a_priority_list_held(celery_app, worker_process, redis_conn):
    # Given a worker holding two tasks of priority 6 limited to one every two seconds, in the
    # scheduled registry of their priority list until their slots
    worker_process("-P", "solo", "-n", "prioritized@test")
    results = [compat_tasks.sparse.apply_async(("prioritized",), priority=6) for _ in range(3)]
    held = ScheduledJobRegistry(celery_app.amqp.priorities.queue("celery", 6), connection=redis_conn)
    wait_for(lambda: held.count == 2, timeout=TIMEOUT, interval=0.02)
    # When the rate is raised
    asked = time.time()
    replies = celery_app.control.rate_limit("tests.compat_tasks.sparse", "1000/s", reply=True, timeout=TIMEOUT)
    assert replies == [{"prioritized@test": {"ok": "new rate limit set successfully"}}]
    # Then the held tasks are due now, not at their old slots two and four seconds on
    assert [score for _, score in redis_conn.zrange(held.key, 0, -1, withscores=True)
            if score > asked + 1.0] == []
    assert [result.get(timeout=TIMEOUT) for result in results] == [None] * 3


def test_an_invalid_rate_is_refused_by_the_command(celery_app, worker_process):
    worker_process("-P", "solo", "-n", "strict@test")
    replies = celery_app.control.rate_limit("tests.compat_tasks.paced", "2/fortnight", reply=True, timeout=TIMEOUT)
    assert "Invalid rate limit string" in replies[0]["strict@test"]["error"]


def test_a_rate_under_one_a_year_is_refused_by_the_command(celery_app, worker_process):
    worker_process("-P", "solo", "-n", "yearly@test")
    replies = celery_app.control.rate_limit("tests.compat_tasks.paced", "1e-300/s", reply=True, timeout=TIMEOUT)
    assert "under one task a year" in replies[0]["yearly@test"]["error"]


def test_a_tasks_own_rate_under_one_a_year_is_ignored(celery_app, burst_worker, monkeypatch):
    # Given a task whose own rate limit is too slow to hold anything by
    monkeypatch.setattr(compat_tasks.paced, "rate_limit", "1e-300/s")
    results = [compat_tasks.paced.delay("yearly") for _ in range(2)]
    # When a worker drains its queue, then it ran them, unlimited (the worker did not stop on it)
    burst_worker()
    assert [result.state for result in results] == ["SUCCESS"] * 2


def test_two_worker_nodes_each_get_their_own_rate(celery_app, worker_process, redis_conn):
    # Given two worker nodes on the same queue
    worker_process("-P", "solo", "-n", "left@test")
    worker_process("-P", "solo", "-n", "right@test")
    # When eight tasks limited to two a second are sent
    results = [compat_tasks.paced.delay("nodes") for _ in range(8)]
    assert [result.get(timeout=TIMEOUT) for result in results] == [None] * 8
    # Then each node spaced its own (half a second apart), and the two started together
    records = starts(redis_conn, "nodes")
    by_node = {node: [record for record in records if record[1] == node] for node in ("left@test", "right@test")}
    assert all(len(ran) >= 2 for ran in by_node.values()), by_node
    for ran in by_node.values():
        assert span(ran) >= 0.5 * (len(ran) - 1) - SLACK
    assert abs(by_node["left@test"][0][0] - by_node["right@test"][0][0]) < 0.4


def test_a_burst_worker_waits_for_the_slots_of_what_it_drains(celery_app, burst_worker, redis_conn):
    # Given three tasks limited to one every two seconds, queued
    results = [compat_tasks.sparse.delay("burst") for _ in range(3)]
    # When a burst worker drains the queue
    burst_worker()
    # Then it ran them all before leaving, at their slots (it did not put any back for later)
    assert [result.state for result in results] == ["SUCCESS"] * 3
    assert span(starts(redis_conn, "burst")) >= 4.0 - SLACK


def test_a_burst_worker_waiting_for_a_slot_longer_than_the_heartbeat_ttl_keeps_its_task(celery_app, burst_worker,
                                                                                      redis_conn):
    # Given a heartbeat TTL shorter than the two- and four-second waits of three limited tasks
    celery_app.conf.worker_heartbeat_interval = 0.5
    celery_app.conf.worker_heartbeat_ttl = 1.0
    results = [compat_tasks.sparse.delay("beaten") for _ in range(3)]
    # When a burst worker drains them
    burst_worker()
    # Then the waiting tasks' claims were beaten: none was taken for abandoned, each ran once
    assert [result.state for result in results] == ["SUCCESS"] * 3
    assert len(starts(redis_conn, "beaten")) == 3


def test_a_burst_worker_stopped_while_waiting_for_a_slot_leaves_at_once_and_puts_the_task_back(
        celery_app, worker_process, redis_conn):
    # Given a burst worker that ran the first of two tasks limited to one every ten seconds
    results = [compat_tasks.rare.delay("stopped") for _ in range(2)]
    worker = worker_process("-P", "solo", "--burst", "-n", "leaving@test")
    wait_for(lambda: starts(redis_conn, "stopped"), timeout=TIMEOUT)
    # When it is asked to stop while it waits for the second one's slot
    time.sleep(0.5)
    asked = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=TIMEOUT)
    # Then it left at once, not at the slot ten seconds on
    assert time.monotonic() - asked < 5.0
    # and the second task waits in RQ's scheduled registry for its slot, not run, not lost
    assert len(starts(redis_conn, "stopped")) == 1
    assert results[1].state == "PENDING"
    assert results[1].id in ScheduledJobRegistry("celery", connection=redis_conn).get_job_ids()


@pytest.mark.parametrize(("disabled", "spread"), [(False, True), (True, False)])
def test_worker_disable_rate_limits_turns_them_off(celery_app, redis_conn, disabled, spread):
    # Given a test worker with two threads, rate limits enabled or not
    celery_app.conf.worker_disable_rate_limits = disabled
    with start_worker(celery_app, concurrency=2, perform_ping_check=False, hostname="switch@test"):
        # When six tasks limited to two a second are sent
        results = [compat_tasks.paced.delay("switch") for _ in range(6)]
        assert [result.get(timeout=TIMEOUT) for result in results] == [None] * 6
    # Then they are spread over 2.5 s, or run at once when disabled
    assert (span(starts(redis_conn, "switch")) >= 2.5 - SLACK) is spread


def test_task_default_rate_limit_applies_to_tasks_without_their_own(celery_app, redis_conn):
    # Given a worker whose app limits every task to two a second unless it says otherwise
    celery_app.conf.task_default_rate_limit = "2/s"
    with start_worker(celery_app, concurrency=2, perform_ping_check=False, hostname="default@test"):
        # When four tasks without a limit of their own are sent
        results = [compat_tasks.unpaced.delay("default") for _ in range(4)]
        assert [result.get(timeout=TIMEOUT) for result in results] == [None] * 4
    # Then they start half a second apart
    assert span(starts(redis_conn, "default")) >= 1.5 - SLACK


def test_a_held_task_keeps_its_slot_when_it_comes_back(celery_app, worker_process, redis_conn):
    # Given a worker node, and three tasks limited to one every two seconds
    worker_process("-P", "solo", "-n", "sparse@test")
    results = [compat_tasks.sparse.delay("kept") for _ in range(3)]
    # When they have run (the last two held in RQ's scheduled registry until their slots)
    assert [result.get(timeout=TIMEOUT) for result in results] == [None] * 3
    # Then they started two and four seconds after the first: back from the registry, a held task
    # takes the slot it was given and is not charged again (that would make it six and eight)
    first, second, third = (moment for moment, _ in starts(redis_conn, "kept"))
    assert second - first >= 2.0 - SLACK
    assert 4.0 - SLACK <= third - first < 5.5


def test_a_held_task_survives_its_worker_killed(celery_app, worker_process, redis_conn):
    # Given a worker node holding two tasks limited to one every two seconds (back in RQ's scheduled registry)
    supervisor = worker_process("-P", "prefork", "-c", "1", "-n", "doomed@test")
    results = [compat_tasks.sparse.delay("sparse") for _ in range(3)]
    scheduled = ScheduledJobRegistry("celery", connection=redis_conn)
    wait_for(lambda: scheduled.count == 2 and starts(redis_conn, "sparse"), timeout=TIMEOUT)
    assert [result.state for result in results[1:]] == ["PENDING", "PENDING"]
    # When the whole worker is killed with -9 (its scheduler then stops by itself and frees its lock)
    work_process = children_of(supervisor.pid)[0]
    scheduler = children_of(work_process)
    for pid in (supervisor.pid, work_process):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: all(gone(pid) for pid in (supervisor.pid, work_process, *scheduler)), timeout=TIMEOUT)
    wait_for(lambda: redis_conn.get(RQScheduler.get_locking_key("celery")) is None, timeout=TIMEOUT)
    # and another worker node starts
    worker_process("-P", "prefork", "-c", "1", "-n", "heir@test")
    # Then the held tasks run there, when they come back from the registry: at their slots two
    # and four seconds after the first, give or take the registry's whole seconds (the new node,
    # whose rate is its own, does not know the slots the dead one gave them)
    assert [result.get(timeout=TIMEOUT) for result in results] == [None] * 3
    first, second, third = (moment for moment, _ in starts(redis_conn, "sparse"))
    assert (second - first, third - first) >= (1.0, 3.0)


def test_a_task_waiting_for_its_slot_in_a_killed_work_process_runs_later(celery_app, worker_process, redis_conn):
    # Given a work process waiting in its slot (under a second away) for the second of two tasks
    supervisor = worker_process("-P", "prefork", "-c", "1", "-n", "waiting@test")
    results = [compat_tasks.slow_paced.delay("waiting") for _ in range(2)]
    started_registry = StartedJobRegistry("celery", connection=redis_conn)
    wait_for(lambda: starts(redis_conn, "waiting") and results[1].id in started_registry.get_job_ids(),
             timeout=TIMEOUT, interval=0.01)
    # When that work process is killed with -9
    os.kill(children_of(supervisor.pid)[0], signal.SIGKILL)
    # Then the task goes back to its queue and runs in the work process started in its place
    assert [result.get(timeout=TIMEOUT) for result in results] == [None] * 2
    first, second = (moment for moment, _ in starts(redis_conn, "waiting"))
    assert second - first >= 1.0 - SLACK
