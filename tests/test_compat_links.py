"""Callbacks: link= fires on success with the result prepended, link_error= on failure."""

from __future__ import annotations

from tests import compat_tasks


def test_every_link_gets_the_result_prepended(celery_app, burst_worker, redis_conn):
    result = compat_tasks.add.apply_async((2, 3), link=[compat_tasks.remember.s("first"),
                                                         compat_tasks.remember.s("second")])
    burst_worker()
    assert result.get(timeout=5) == 5
    assert redis_conn.lrange("record:first", 0, -1) == [b"5"]
    assert redis_conn.lrange("record:second", 0, -1) == [b"5"]


def test_an_immutable_link_ignores_the_result(celery_app, burst_worker, redis_conn):
    compat_tasks.add.apply_async((2, 3), link=compat_tasks.remember.si("fixed", "immutable"))
    burst_worker()
    assert redis_conn.lrange("record:immutable", 0, -1) == [b"fixed"]


def test_links_do_not_fire_when_the_task_fails(celery_app, burst_worker, redis_conn):
    compat_tasks.fail.apply_async(link=compat_tasks.remember.s("never"))
    burst_worker()
    assert redis_conn.exists("record:never") == 0


def test_a_three_argument_errback_runs_in_the_worker_with_request_exc_and_traceback(
        celery_app, burst_worker, redis_conn):
    result = compat_tasks.fail.apply_async(("bad",), link_error=compat_tasks.on_error_inline.s(key="inline"))
    burst_worker()
    assert redis_conn.lrange("record:inline", 0, -1) == [
        f"{result.id} ValueError('bad') Traceback (most recent call last):".encode()]
    assert celery_app.queue("celery").count == 0  # nothing was queued for it


def test_a_one_argument_errback_is_queued_with_the_failed_tasks_id(celery_app, burst_worker, redis_conn):
    result = compat_tasks.fail.apply_async(link_error=compat_tasks.on_error_queued.s(key="queued"))
    burst_worker()
    assert redis_conn.lrange("record:queued", 0, -1) == [result.id.encode()]


def test_waiting_on_a_result_inside_a_task_is_refused(celery_app, burst_worker):
    result = compat_tasks.waits_on_another.delay()
    burst_worker()
    assert isinstance(result.result, RuntimeError)
    assert "Never call result.get() within a task" in str(result.result)
