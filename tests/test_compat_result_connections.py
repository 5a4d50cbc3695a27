"""Waiting for results costs no new connection per call, survives Redis restarts, and reads in bulk.

The client half of issue 19: ``AsyncResult.get()`` reads a finished task with one GET and waits
for an unfinished one on a single pub/sub connection kept per backend and process (as Celery's
``ResultConsumer``). Results are published here by a second client, as a worker would, so that
the only connections counted are the waiting client's.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid

import pytest
import redis

from app.celery_compat import Celery
from app.celery_compat.exceptions import TimeoutError as TaskTimeoutError
from app.celery_compat.result import AsyncResult, GroupResult
from app.celery_compat.states import SUCCESS


def connections_received(conn: redis.Redis) -> int:
    return int(conn.info("stats")["total_connections_received"])


def command_calls(conn: redis.Redis) -> int:
    stats = conn.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_client|list"))


def new_id() -> str:
    return uuid.uuid4().hex


def publish_later(app: Celery, publisher: redis.Redis, task_ids: list[str], delay: float = 0.05) -> threading.Thread:
    """Store (and publish) each task's result after ``delay``, one by one, from another client."""

    def run() -> None:
        for task_id in task_ids:
            time.sleep(delay)
            app.backend.store_result(task_id, f"done {task_id}", SUCCESS, connection=publisher)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def compat_app(redis_url: str, redis_conn: redis.Redis) -> Celery:
    return Celery("connections", broker=redis_url)


def test_many_gets_on_finished_and_unfinished_tasks_open_at_most_one_connection(compat_app, redis_conn):
    publisher = redis.Redis.from_url(compat_app.conf.broker_url)
    publisher.ping()
    compat_app.connection.ping()  # the client's command connection exists before counting
    finished = [new_id() for _ in range(20)]
    for task_id in finished:
        compat_app.backend.store_result(task_id, f"done {task_id}", SUCCESS, connection=publisher)
    unfinished = [new_id() for _ in range(20)]
    before = connections_received(redis_conn)

    assert [AsyncResult(t, app=compat_app).get(timeout=5) for t in finished] == [f"done {t}" for t in finished]
    thread = publish_later(compat_app, publisher, unfinished)
    assert [AsyncResult(t, app=compat_app).get(timeout=5) for t in unfinished] == [f"done {t}" for t in unfinished]
    thread.join()

    # redis_conn's own INFO calls reuse its connection; the one new connection is the pub/sub one.
    assert connections_received(redis_conn) - before <= 1


def test_a_get_on_a_task_that_never_finishes_times_out_on_time_and_leaves_the_connection_usable(compat_app, redis_conn):
    publisher = redis.Redis.from_url(compat_app.conf.broker_url)
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError):
        AsyncResult(new_id(), app=compat_app).get(timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.0

    before = connections_received(redis_conn)
    later = new_id()
    publish_later(compat_app, publisher, [later])
    assert AsyncResult(later, app=compat_app).get(timeout=5) == f"done {later}"
    assert connections_received(redis_conn) - before <= 1  # the publisher's; the waiter's was kept


def test_get_works_after_a_redis_restart_also_while_waiting(own_redis_server):
    app = Celery("restart", broker=own_redis_server.url)
    first = new_id()
    publish_later(app, own_redis_server.client(), [first])
    assert AsyncResult(first, app=app).get(timeout=5) == f"done {first}"  # the pub/sub connection is up

    own_redis_server.stop()
    own_redis_server.start()
    second = new_id()
    publish_later(app, own_redis_server.client(), [second])
    assert AsyncResult(second, app=app).get(timeout=10) == f"done {second}"

    third = new_id()
    outcome: list[object] = []
    waiter = threading.Thread(target=lambda: outcome.append(AsyncResult(third, app=app).get(timeout=20)))
    waiter.start()
    time.sleep(0.3)  # the waiter is subscribed and blocked on the socket
    own_redis_server.stop()
    time.sleep(0.3)
    own_redis_server.start()
    app.backend.store_result(third, f"done {third}", SUCCESS, connection=own_redis_server.client())
    waiter.join(timeout=20)
    assert outcome == [f"done {third}"]


def _get_in_child(url: str, task_id: str, queue: multiprocessing.Queue) -> None:
    app = _FORK_APP[0]
    assert app.conf.broker_url == url
    queue.put(AsyncResult(task_id, app=app).get(timeout=10))


_FORK_APP: list[Celery] = []


def test_a_forked_child_waits_on_its_own_connection_not_its_parents(compat_app, redis_conn):
    publisher = redis.Redis.from_url(compat_app.conf.broker_url)
    warm = new_id()
    publish_later(compat_app, publisher, [warm])
    assert AsyncResult(warm, app=compat_app).get(timeout=5) == f"done {warm}"  # parent's pub/sub exists
    _FORK_APP[:] = [compat_app]
    child_task, parent_task = new_id(), new_id()
    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(
        target=_get_in_child, args=(compat_app.conf.broker_url, child_task, queue))
    child.start()
    publish_later(compat_app, publisher, [child_task, parent_task], delay=0.3)
    # Both wait at once, each on its own socket: a shared one would mix or lose their messages.
    assert AsyncResult(parent_task, app=compat_app).get(timeout=10) == f"done {parent_task}"
    assert queue.get(timeout=10) == f"done {child_task}"
    child.join(timeout=10)
    assert child.exitcode == 0


def test_threads_waiting_at_once_each_get_their_own_result(compat_app):
    publisher = redis.Redis.from_url(compat_app.conf.broker_url)
    task_ids = [new_id() for _ in range(8)]
    outcomes: dict[str, object] = {}

    def wait(task_id: str) -> None:
        outcomes[task_id] = AsyncResult(task_id, app=compat_app).get(timeout=10)

    threads = [threading.Thread(target=wait, args=(t,)) for t in task_ids]
    for thread in threads:
        thread.start()
    publish_later(compat_app, publisher, list(reversed(task_ids)), delay=0.02)
    for thread in threads:
        thread.join(timeout=15)
    assert outcomes == {t: f"done {t}" for t in task_ids}


def test_group_result_get_on_200_finished_results_reads_them_in_a_handful_of_commands(compat_app, redis_conn):
    publisher = redis.Redis.from_url(compat_app.conf.broker_url)
    task_ids = [new_id() for _ in range(200)]
    for task_id in task_ids:
        compat_app.backend.store_result(task_id, task_id, SUCCESS, connection=publisher)
    group = GroupResult(new_id(), [AsyncResult(t, app=compat_app) for t in task_ids], app=compat_app)
    redis_conn.config_resetstat()

    assert group.get(timeout=5) == task_ids

    assert command_calls(redis_conn) <= 5  # one MGET (and the stats calls of this test)
    assert redis_conn.info("commandstats")["cmdstat_mget"]["calls"] == 1


def test_group_join_reads_the_ready_ones_at_once_and_waits_only_for_the_rest(compat_app, redis_conn):
    publisher = redis.Redis.from_url(compat_app.conf.broker_url)
    ready = [new_id() for _ in range(195)]
    for task_id in ready:
        compat_app.backend.store_result(task_id, f"done {task_id}", SUCCESS, connection=publisher)
    running = [new_id() for _ in range(5)]
    group = GroupResult(new_id(), [AsyncResult(t, app=compat_app) for t in ready + running], app=compat_app)
    redis_conn.config_resetstat()
    publish_later(compat_app, publisher, running)

    assert group.join(timeout=10) == [f"done {t}" for t in ready + running]

    stats = redis_conn.info("commandstats")
    assert stats["cmdstat_mget"]["calls"] == 1
    assert stats.get("cmdstat_get", {"calls": 0})["calls"] <= 2 * len(running) + 10  # not one per result


def test_two_threads_waiting_on_the_same_task_both_get_it_without_waiting_for_a_recheck(compat_app):
    publisher = redis.Redis.from_url(compat_app.conf.broker_url)
    task_id = new_id()
    outcomes: list[object] = []
    threads = [threading.Thread(target=lambda: outcomes.append(AsyncResult(task_id, app=compat_app).get(timeout=5)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # both subscribed
    started = time.monotonic()
    compat_app.backend.store_result(task_id, "shared", SUCCESS, connection=publisher)
    for thread in threads:
        thread.join(timeout=5)
    assert outcomes == ["shared", "shared"]
    assert time.monotonic() - started < 0.9  # by the published message, not the 1 s re-read
