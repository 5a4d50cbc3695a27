"""Registering tasks: class-based tasks run as in Celery; a task the worker cannot load fails loudly."""

from __future__ import annotations

from uuid import UUID

import pytest

from app.celery_compat import Task, states
from app.celery_compat.exceptions import NotRegistered
from tests import support_silent
from tests.support import wait_for


def test_register_task_with_a_class_registers_an_instance_named_after_the_class(celery_app):
    task = support_silent.multiply
    assert isinstance(task, support_silent.Multiply)
    assert task.name == "tests.support_silent.Multiply"
    assert celery_app.tasks[task.name] is task


def test_a_class_registered_with_register_task_runs_on_a_real_worker(celery_app, worker_process):
    worker_process("-P", "solo")
    assert support_silent.multiply.delay(6, 7).get(timeout=15) == 42


def test_an_instance_registered_with_register_task_keeps_its_own_state(celery_app, worker_process):
    worker_process("-P", "prefork", "-c", "1")
    assert support_silent.greet.delay("ann").get(timeout=15) == "hi ann"


def test_register_task_takes_celerys_autoretry_options(celery_app):
    class Flaky(Task):
        name = "tests.test_compat_registration.flaky"

        def run(self):
            return "ok"

    task = celery_app.register_task(Flaky, autoretry_for=(OSError,), retry_backoff=2)
    assert (task.autoretry_for, task.retry_backoff) == ((OSError,), 2)


def _task_in_a_module_the_worker_cannot_import(app):
    def job():
        return "never"

    # The module exists in the project but imports a package the worker does not have.
    job.__module__ = "tests.support_unimportable"
    return app.task(name="tests.support_unimportable.job")(job)


def test_a_task_whose_module_fails_to_import_is_failure_not_registered_and_logged(
        celery_app, worker_process, tmp_path):
    worker_process("-P", "solo")
    result = _task_in_a_module_the_worker_cannot_import(celery_app).delay()
    with pytest.raises(NotRegistered) as raised:
        result.get(timeout=15)
    assert result.state == states.FAILURE
    assert raised.value.args == ("tests.support_unimportable.job",)
    log = tmp_path / "worker-0.log"
    wait_for(lambda: "Received unregistered task of type 'tests.support_unimportable.job'." in log.read_text(),
             timeout=10)
    assert "No module named 'a_package_this_project_does_not_have'" in log.read_text()


def test_a_task_name_no_worker_knows_is_failure_not_registered(celery_app, worker_process, tmp_path):
    worker_process("-P", "solo")
    result = celery_app.send_task("nowhere.tasks.unknown", (1,))
    with pytest.raises(NotRegistered, match="nowhere.tasks.unknown"):
        result.get(timeout=15)
    log = tmp_path / "worker-0.log"
    wait_for(lambda: "Received unregistered task of type 'nowhere.tasks.unknown'." in log.read_text(), timeout=10)


def test_celery_uuid_makes_a_fresh_task_id_usable_with_apply_async(celery_app, burst_worker):
    from app.celery_compat import uuid

    task_id = uuid()
    assert task_id != uuid() and str(UUID(task_id)) == task_id
    result = support_silent.multiply.apply_async((2, 3), task_id=task_id)
    burst_worker()
    assert (result.id, result.get(timeout=5)) == (task_id, 6)


def test_an_error_in_the_tracing_itself_is_stored_as_failure_not_left_pending(
        celery_app, burst_worker, monkeypatch, caplog):
    # What a class registered the old way used to meet inside RQ: the request stack was not there.
    def broken(self, *args, **kwargs):
        raise AttributeError("'Multiply' object has no attribute '_requests'")

    monkeypatch.setattr(support_silent.Multiply, "push_request", broken)
    result = support_silent.multiply.delay(1, 2)
    burst_worker()
    assert result.state == states.FAILURE
    with pytest.raises(AttributeError, match="_requests"):
        result.get(timeout=5)
    assert f"Task tests.support_silent.Multiply[{result.id}] INTERNAL ERROR" in caplog.text


def test_an_error_in_before_start_is_the_tasks_failure_as_in_celery(celery_app, burst_worker):
    result = support_silent.refuses_to_start.delay()
    burst_worker()
    with pytest.raises(RuntimeError, match="not today"):
        result.get(timeout=5)
