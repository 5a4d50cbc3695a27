"""The read API pages use: a task's document, its RQ-side facts, a subscription to its updates."""

from __future__ import annotations

from app.celery_compat import view
from tests import compat_tasks


def test_an_unknown_task_has_no_document_and_no_job(celery_app, redis_conn):
    assert view.task_document(celery_app, "nobody") is None
    assert view.job_facts(celery_app, "nobody") is None


def test_a_queued_task_has_job_facts_but_no_document_yet(celery_app, redis_conn):
    result = compat_tasks.add.delay(2, 3)
    facts = view.job_facts(celery_app, result.id)
    assert (facts.name, facts.args, facts.kwargs, facts.status) == ("tests.compat_tasks.add", [2, 3], {}, "queued")
    assert facts.created_at is not None and facts.started_at is None and facts.redelivered == 0
    assert view.task_document(celery_app, result.id) is None


def test_a_finished_task_has_its_document_and_the_worker_that_ran_it(celery_app, redis_conn, burst_worker):
    result = compat_tasks.add.delay(2, 3)
    burst_worker()
    assert view.task_document(celery_app, result.id)["status"] == "SUCCESS"
    facts = view.job_facts(celery_app, result.id)
    assert facts.status == "finished" and facts.worker and facts.ended_at is not None
    assert [doc["status"] for doc in view.task_documents(celery_app, [result.id, "nobody"])] == ["SUCCESS", "PENDING"]


def test_a_subscription_yields_each_document_a_worker_publishes(celery_app, redis_conn, burst_worker):
    result = compat_tasks.add.delay(4, 5)
    with view.subscribe(celery_app, result.id) as updates:
        burst_worker()  # publishes while we are subscribed; the messages wait on the connection
        document = updates.next(timeout=10)
    assert document["status"] == "SUCCESS" and document["result"] == 9
    with view.subscribe(celery_app, "quiet") as updates:
        assert updates.next(timeout=0.2) is None


def test_a_published_progress_document_updates_a_status_without_reading_redis_again(celery_app, redis_conn):
    from app.web.status import with_document

    before = {"id": "t", "state": "STARTED", "progress": {"current": 0, "total": None, "percent": 0},
              "result": None, "error": None, "finished_at": None, "worker": "w1"}
    progress = {"status": "PROGRESS", "result": {"current": 2, "total": 4, "percent": 50}, "traceback": None,
                "date_done": None, "task_id": "t"}
    after = with_document(before, progress)
    assert after["state"] == "PROGRESS" and after["progress"]["percent"] == 50 and after["worker"] == "w1"
    failed = {"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["boom"],
              "exc_module": "builtins"}, "traceback": "Traceback...", "date_done": "2026-12-01T10:00:00+00:00",
              "task_id": "t"}
    after = with_document(before, failed)
    assert after["error"] == {"type": "ValueError", "message": "boom", "traceback": "Traceback..."}
    assert after["finished_at"] == "2026-12-01T10:00:00.000Z" and after["progress"] is None
