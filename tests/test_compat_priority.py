"""Priorities as Celery's Redis transport has them: steps 0, 3, 6, 9, one list each, 0 the most urgent.

A task of priority n waits in the list of the highest step not above n (queue ``celery`` for step 0,
``celery:3``, ``celery:6``, ``celery:9`` for the others); workers pop priority-major across their
queues. Every path that puts a task back (a retry, a countdown) puts it back on its own list.
"""

from __future__ import annotations

import pytest
from rq.queue import Queue
from rq.registry import ScheduledJobRegistry

from app.celery_compat.app.amqp import Priorities
from tests import compat_tasks
from tests.support import wait_for

TIMEOUT = 20


def ran(redis_conn, key: str) -> list[str]:
    return [value.decode() for value in redis_conn.lrange(f"record:{key}", 0, -1)]


def waiting(redis_conn, list_name: str) -> int:
    return Queue(list_name, connection=redis_conn).count


def send(value: object, key: str, priority: int | None = None, queue: str | None = None) -> None:
    compat_tasks.remember.apply_async((value, key), priority=priority, queue=queue)


@pytest.mark.parametrize(("priority", "step"), [
    (None, 0), (0, 0), (1, 0), (2, 0), (3, 3), (5, 3), (6, 6), (8, 6), (9, 9),
    (12, 9),  # above 9: clamped to 9, as kombu does
    (-4, 0),  # below 0: clamped to 0
])
def test_a_priority_goes_to_the_highest_step_not_above_it(priority, step):
    assert Priorities().step(priority) == step


@pytest.mark.parametrize(("list_name", "queue"), [
    ("celery", "celery"), ("celery:3", "celery"), ("celery:9", "celery"), ("a:b:6", "a:b"),
    ("celery:4", "celery:4"),  # not a step: a queue of that name
    ("celery:0", "celery:0"),  # step 0 is the queue itself, never a suffix
])
def test_a_priority_list_belongs_to_its_queue(list_name, queue):
    assert Priorities().queue_of(list_name) == queue


def test_a_task_without_priority_is_one_push_to_the_queue_itself(celery_app, redis_conn):
    # Given no priority anywhere, When a task is sent
    send("plain", "order")
    # Then it waits in the queue's own list, and no priority list exists
    assert waiting(redis_conn, "celery") == 1
    assert not any(redis_conn.exists(f"rq:queue:celery:{step}") for step in (3, 6, 9))


@pytest.mark.parametrize("pool", ["prefork", "fork", "solo"])
def test_tasks_sent_while_no_worker_runs_are_run_in_priority_order(celery_app, worker_process, redis_conn, pool):
    # Given tasks of mixed priorities queued while no worker runs
    for value, priority in [("p9", 9), ("none", None), ("p5", 5), ("p0", 0), ("p3", 3), ("p7", 7), ("p1", 1)]:
        send(value, "order", priority)
    assert [waiting(redis_conn, name) for name in ("celery", "celery:3", "celery:6", "celery:9")] == [3, 2, 1, 1]
    # When a worker with one work process starts
    worker_process("-P", pool, "-c", "1")
    # Then step 0 runs first (in sending order), then step 3, 6 and 9
    wait_for(lambda: len(ran(redis_conn, "order")) == 7, timeout=TIMEOUT)
    assert ran(redis_conn, "order") == ["none", "p0", "p1", "p5", "p3", "p7", "p9"]


def test_a_worker_of_two_queues_pops_priority_major(celery_app, worker_process, redis_conn):
    # Given waiting tasks in queues "a" and "b"
    send("a9", "order", 9, "a")
    send("a0", "order", 0, "a")
    send("b3", "order", 3, "b")
    send("b0", "order", None, "b")
    # When a worker of both queues (a first) starts
    worker_process("-P", "solo", "-Q", "a,b")
    # Then both queues' step 0 run before any step 3, and step 3 before step 9
    wait_for(lambda: len(ran(redis_conn, "order")) == 4, timeout=TIMEOUT)
    assert ran(redis_conn, "order") == ["a0", "b0", "b3", "a9"]


def blocked_commands(redis_conn) -> list[str]:
    """The commands Redis's clients are blocked in now (CLIENT LIST's ``cmd`` of blocked clients)."""
    return [client["cmd"] for client in redis_conn.client_list() if "b" in client.get("flags", "")]


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_an_idle_worker_of_several_lists_never_pops_an_id_it_has_not_parked(celery_app, worker_process,
                                                                             redis_conn, pool):
    # Given an idle worker of two queues, each with its priority lists
    worker_process("-P", pool, "-c", "1", "-Q", "a,b")
    wait_for(lambda: "blmove" in blocked_commands(redis_conn), timeout=TIMEOUT,
             describe=lambda: str(blocked_commands(redis_conn)))
    # Then it waits with a blocking move into RQ's intermediate list, never a blocking pop (an id
    # popped by a process that dies before its claim would be in no list and no registry)
    for _ in range(20):
        assert "blpop" not in blocked_commands(redis_conn)
    # And a task sent to any other list still starts within a moment
    for value, priority, queue in [("b9", 9, "b"), ("a3", 3, "a"), ("b0", None, "b")]:
        send(value, value, priority, queue)
        wait_for(lambda value=value: ran(redis_conn, value) == [value], timeout=2)


def test_the_default_priority_and_the_tasks_own_apply_when_a_send_gives_none(celery_app, burst_worker, redis_conn):
    # Given task_default_priority 9, and a task whose own priority is 3
    celery_app.conf.task_default_priority = 9
    compat_tasks.remember.delay("default", "order")
    compat_tasks.remember_at_three.delay("own", "order")
    send("explicit", "order", 0)
    # Then each waits in its step's list
    assert [waiting(redis_conn, name) for name in ("celery", "celery:3", "celery:9")] == [1, 1, 1]
    # And a worker runs the send's own priority, then the task's, then the app's default
    burst_worker()
    assert ran(redis_conn, "order") == ["explicit", "own", "default"]


def test_broker_transport_options_set_the_steps_and_the_separator(celery_app, burst_worker, redis_conn):
    # Given ten steps and kombu's own separator
    celery_app.conf.broker_transport_options = {"priority_steps": list(range(10)), "sep": "\x06\x16"}
    celery_app._queues.clear()
    send("p2", "order", 2)
    send("p1", "order", 1)
    # Then priorities 1 and 2 wait apart, under the separator given
    assert waiting(redis_conn, "celery\x06\x161") == 1 and waiting(redis_conn, "celery\x06\x162") == 1
    # And a worker of the same app runs 1 first
    burst_worker()
    assert ran(redis_conn, "order") == ["p1", "p2"]


def test_a_retried_task_keeps_its_priority(celery_app, worker_process, redis_conn):
    # Given, queued while no worker runs: a priority-9 task that retries once at once,
    # another priority-9 task, and a priority-0 task
    compat_tasks.retry_once.apply_async(("retried", "order"), priority=9)
    send("other9", "order", 9)
    send("urgent", "order", 0)
    # When one worker runs them
    worker_process("-P", "prefork", "-c", "1")
    wait_for(lambda: len(ran(redis_conn, "order")) == 4, timeout=TIMEOUT)
    # Then the retry went back to the end of the step-9 list (behind other9), not to step 0,
    # and its request still says priority 9
    assert ran(redis_conn, "order") == ["urgent", "retried:0:9", "other9", "retried:1:9"]


def test_a_countdown_task_comes_back_to_its_priority_list(celery_app, worker_process, redis_conn):
    # Given a worker busy with a task that holds it
    worker_process("-P", "prefork", "-c", "1")
    compat_tasks.held.delay("release")
    wait_for(lambda: waiting(redis_conn, "celery") == 0, timeout=TIMEOUT)
    # When a priority-9 task with a countdown comes due while the worker is busy
    late = compat_tasks.remember.apply_async(("late", "order"), priority=9, countdown=1)
    # Then RQ's scheduler puts it back on the step-9 list
    wait_for(lambda: late.id in Queue("celery:9", connection=redis_conn).job_ids, timeout=TIMEOUT)
    # And an urgent task sent after it still runs before it
    send("urgent", "order", 0)
    redis_conn.rpush("record:release", "go")
    wait_for(lambda: len(ran(redis_conn, "order")) == 2, timeout=TIMEOUT)
    assert ran(redis_conn, "order") == ["urgent", "late"]


def test_purge_empties_every_priority_list(celery_app, redis_conn):
    # Given tasks waiting in three of the default queue's lists
    for priority in (None, 4, 9, 9):
        send(priority, "order", priority)
    assert [waiting(redis_conn, name) for name in ("celery", "celery:3", "celery:9")] == [1, 1, 2]
    # When the app purges
    # Then all four are counted and gone
    assert celery_app.control.purge() == 4
    assert [waiting(redis_conn, name) for name in ("celery", "celery:3", "celery:9")] == [0, 0, 0]


def test_revoking_a_waiting_prioritised_task_takes_it_off_its_list(celery_app, redis_conn):
    result = compat_tasks.remember.apply_async(("never", "order"), priority=6)
    assert waiting(redis_conn, "celery:6") == 1
    celery_app.control.revoke(result.id)
    assert waiting(redis_conn, "celery:6") == 0
    assert result.state == "REVOKED"


def test_a_worker_reports_its_queues_and_a_tasks_queue_without_the_priority_lists(celery_app, worker_process,
                                                                                  redis_conn):
    # Given a worker of "a" and "b"
    worker_process("-P", "solo", "-Q", "a,b", "-n", "prio@test")
    inspect = celery_app.control.inspect(timeout=5)
    # Then it consumes two queues, not eight lists
    assert [queue["name"] for queue in inspect.active_queues()["prio@test"]] == ["a", "b"]
    # And a prioritised task's request names its queue as its routing key
    answer = compat_tasks.whoami.apply_async(queue="b", priority=7).get(timeout=TIMEOUT)
    assert answer["queue"] == "b"
    # And a scheduled one is listed with its queue
    later = compat_tasks.remember.apply_async(("later", "order"), queue="a", priority=9, countdown=60)
    assert later.id in ScheduledJobRegistry("a:9", connection=redis_conn).get_job_ids()
    scheduled = inspect.scheduled()["prio@test"]
    assert [entry["request"]["delivery_info"]["routing_key"] for entry in scheduled] == ["a"]


def test_the_queue_length_in_metrics_and_healthz_counts_every_priority_list(client, celery_app, redis_conn):
    # Given four tasks waiting in three lists of queue "celery"
    for priority in (None, 3, 9, 9):
        send(priority, "order", priority)
    assert [waiting(redis_conn, name) for name in ("celery", "celery:3", "celery:9")] == [1, 1, 2]
    # Then /metrics reports one queue of four, and /healthz four waiting
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'jobs_queue_length{queue="celery"} 4.0' in metrics
    assert "celery:" not in metrics
    assert client.get("/healthz").json["queues"]["waiting"] == 4


def test_a_full_queue_counts_its_prioritised_tasks(make_app, redis_url, redis_conn):
    # Given a bound of 2 waiting tasks and two prioritised tasks waiting in "default"
    app = make_app(redis_url, MAX_QUEUED_TASKS=2)
    celery = app.extensions["celery"]
    for _ in range(2):
        celery.send_task("app.tasks.ping.ping", priority=9)
    assert waiting(redis_conn, "default:9") == 2
    # Then a new submit is refused
    response = app.test_client().post("/api/tasks/long-running", json={"duration": 1})
    assert response.status_code == 429
