"""Nothing the dashboard reads from Redis is unpickled: a planted pickle never runs in the web process.

Whoever can write to Redis could otherwise run code in the web app by planting a job whose meta,
data or result is a pickle, and waiting for an operator to open the dashboard.
"""

from __future__ import annotations

import base64
import pickle
import time
import zlib
from pathlib import Path

import pytest
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from tests.support_dashboard import DEADLINE_MS

REGISTRIES = ("queued", "started", "finished", "failed")


class CreatesFile:
    """Unpickling this calls ``open(path, "w")``: the file's existence proves a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def planted(redis_conn, tmp_path):
    """A job in every registry of queue "default", whose meta, data and results are pickles; a worker busy with it."""
    evidence = tmp_path / "unpickled"
    trap = pickle.dumps(CreatesFile(evidence))
    job = Queue("default", connection=redis_conn, serializer=JSONSerializer).enqueue_call(
        "tests.compat_tasks.add", args=(1, 2), description="planted job")
    worker = Worker(["default"], connection=redis_conn, serializer=JSONSerializer)
    worker.register_birth()
    worker.set_state("busy")
    worker.prepare_execution(job)
    redis_conn.hset(job.key, mapping={"meta": trap, "data": zlib.compress(trap), "result": trap})
    redis_conn.xadd(f"rq:results:{job.id}", {"type": 1, "return_value": base64.b64encode(trap).decode()})
    for registry in ("started", "finished", "failed"):
        redis_conn.zadd(f"rq:{registry}:default", {job.id: time.time() + 3600})
    yield job.id, evidence
    worker.register_death()


def test_opening_every_dashboard_page_loads_no_pickle(live_server, page, planted):
    job_id, evidence = planted
    pages = [("/rq/", "tr[data-role=queue]"), ("/rq/0/view/workers", "tr[data-role=worker]"),
             (f"/rq/0/view/job/{job_id}", "#job-data p"),
             *((f"/rq/0/view/jobs/default/{registry}/8/asc/1", "tr[data-role=job]") for registry in REGISTRIES)]
    for path, filled in pages:
        # When an operator opens the page and its script fills it from the JSON endpoints
        page.goto(live_server.url + path)
        page.wait_for_selector(filled, timeout=DEADLINE_MS)
        page.wait_for_load_state("networkidle")
        # Then nothing was unpickled, and the page shows no error
        assert not evidence.exists(), path
        assert page.is_hidden("#rq-guard-alert"), page.text_content("#rq-guard-alert")
    # And what cannot be read as JSON is said so, not shown as bytes
    page.goto(live_server.url + f"/rq/0/view/job/{job_id}")
    page.wait_for_selector("#job-data p", timeout=DEADLINE_MS)
    assert "not JSON" in page.text_content("#job-data")


def test_every_dashboard_data_endpoint_answers_without_loading_a_pickle(live_server, page, planted):
    job_id, evidence = planted
    paths = ["/rq/0/data/queues.json", "/rq/0/data/workers.json", f"/rq/0/data/job/{job_id}.json",
             *(f"/rq/0/data/jobs/default/{registry}/8/asc/1.json" for registry in REGISTRIES)]
    for path in paths:
        response = page.request.get(live_server.url + path)
        assert (path, response.status) == (path, 200)
        assert not evidence.exists(), path


@pytest.mark.parametrize("action", ["/rq/job/{id}/requeue", "/rq/job/{id}/delete", "/rq/requeue/default",
                                    "/rq/queue/default/failed/empty", "/rq/queue/default/finished/empty",
                                    "/rq/queue/default/started/empty", "/rq/queue/default/queued/empty"])
def test_every_dashboard_action_on_a_planted_job_loads_no_pickle(live_server, page, planted, action):
    job_id, evidence = planted
    # Given the dashboard open in the browser (which holds the CSRF token the actions need)
    page.goto(live_server.url + "/rq/")
    token = page.get_attribute("meta[name=csrf-token]", "content")
    # When the action is posted as the dashboard's buttons post it
    response = page.request.post(live_server.url + action.format(id=job_id), headers={"X-CSRFToken": token})
    # Then it is carried out without unpickling anything
    assert response.status == 200, response.text()
    assert not evidence.exists()
