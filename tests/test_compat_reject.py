"""Reject: a task that hands its message back ends in a stored state, never PENDING for ever."""

from __future__ import annotations

import logging
import time

import pytest

from app.celery_compat import signals, states
from app.celery_compat.exceptions import Reject
from tests import support_silent
from tests.support import wait_for


def test_reject_without_requeue_stores_failure_with_the_reject_as_celery_5_7_does(celery_app, worker_process):
    worker_process("-P", "solo")
    result = support_silent.reject_for_good.delay("bad input")
    with pytest.raises(Reject) as raised:
        result.get(timeout=15)
    assert raised.value.reason == "bad input" and raised.value.requeue is False
    assert result.state == states.FAILURE


def test_reject_without_requeue_is_failure_under_the_prefork_pool_too(celery_app, worker_process):
    worker_process("-P", "prefork", "-c", "1")
    result = support_silent.reject_for_good.delay("prefork")
    with pytest.raises(Reject):
        result.get(timeout=15)


def test_reject_without_requeue_fires_task_failure_but_not_on_failure_hooks(celery_app, burst_worker):
    seen = []

    def failure(sender, task_id, exception, **extra):
        seen.append((task_id, repr(exception)))

    signals.task_failure.connect(failure)
    try:
        result = support_silent.reject_for_good.delay("signalled")
        burst_worker()
    finally:
        signals.task_failure.disconnect(failure)
    assert seen == [(result.id, "reject requeue=False: signalled")]
    assert result.state == states.FAILURE


def test_reject_with_requeue_runs_the_task_again_until_it_accepts(celery_app, worker_process, redis_conn):
    worker_process("-P", "solo")
    key = f"requeue:{time.monotonic_ns()}"
    result = support_silent.reject_until.delay(key, 2)
    # Three runs; a requeue is no retry (request.retries stays 0) but the message says it was redelivered.
    assert result.get(timeout=20) == [3, 0]
    assert redis_conn.lrange(f"record:{key}", 0, -1) == [b"False", b"True", b"True"]


def test_reject_with_requeue_under_rqs_forking_worker_runs_the_task_again(celery_app, worker_process):
    worker_process("-P", "fork")
    key = f"requeue-fork:{time.monotonic_ns()}"
    assert support_silent.reject_until.delay(key, 1).get(timeout=20) == [2, 0]


def test_a_task_that_always_requeues_is_run_again_with_growing_pauses_not_in_a_tight_loop(
        celery_app, worker_process):
    worker_process("-P", "solo")
    key = f"always:{time.monotonic_ns()}"
    result = support_silent.always_requeue.delay(key)
    wait_for(lambda: support_silent.runs(key) >= 2, timeout=15)
    time.sleep(4)
    # At once, then after 1 s, 2 s, 4 s ...: a handful of runs, not thousands.
    assert 2 <= support_silent.runs(key) <= 6
    assert result.state == states.PENDING  # still queued, as on Celery: it is neither done nor failed


def test_reject_in_apply_is_an_eager_result_in_state_rejected_holding_the_reject(celery_app):
    result = support_silent.reject_for_good.apply(("eager",))
    assert (result.state, repr(result.result)) == (states.REJECTED, "reject requeue=False: eager")


def test_the_worker_logs_a_reject_as_celery_does(celery_app, worker_process, tmp_path):
    worker_process("-P", "solo")
    result = support_silent.reject_for_good.delay("logged")
    with pytest.raises(Reject):
        result.get(timeout=15)
    line = f"Task tests.support_silent.reject_for_good[{result.id}] reject requeue=False: logged"
    wait_for(lambda: line in (tmp_path / "worker-0.log").read_text(), timeout=10)


def test_a_reject_is_logged_at_warning_with_its_traceback(celery_app, burst_worker, caplog):
    result = support_silent.reject_for_good.delay("warned")
    with caplog.at_level(logging.WARNING, logger="app.celery_compat.worker"):
        burst_worker()
    [record] = [r for r in caplog.records if result.id in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info[0] is Reject
