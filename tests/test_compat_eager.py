"""Eager mode: apply() and task_always_eager run tasks here, as Celery's tests rely on."""

from __future__ import annotations

import pytest

from app.celery_compat import states
from app.celery_compat.result import AsyncResult, EagerResult
from tests import compat_tasks


def test_apply_runs_the_task_here_and_returns_an_eager_result(celery_app):
    result = compat_tasks.add.apply((2, 3))
    assert isinstance(result, EagerResult)
    assert (result.state, result.get(), result.successful()) == (states.SUCCESS, 5, True)
    assert celery_app.queue("celery").count == 0


def test_always_eager_makes_delay_run_inline_without_storing_the_result(celery_app):
    celery_app.conf.task_always_eager = True
    result = compat_tasks.add.delay(1, 2)
    assert isinstance(result, EagerResult) and result.get() == 3
    assert AsyncResult(result.id).state == states.PENDING


def test_an_eager_failure_is_kept_on_the_result_unless_eager_propagates(celery_app):
    celery_app.conf.task_always_eager = True
    result = compat_tasks.fail.delay("eager")
    assert result.state == states.FAILURE and isinstance(result.result, ValueError)
    with pytest.raises(ValueError, match="eager"):
        result.get()
    celery_app.conf.task_eager_propagates = True
    with pytest.raises(ValueError, match="eager"):
        compat_tasks.fail.delay("eager")


def test_eager_retries_run_again_at_once(celery_app, redis_conn):
    result = compat_tasks.succeed_on_third.apply()
    assert result.get() == "ok after 2 retries"


def test_eager_mode_still_checks_arguments(celery_app):
    celery_app.conf.task_always_eager = True
    with pytest.raises(TypeError):
        compat_tasks.add.delay(1)
