"""A sent task's result channel is subscribed at send time and released once its result is taken.

As Celery's Redis backend: ``delay()`` subscribes ``celery-task-meta-<id>`` on the process's one
pub/sub connection, so ``get()`` misses nothing and opens nothing; ``get()``, ``forget()`` or the
garbage collection of the ``AsyncResult`` release it.
"""

from __future__ import annotations

import gc

import pytest

from tests import compat_tasks


@pytest.fixture(autouse=True)
def fresh_consumer(celery_app):
    """Each test starts as a fresh process would: results an earlier test left alive (a cycle
    the garbage collector has not broken yet) would otherwise still hold their channels."""
    gc.collect()
    celery_app.backend.consumer.stop()


def meta_channels(redis_conn) -> set[str]:
    return {channel.decode() for channel in redis_conn.pubsub_channels("celery-task-meta-*")}


def test_a_sent_task_is_subscribed_until_get_returns_its_result(celery_app, burst_worker, redis_conn):
    result = compat_tasks.add.delay(1, 2)
    assert meta_channels(redis_conn) == {f"celery-task-meta-{result.id}"}
    burst_worker()
    assert result.get(timeout=10) == 3
    assert meta_channels(redis_conn) == set()


def test_forget_releases_the_subscription(celery_app, redis_conn):
    result = compat_tasks.add.delay(1, 2)
    result.forget()
    assert meta_channels(redis_conn) == set()


def test_a_collected_result_is_released_at_the_next_send(celery_app, redis_conn):
    first = compat_tasks.add.delay(1, 2)
    first_channel = f"celery-task-meta-{first.id}"
    del first
    gc.collect()
    second = compat_tasks.add.delay(3, 4)
    channels = meta_channels(redis_conn)
    assert first_channel not in channels
    assert channels == {f"celery-task-meta-{second.id}"}
    second.forget()


def test_a_task_sent_with_ignore_result_subscribes_nothing(celery_app, redis_conn):
    compat_tasks.add.apply_async((1, 2), ignore_result=True)
    assert meta_channels(redis_conn) == set()


def test_a_sender_that_never_waits_subscribes_nothing_and_get_still_returns_the_result(celery_app, burst_worker,
                                                                                       redis_conn):
    # Given a task sent by a sender that hands its id on (the web app): no subscription at send time
    result = compat_tasks.add.apply_async((1, 2), subscribe_result=False)
    assert meta_channels(redis_conn) == set()
    # When it runs, get() still returns its result (a read; it subscribes only to wait)
    burst_worker()
    assert result.get(timeout=10) == 3
    assert meta_channels(redis_conn) == set()


def test_a_callback_inside_a_subscribe_is_run_after_it_not_nested_in_it(celery_app, redis_conn):
    # Given a subscribe during which another result is released (a finalizer, a callback)
    consumer = celery_app.backend.result_consumer
    kept, released = compat_tasks.add.delay(1, 1), compat_tasks.add.delay(2, 2)
    connection, depths, inside = consumer._pubsub.connection, [], []
    real_send = connection.send_packed_command

    def send_packed_command(*args, **kwargs):  # every write: the SUBSCRIBE's, then the release's
        depths.append(len(inside))
        inside.append(True)
        try:
            answer = real_send(*args, **kwargs)
            consumer.cancel_for(released.id)
        finally:
            inside.pop()
        return answer

    connection.send_packed_command = send_packed_command
    try:
        third = compat_tasks.add.delay(3, 3)
    finally:
        del connection.send_packed_command
    # Then the release ran once the subscribe returned, and only the other two stay subscribed
    assert depths == [0, 0]
    assert consumer.subscribed_to == {consumer._get_key_for_task(kept.id), consumer._get_key_for_task(third.id)}
    kept.forget()
    third.forget()


def test_a_process_that_only_sends_keeps_its_subscriptions_right_past_a_drain(celery_app, redis_conn):
    # More sends than DRAIN_EVERY: the confirmations piled up on the connection are read meanwhile
    consumer = celery_app.backend.result_consumer
    results = [compat_tasks.add.delay(n, n) for n in range(70)]
    assert consumer.subscribed_to == {consumer._get_key_for_task(result.id) for result in results}
    assert len(meta_channels(redis_conn)) == 70
    for result in results:
        result.forget()
    assert meta_channels(redis_conn) == set()
