"""Retries: self.retry, max_retries, autoretry_for with backoff, and the RETRY state in between."""

from __future__ import annotations

import pytest

from app.celery_compat import keys, states
from app.celery_compat.app.trace import backoff_countdown
from app.celery_compat.exceptions import MaxRetriesExceededError
from app.celery_compat.result import AsyncResult
from tests import compat_tasks
from tests.support import wait_for


def attempts(redis_conn, key: str) -> list[int]:
    return [int(value) for value in redis_conn.lrange(f"record:{key}", 0, -1)]


def test_retries_run_again_with_the_same_id_until_max_retries_then_raise_the_exc(
        celery_app, burst_worker, redis_conn):
    # Given a task that always asks to be retried with an exception, max_retries=2
    result = compat_tasks.always_retry.delay()
    # When a worker runs it until it stops
    burst_worker()
    # Then it ran 1 + 2 times under one id, and failed with the original exception type
    assert attempts(redis_conn, f"always_retry:{result.id}") == [0, 1, 2]
    assert result.state == states.FAILURE
    with pytest.raises(compat_tasks.TransientError, match="attempt 2"):
        result.get(timeout=5)


def test_retry_without_exc_ends_in_max_retries_exceeded(celery_app, burst_worker):
    result = compat_tasks.always_retry.delay(with_exc=False)
    burst_worker()
    with pytest.raises(MaxRetriesExceededError):
        result.get(timeout=5)


def test_the_state_is_retry_with_the_exc_as_info_while_waiting_for_the_countdown(celery_app, worker_process):
    # Given a worker (with RQ's scheduler) and a task that succeeds on its third attempt, 1 s apart
    worker_process("-P", "solo")
    result = compat_tasks.succeed_on_third.delay()
    # Then between attempts a client sees RETRY with the exception passed to retry()
    wait_for(lambda: AsyncResult(result.id).state == states.RETRY, timeout=10)
    info = AsyncResult(result.id).info
    assert isinstance(info, compat_tasks.TransientError)
    assert str(info) == "not yet"
    # And the task finally succeeds, knowing how often it was retried
    assert result.get(timeout=20) == "ok after 2 retries"


def test_autoretry_for_retries_listed_exceptions_then_raises_the_original(celery_app, burst_worker, redis_conn):
    result = compat_tasks.autoretried.delay()
    burst_worker()
    assert attempts(redis_conn, f"auto:{result.id}") == [0, 1, 2]
    with pytest.raises(compat_tasks.TransientError, match="auto 2"):
        result.get(timeout=5)


def test_autoretry_for_lets_other_exceptions_fail_at_once(celery_app, burst_worker, redis_conn):
    result = compat_tasks.autoretried_other_error.delay()
    burst_worker()
    assert attempts(redis_conn, f"other:{result.id}") == [0]
    with pytest.raises(KeyError):
        result.get(timeout=5)


def test_a_retry_is_recorded_by_the_hooks(celery_app, burst_worker, redis_conn):
    result = compat_tasks.always_retry.delay()
    burst_worker()
    assert attempts(redis_conn, f"always_retry:{result.id}") == [0, 1, 2]


@pytest.mark.parametrize(
    ("factor", "retries", "maximum", "expected"),
    [(1, 0, 600, 1), (1, 3, 600, 8), (2, 4, 600, 32), (1, 12, 600, 600), (5, 2, 10, 10)],
)
def test_backoff_doubles_per_retry_up_to_the_maximum(factor, retries, maximum, expected):
    assert backoff_countdown(factor, retries, maximum, full_jitter=False) == expected
    assert 0 <= backoff_countdown(factor, retries, maximum, full_jitter=True) <= expected


def test_retry_called_directly_just_raises_the_exc(celery_app):
    with pytest.raises(compat_tasks.TransientError):
        compat_tasks.always_retry()


def test_a_retry_never_runs_before_its_countdown(celery_app, worker_process, redis_conn):
    # RQ's schedule keeps whole seconds, truncated: a retry due at 10.7 s was due at 10 s
    worker_process("-P", "solo")
    compat_tasks.retried_after_a_second.delay("retry-times")
    wait_for(lambda: redis_conn.llen("record:retry-times") == 4, timeout=30)
    starts = [float(value) for value in redis_conn.lrange("record:retry-times", 0, -1)]
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 1.0, gaps


@pytest.mark.parametrize(("route", "waits_in", "ran_with"), [
    ({"queue": "elsewhere"}, "elsewhere", ["elsewhere", None]),
    ({"priority": 9}, "celery:9", ["celery", 9]),
    ({"queue": "elsewhere", "priority": 3}, "elsewhere:3", ["elsewhere", 3]),
], ids=["queue", "priority", "both"])
def test_a_retry_given_a_queue_or_a_priority_waits_and_runs_there(celery_app, burst_worker, redis_conn, route,
                                                                    waits_in, ran_with):
    # Given a task that retries once with Celery's routing options (handed on to apply_async)
    result = compat_tasks.retried_elsewhere.delay(**route)
    # When its first run retries
    burst_worker()
    if "queue" in route:
        # Then the retry waits in the list those options name, not in the one it came from
        assert redis_conn.lrange(keys.queue(waits_in), 0, -1) == [result.id.encode()]
        assert redis_conn.llen(keys.queue("celery")) == 0
        burst_worker(route["queue"])
    # (a priority alone keeps the queue: the same worker pops its priority lists, and ran it)
    # And it ran from there, with that routing
    assert result.get(timeout=5) == ran_with
    assert redis_conn.hget(keys.job(result.id), "origin").decode() == waits_in
