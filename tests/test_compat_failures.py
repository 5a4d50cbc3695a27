"""Failures: exceptions cross the wire as JSON, hooks and signals see them, RQ keeps them."""

from __future__ import annotations

import pytest
from rq.registry import FailedJobRegistry

from app.celery_compat import signals, states
from app.celery_compat.serialization import exception_from_wire, exception_to_wire
from tests import compat_tasks


def test_a_builtin_exception_is_failure_and_get_reraises_it(celery_app, burst_worker):
    result = compat_tasks.fail.delay("x")
    burst_worker()
    assert result.state == states.FAILURE
    assert isinstance(result.result, ValueError) and result.result.args == ("x",)
    assert result.traceback.startswith("Traceback (most recent call last)")
    assert result.traceback.rstrip().endswith("ValueError: x")
    for _ in range(2):  # it raises again on every call
        with pytest.raises(ValueError, match="x"):
            result.get(timeout=5)
    assert isinstance(result.get(propagate=False), ValueError)


def test_a_custom_exception_is_rebuilt_as_itself_with_its_arguments(celery_app, burst_worker):
    result = compat_tasks.decline.delay(402, "card expired")
    burst_worker()
    with pytest.raises(compat_tasks.PaymentDeclined) as raised:
        result.get(timeout=5)
    assert (raised.value.code, raised.value.reason) == (402, "card expired")


def test_an_exception_class_the_client_cannot_import_becomes_a_named_stand_in():
    wire = {"exc_type": "QuotaExceeded", "exc_message": ["over by 3"], "exc_module": "billing.errors"}
    exc = exception_from_wire(wire)
    assert (type(exc).__name__, type(exc).__module__, str(exc)) == ("QuotaExceeded", "billing.errors", "over by 3")
    assert isinstance(exc, Exception)
    assert exception_to_wire(exc) == wire


def test_a_failed_task_stays_in_rqs_failed_registry(celery_app, burst_worker):
    result = compat_tasks.fail.delay()
    burst_worker()
    assert result.id in FailedJobRegistry("celery", connection=celery_app.connection).get_job_ids()


def test_task_hooks_run_with_celerys_arguments(celery_app, burst_worker, redis_conn):
    ok, bad = compat_tasks.hooked_add.delay(1, 2), compat_tasks.hooked_fail.delay()
    burst_worker()
    assert redis_conn.lrange(f"record:hooks:{ok.id}", 0, -1) == [b"on_success 3 [1, 2]", b"after_return SUCCESS"]
    assert redis_conn.lrange(f"record:hooks:{bad.id}", 0, -1) == [
        b"on_failure RuntimeError('hooked') RuntimeError", b"after_return FAILURE"]


def test_signals_fire_around_each_task_with_celerys_arguments(celery_app, burst_worker):
    seen = []

    def prerun(sender, task_id, task, args, kwargs, **extra):
        seen.append(("prerun", sender.name, args))

    def postrun(sender, task_id, task, args, kwargs, retval, state, **extra):
        seen.append(("postrun", retval, state))

    def success(sender, result, **extra):
        seen.append(("success", result))

    def failure(sender, task_id, exception, args, kwargs, traceback, einfo, **extra):
        seen.append(("failure", repr(exception)))

    receivers = [(signals.task_prerun, prerun), (signals.task_postrun, postrun), (signals.task_success, success),
                 (signals.task_failure, failure)]
    for signal, receiver in receivers:
        signal.connect(receiver)
    try:
        compat_tasks.add.delay(1, 2)
        compat_tasks.fail.delay("s")
        burst_worker()
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver)
    assert seen == [
        ("prerun", "tests.compat_tasks.add", [1, 2]), ("success", 3), ("postrun", 3, "SUCCESS"),
        ("prerun", "tests.compat_tasks.fail", ["s"]), ("failure", "ValueError('s')"),
        ("postrun", seen[-1][1], "FAILURE"),
    ]
