"""Time limits: the soft limit is raised inside the task, the hard limit ends it."""

from __future__ import annotations

import time

import pytest

from app.celery_compat import states
from app.celery_compat.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from tests import compat_tasks


def test_a_task_can_catch_its_soft_limit_clean_up_and_succeed(celery_app, burst_worker):
    result = compat_tasks.soft_limited_cleanup.delay()
    started = time.monotonic()
    burst_worker()
    assert time.monotonic() - started < 4
    assert (result.state, result.get()) == (states.SUCCESS, "cleaned up")


def test_an_uncaught_soft_limit_is_a_failure(celery_app, burst_worker):
    result = compat_tasks.soft_limited.delay()
    burst_worker()
    with pytest.raises(SoftTimeLimitExceeded):
        result.get(timeout=5)


def test_the_hard_limit_fails_the_task_with_time_limit_exceeded(celery_app, burst_worker):
    result = compat_tasks.hard_limited.delay()
    started = time.monotonic()
    burst_worker()
    assert time.monotonic() - started < 4
    with pytest.raises(TimeLimitExceeded):
        result.get(timeout=5)


def test_apply_async_overrides_the_limits_per_call(celery_app, burst_worker):
    result = compat_tasks.sleep.apply_async((3,), soft_time_limit=0.3)
    burst_worker()
    assert isinstance(result.result, SoftTimeLimitExceeded)


def test_task_time_limit_in_the_config_applies_to_every_task(celery_app, burst_worker):
    celery_app.conf.task_time_limit = 0.3
    result = compat_tasks.sleep.delay(3)
    burst_worker()
    assert isinstance(result.result, TimeLimitExceeded)


def test_a_soft_limit_above_the_hard_limit_is_refused_when_sent_as_celery_does(celery_app, redis_conn):
    @celery_app.task(name="tests.test_compat_time_limits.inverted", soft_time_limit=10, time_limit=5)
    def inverted():
        return "never sent"

    with pytest.raises(ValueError, match="^soft_time_limit must be less than or equal to time_limit$"):
        inverted.apply_async()
    with pytest.raises(ValueError, match="soft_time_limit must be less than or equal to time_limit"):
        inverted.delay()
    assert redis_conn.llen("rq:queue:celery") == 0  # nothing was queued to end in SUCCESS


def test_equal_soft_and_hard_limits_are_accepted(celery_app, burst_worker):
    @celery_app.task(name="tests.test_compat_time_limits.equal", soft_time_limit=5, time_limit=5)
    def equal():
        return "ran"

    result = equal.delay()
    burst_worker()
    assert result.get(timeout=5) == "ran"
