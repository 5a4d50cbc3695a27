"""Calling tasks: delay, apply_async options, send_task, direct calls, naming and argument checks."""

from __future__ import annotations

import pytest
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from app.celery_compat import Celery, states
from app.celery_compat.exceptions import EncodeError
from app.celery_compat.result import AsyncResult
from tests import compat_tasks
from tests.support import wait_for


def test_delay_returns_a_pending_result_at_once_and_a_worker_runs_it(celery_app, burst_worker):
    # Given a task sent with delay
    result = compat_tasks.add.delay(2, 3)
    # Then the caller holds its id before any worker ran it
    assert isinstance(result, AsyncResult)
    assert result.state == states.PENDING
    assert celery_app.queue("celery").job_ids == [result.id]
    # When a worker drains the queue
    burst_worker()
    # Then the result is there
    assert (result.get(timeout=5), result.state) == (5, states.SUCCESS)


def test_apply_async_takes_args_kwargs_task_id_and_queue(celery_app, burst_worker):
    result = compat_tasks.add.apply_async((1,), {"y": 41}, task_id="my-own-id", queue="math")
    assert result.id == "my-own-id"
    assert celery_app.queue("math").job_ids == ["my-own-id"]
    burst_worker("math")
    assert result.get(timeout=5) == 42


def test_task_routes_send_a_task_to_its_queue(celery_app, burst_worker):
    celery_app.conf.task_routes = {"tests.compat_tasks.echo": {"queue": "echoes"}, "tests.*": {"queue": "rest"}}
    echo, add = compat_tasks.echo.delay("hi"), compat_tasks.add.delay(1, 1)
    assert celery_app.queue("echoes").job_ids == [echo.id]
    assert celery_app.queue("rest").job_ids == [add.id]


def test_the_request_tells_the_task_its_id_queue_and_arguments(celery_app, burst_worker):
    result = compat_tasks.whoami.apply_async(queue="celery")
    burst_worker()
    assert result.get(timeout=5) == {"id": result.id, "retries": 0, "queue": "celery", "called_directly": False,
                                     "args": []}


def test_calling_a_task_directly_runs_it_here(celery_app):
    assert compat_tasks.add(2, 2) == 4
    assert compat_tasks.whoami()["called_directly"] is True
    assert celery_app.queue("celery").count == 0


def test_send_task_sends_by_name_without_the_function(celery_app, burst_worker):
    result = celery_app.send_task("custom.named")
    burst_worker()
    assert result.get(timeout=5) == "named"


def test_send_task_of_an_unknown_name_fails_with_not_registered(celery_app, burst_worker):
    result = celery_app.send_task("no.such.task", args=[1])
    burst_worker()
    assert result.state == states.FAILURE
    assert type(result.result).__name__ == "NotRegistered"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, 2, 3), {}), ((1,), {"z": 2}), ((), {"x": 1, "y": 2, "q": 3})],
)
def test_arguments_that_do_not_fit_raise_type_error_on_the_client(celery_app, args, kwargs):
    with pytest.raises(TypeError):
        compat_tasks.add.delay(*args, **kwargs)
    assert celery_app.queue("celery").count == 0


@pytest.mark.parametrize("value", [{1, 2}, object(), b"\xff" and frozenset()])
def test_arguments_json_cannot_carry_are_refused_before_anything_is_queued(celery_app, value):
    with pytest.raises(EncodeError):
        compat_tasks.echo.delay(value)
    assert celery_app.queue("celery").count == 0


def test_countdown_keeps_the_task_pending_in_rq_scheduler_until_due(celery_app, burst_worker):
    result = compat_tasks.add.apply_async((1, 2), countdown=1)
    assert result.state == states.PENDING
    assert result.id in ScheduledJobRegistry("celery", connection=celery_app.connection).get_job_ids()
    assert celery_app.queue("celery").count == 0

    def ran() -> bool:
        burst_worker(with_scheduler=True)
        return result.ready()

    wait_for(ran, timeout=10, interval=0.3)
    assert result.get() == 3


def test_a_job_carries_the_task_name_and_json_arguments(celery_app):
    result = compat_tasks.add.delay(2, 3)
    job = Job.fetch(result.id, connection=celery_app.connection, serializer=JSONSerializer)
    assert job.func_name == "app.celery_compat.execution.execute_task"
    assert job.args == ["tests.compat_tasks.add", [2, 3], {}]
    assert job.description == "tests.compat_tasks.add(2, 3)"


def test_task_names_are_module_and_function_unless_named():
    app = Celery("proj", set_as_current=False)

    def in_main():
        pass

    in_main.__module__ = "__main__"
    assert app.task(in_main).name == "proj.in_main"
    assert compat_tasks.add.name == "tests.compat_tasks.add"
    assert compat_tasks.named.name == "custom.named"
