"""Fast unit tests of the adapter's Redis logic on fakeredis (no server, no worker process)."""

from __future__ import annotations

import fakeredis
import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from app.celery_compat import Celery, states
from app.celery_compat.result import AsyncResult


@pytest.fixture
def fake_app():
    app = Celery("fake", set_as_current=False)
    app._connection = fakeredis.FakeRedis()
    app._connection_url = app.broker_url

    @app.task(name="fake.double")
    def double(x):
        return 2 * x

    return app, double


def test_a_task_sent_on_fakeredis_runs_in_a_burst_worker(fake_app):
    app, double = fake_app
    result = double.delay(21)
    assert AsyncResult(result.id, app=app).state == states.PENDING
    SimpleWorker([app.queue("celery")], connection=app.connection, serializer=JSONSerializer).work(burst=True)
    assert AsyncResult(result.id, app=app).get(timeout=1) == 42


def test_custom_states_store_their_meta_as_the_info(fake_app):
    app, _ = fake_app
    app.backend.store_result("t1", {"current": 3, "total": 9}, "PROGRESS")
    result = AsyncResult("t1", app=app)
    assert (result.state, result.info, result.ready()) == ("PROGRESS", {"current": 3, "total": 9}, False)


def test_revoke_of_a_queued_task_takes_it_off_the_queue(fake_app):
    app, double = fake_app
    result = double.delay(1)
    result.revoke()
    assert app.queue("celery").count == 0
    assert AsyncResult(result.id, app=app).state == states.REVOKED


def test_a_ready_result_is_cached_and_not_read_again(fake_app):
    app, _ = fake_app
    app.backend.store_result("t2", 5, states.SUCCESS)
    result = AsyncResult("t2", app=app)
    assert result.get() == 5
    app.connection.delete("celery-task-meta-t2")
    assert (result.state, result.result) == (states.SUCCESS, 5)


def test_a_group_result_is_saved_and_restored_by_id(fake_app):
    from app.celery_compat.result import GroupResult

    app, _ = fake_app
    for task_id, value in (("a", 1), ("b", 2)):
        app.backend.store_result(task_id, value, states.SUCCESS)
    GroupResult("g1", [AsyncResult("a", app=app), AsyncResult("b", app=app)], app=app).save()
    restored = GroupResult.restore("g1", app=app)
    assert (restored.get(timeout=1), restored.completed_count(), restored.ready()) == ([1, 2], 2, True)
