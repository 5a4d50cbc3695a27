"""Following a task: its status in the JSON API, and the Server-Sent Events stream of its progress."""

from __future__ import annotations

import json

from rq.job import Job
from rq.serializers import JSONSerializer

from tests.conftest import wait_for


def read_events(response) -> list[tuple[str, dict]]:
    """Parse a text/event-stream body into ``(event, data)`` pairs, ignoring comments and retry lines."""
    events = []
    for block in response.get_data(as_text=True).split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith((":", "retry:"))]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_a_running_task_reports_progress_then_success_with_times_and_worker(client, project_worker):
    # Given a two-second task and a worker
    task_id = client.post("/api/tasks/long-running", json={"duration": 2}).json["id"]
    # When it runs, its status shows progress part of the way
    status = wait_for(lambda: (s := client.get(f"/api/tasks/{task_id}").json)["state"] == "PROGRESS" and s)
    assert 0 < status["progress"]["percent"] < 100 and status["progress"]["total"] == 4
    assert status["started_at"] is not None and status["worker"]
    # Then it ends with SUCCESS, full progress, its result and every timestamp
    status = wait_for(lambda: (s := client.get(f"/api/tasks/{task_id}").json)["state"] == "SUCCESS" and s)
    assert status["progress"] == {"current": 4, "total": 4, "percent": 100}
    assert status["result"]["message"] == "Worked for 2 s in 4 steps"
    assert status["error"] is None
    assert status["created_at"] <= status["started_at"] <= status["finished_at"]


def test_the_event_stream_sends_each_progress_step_and_ends_after_success(client, project_worker):
    # Given a two-second task
    task_id = client.post("/api/tasks/long-running", json={"duration": 2}).json["id"]
    # When a client follows its event stream to the end
    response = client.get(f"/api/tasks/{task_id}/events")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-store"
    events = read_events(response)
    # Then it saw the progress rise step by step, then SUCCESS, then the end of the stream
    percents = [data["progress"]["percent"] for name, data in events
                if name == "status" and data["state"] == "PROGRESS"]
    assert len(percents) >= 2 and percents == sorted(percents) and len(set(percents)) == len(percents)
    assert [name for name, _ in events[-2:]] == ["status", "end"]
    assert events[-2][1]["state"] == "SUCCESS" and events[-1][1] == {"state": "SUCCESS"}


def test_the_event_stream_of_a_finished_task_sends_its_status_and_ends_at_once(app, client):
    # Given a task that has already failed
    task_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    with app.app_context():
        app.extensions["celery"].backend.store_result(task_id, ValueError("disk full"), "FAILURE", "Traceback ...")
    # When its events are read
    events = read_events(client.get(f"/api/tasks/{task_id}/events"))
    # Then the stream holds the final status and the end, nothing else
    assert [name for name, _ in events] == ["status", "end"]
    assert events[0][1]["error"] == {"type": "ValueError", "message": "disk full", "traceback": "Traceback ..."}


def test_the_event_stream_of_an_unknown_task_is_a_404(client):
    response = client.get("/api/tasks/nobody/events")
    assert response.status_code == 404
    assert response.is_json


def test_the_status_names_the_worker_and_how_often_the_task_was_redelivered(app, client, redis_conn):
    # Given a task whose worker died once, so that it was delivered again (as app.celery_compat.recovery records it)
    task_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    job = Job.fetch(task_id, connection=redis_conn, serializer=JSONSerializer)
    job.meta["celery"]["redelivered"] = 1
    job.worker_name = "worker-7"
    job.save()
    # When its status is read, and its page shown
    status = client.get(f"/api/tasks/{task_id}").json
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    # Then both say which worker has it and that it was redelivered once
    assert (status["worker"], status["redelivered"]) == ("worker-7", 1)
    assert "worker-7" in page and "1 × (its worker died)" in page
