"""rq-dashboard mounted at /rq: it reads the project's JSON jobs, and is protected outside development."""

from __future__ import annotations

import base64

import pytest
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "test-secret",
    "DASHBOARD_USERNAME": "ops",
    "DASHBOARD_PASSWORD": "correct horse",
}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def production_client(make_app, redis_url, redis_conn):
    return make_app(redis_url, **PRODUCTION).test_client()


def test_the_dashboard_is_open_in_development(client):
    # Given the app in development mode
    # When the dashboard is opened without credentials
    response = client.get("/rq/")
    # Then it is shown, with its assets under the same prefix
    assert response.status_code == 200
    assert b"RQ-dashboard" in response.data
    assert b"/rq/static/" in response.data


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        (basic("ops", "wrong"), 401),
        (basic("intruder", "correct horse"), 401),
        (basic("", ""), 401),
        ({"Authorization": "Bearer correct horse"}, 401),
        (basic("ops", "correct horse"), 200),
    ],
)
def test_in_production_the_dashboard_needs_the_configured_credentials(production_client, headers, expected):
    response = production_client.get("/rq/", headers=headers)
    assert response.status_code == expected
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("path", ["/rq/0/data/queues.json", "/rq/static/css/main.css", "/rq/0/view/workers",
                                  "/rq/guard-static/rq-guard.js", "/rq/no-such-page"])
def test_in_production_every_dashboard_url_is_protected_not_only_the_index(production_client, path):
    assert production_client.get(path).status_code == 401


def test_in_production_the_rest_of_the_app_takes_the_same_credentials_and_healthz_none(production_client):
    # The pages have their own check (app/web/auth.py, issue 12), by default with the dashboard's login
    assert production_client.get("/", headers=basic("ops", "correct horse")).status_code == 200
    assert production_client.get("/healthz").status_code == 200


def test_the_dashboard_lists_a_queued_task_and_reads_it_back_as_json(client, redis_conn):
    # Given a task submitted through the API
    task_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    # When the dashboard's data endpoints are read
    queues = client.get("/rq/0/data/queues.json")
    job = client.get(f"/rq/0/data/job/{task_id}.json")
    # Then the queue counts it and the job decodes (it is JSON, not pickle)
    assert queues.status_code == 200
    assert {q["name"]: q["count"] for q in queues.json["queues"]}["default"] == 1
    assert job.status_code == 200
    assert job.json["id"] == task_id


def test_the_dashboard_reads_finished_json_jobs_and_their_results(client, redis_conn):
    # Given a task that a worker has run to the end
    task_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    queue = Queue("default", connection=redis_conn, serializer=JSONSerializer)
    SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer).work(burst=True, logging_level="WARNING")
    # When the dashboard lists finished jobs and opens this one
    listing = client.get("/rq/0/data/jobs/default/finished/8/asc/1.json")
    job = client.get(f"/rq/0/data/job/{task_id}.json")
    # Then both answer (rq-dashboard's pickle default would answer 500 here)
    assert listing.status_code == 200
    assert task_id in [j["id"] for j in listing.json["jobs"]]
    assert (job.status_code, job.json["status"]) == (200, "finished")


def test_the_workers_page_data_works_while_a_worker_is_busy_with_a_json_job(client, redis_conn):
    # Given a worker busy with one of the project's (JSON) jobs
    task_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    worker = Worker(["default"], connection=redis_conn, serializer=JSONSerializer)
    worker.register_birth()
    try:
        worker.set_state("busy")
        worker.prepare_execution(Job.fetch(task_id, connection=redis_conn, serializer=JSONSerializer))
        # When the dashboard's workers data is polled
        response = client.get("/rq/0/data/workers.json")
        # Then it lists the worker as busy (unpatched rq-dashboard unpickles the job and answers 500)
        assert response.status_code == 200
        assert [w["state"] for w in response.json["workers"]] == ["busy"]
    finally:
        worker.register_death()


def test_a_failed_json_task_is_requeued_from_the_dashboard_and_runs_again(client, celery_app, burst_worker,
                                                                          redis_conn):
    from app.celery_compat.result import AsyncResult
    from tests import compat_tasks

    # Given a task that failed
    redis_conn.set("flag:dash", 1)
    result = compat_tasks.fails_while_flagged.delay("dash")
    burst_worker()
    assert AsyncResult(result.id).state == "FAILURE"
    # When its cause is fixed and an operator requeues it from the dashboard
    redis_conn.delete("flag:dash")
    assert client.post(f"/rq/job/{result.id}/requeue").status_code == 200
    burst_worker()
    # Then it ran again and succeeded, under the same id
    assert AsyncResult(result.id).get(timeout=5) == "recovered"


def test_a_queued_json_task_is_deleted_from_the_dashboard_and_never_runs(client, celery_app, burst_worker,
                                                                         redis_conn):
    from tests import compat_tasks

    result = compat_tasks.ignored.apply_async(("dash-deleted",), ignore_result=False)
    assert client.post(f"/rq/job/{result.id}/delete").status_code == 200
    burst_worker()
    assert redis_conn.exists("record:dash-deleted") == 0


@pytest.mark.parametrize("path", ["/rq/0/view/job/no-such-job", "/rq/0/data/job/no-such-job.json"])
def test_a_job_that_is_gone_answers_404_not_500(client, path):
    assert client.get(path).status_code == 404


def test_requeueing_a_job_that_has_not_failed_answers_409(client, celery_app):
    from tests import compat_tasks

    queued = compat_tasks.echo.delay(1)
    assert client.post(f"/rq/job/{queued.id}/requeue").status_code == 409
