"""Reading results: AsyncResult's state, value, waiting, forgetting, and JSON round trips."""

from __future__ import annotations

import builtins
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from app.celery_compat import states
from app.celery_compat.exceptions import EncodeError
from app.celery_compat.exceptions import TimeoutError as CeleryTimeoutError
from app.celery_compat.result import AsyncResult
from tests import compat_tasks


def test_an_unknown_id_is_pending_never_an_error(celery_app):
    result = AsyncResult("does-not-exist")
    assert (result.state, result.result, result.traceback, result.ready(), result.failed()) == (
        states.PENDING, None, None, False, False)
    assert str(result) == "does-not-exist"


def test_get_times_out_with_celerys_timeout_error_which_is_not_the_builtin(celery_app):
    with pytest.raises(CeleryTimeoutError, match="The operation timed out"):
        AsyncResult("never").get(timeout=0.2)
    assert not issubclass(CeleryTimeoutError, builtins.TimeoutError)


def test_a_successful_result_is_ready_with_its_value_and_date(celery_app, burst_worker):
    result = compat_tasks.add.delay(20, 22)
    burst_worker()
    fresh = AsyncResult(result.id)
    assert (fresh.state, fresh.result, fresh.info) == (states.SUCCESS, 42, 42)
    assert (fresh.ready(), fresh.successful(), fresh.failed()) == (True, True, False)
    assert isinstance(fresh.date_done, datetime)
    assert fresh.traceback is None


def test_get_waits_for_a_worker_in_another_process(celery_app, worker_process):
    worker_process("-P", "solo")
    assert compat_tasks.sleep.delay(0.3).get(timeout=15) == 0.3


def test_forget_makes_a_result_pending_again(celery_app, burst_worker):
    result = compat_tasks.add.delay(1, 1)
    burst_worker()
    result.forget()
    assert AsyncResult(result.id).state == states.PENDING


def test_results_expire_after_result_expires(celery_app, burst_worker):
    celery_app.conf.result_expires = 120
    result = compat_tasks.add.delay(1, 1)
    burst_worker()
    assert 0 < celery_app.connection.ttl(f"celery-task-meta-{result.id}") <= 120


@pytest.mark.parametrize(
    ("sent", "received"),
    [
        ((1, 2), [1, 2]),
        ({1: "a", "b": (2,)}, {"1": "a", "b": [2]}),
        (datetime(2026, 11, 24, 12, 30, tzinfo=timezone.utc), datetime(2026, 11, 24, 12, 30, tzinfo=timezone.utc)),
        (date(2026, 1, 2), date(2026, 1, 2)),
        (Decimal("10.25"), Decimal("10.25")),
        (uuid.UUID(int=7), uuid.UUID(int=7)),
        ("üñíçødé ✓", "üñíçødé ✓"),
        (None, None),
    ],
)
def test_values_cross_the_wire_as_celerys_json_serializer_carries_them(celery_app, burst_worker, sent, received):
    result = compat_tasks.echo.delay(sent)
    burst_worker()
    value = result.get(timeout=5)
    assert value == received
    assert type(value) is type(received)


def test_ignore_result_tasks_run_but_stay_pending(celery_app, burst_worker, redis_conn):
    result = compat_tasks.ignored.delay("ignored-ran")
    burst_worker()
    assert redis_conn.lrange("record:ignored-ran", 0, -1) == [b"ran"]
    assert result.state == states.PENDING


def test_a_result_json_cannot_carry_is_a_failure_with_encode_error(celery_app, burst_worker):
    result = compat_tasks.unserializable_result.delay()
    burst_worker()
    assert result.state == states.FAILURE
    with pytest.raises(EncodeError):
        result.get(timeout=5)
