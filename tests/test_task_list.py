"""The task list: every task sent, newest first, filterable, a page at a time either way, fast with 10,000 tasks."""

from __future__ import annotations

import time

import pytest

from app.celery_compat.app.base import index_task

LONG_RUNNING = "app.tasks.long_running.long_running"


def fill(app, conn, count: int, state_of=lambda i: "SUCCESS", start: float = 1_700_000_000.0,
         name=lambda i: LONG_RUNNING, queue=lambda i: "default") -> list[str]:
    """Index ``count`` sent tasks one second apart (task-0 oldest), with results in the states ``state_of(i)`` gives."""
    backend = app.extensions["celery"].backend
    pipe = conn.pipeline(transaction=False)
    ids = []
    for i in range(count):
        task_id = f"task-{i}"
        index_task(pipe, task_id, name(i), queue(i), f"duration={i + 1}", keep_seconds=10**9, max_tasks=10**6,
                   now=start + i)
        state = state_of(i)
        if state == "PROGRESS":
            backend.store_result(task_id, {"current": 1, "total": 4, "percent": 25}, state, pipeline=pipe)
        elif state != "PENDING":
            backend.store_result(task_id, {"steps": 2}, state, pipeline=pipe)
        ids.append(task_id)
    pipe.execute()
    return ids


def test_tasks_are_listed_newest_first_with_kind_state_and_progress(app, client, redis_conn):
    # Given three tasks submitted in turn: one done, one running, one waiting
    fill(app, redis_conn, 3, state_of=["SUCCESS", "PROGRESS", "PENDING"].__getitem__)
    # When the list is read
    response = client.get("/api/tasks")
    # Then the newest comes first, each with its state and progress
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    rows = response.json["tasks"]
    assert [(r["id"], r["kind"], r["state"], r["progress"]["percent"]) for r in rows] == [
        ("task-2", "long-running", "PENDING", 0),
        ("task-1", "long-running", "PROGRESS", 25),
        ("task-0", "long-running", "SUCCESS", 100),
    ]
    assert rows[0]["url"] == "/api/tasks/task-2" and response.json["next"] is None


def test_submitted_tasks_appear_in_the_list_at_once(client):
    first = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    second = client.post("/api/tasks/long-running", json={"duration": 2}).json["id"]
    assert [row["id"] for row in client.get("/api/tasks").json["tasks"]] == [second, first]


def test_pages_follow_each_other_through_the_cursor_without_gaps_or_repeats(app, client, redis_conn):
    # Given 25 tasks
    ids = fill(app, redis_conn, 25)
    # When the list is read ten at a time, following "next"
    seen, query, pages = [], "limit=10", 0
    while True:
        page = client.get(f"/api/tasks?{query}").json
        seen += [row["id"] for row in page["tasks"]]
        pages += 1
        if page["next"] is None:
            break
        query = f"limit=10&cursor={page['next']}"
    # Then every task came once, newest first, in three pages
    assert seen == ids[::-1] and pages == 3


def test_the_list_filters_by_state(app, client, redis_conn):
    # Given 30 tasks of which every third failed
    fill(app, redis_conn, 30, state_of=lambda i: "FAILURE" if i % 3 == 0 else "SUCCESS")
    # When only the failed ones are asked for, a page of four at a time
    page = client.get("/api/tasks?state=FAILURE&limit=4").json
    # Then four failed tasks come, newest first, and the next page goes on from there
    assert [row["id"] for row in page["tasks"]] == ["task-27", "task-24", "task-21", "task-18"]
    rest = client.get(f"/api/tasks?state=FAILURE&limit=100&cursor={page['next']}").json
    assert [row["id"] for row in rest["tasks"]] == ["task-15", "task-12", "task-9", "task-6", "task-3", "task-0"]
    assert rest["next"] is None


def test_the_list_and_its_page_stay_fast_with_ten_thousand_tasks(app, client, redis_conn):
    # Given 10,000 tasks, of which only the very oldest is still running
    fill(app, redis_conn, 10_000, state_of=lambda i: "PROGRESS" if i == 0 else "SUCCESS")
    # When the first page, a deep page and a rare state are read
    started = time.perf_counter()
    first = client.get("/api/tasks?limit=50").json
    deep = client.get(f"/api/tasks?limit=50&cursor={1_700_000_000.0 + 100}").json
    html = client.get("/tasks")
    first_pass = client.get("/api/tasks?state=PROGRESS").json
    elapsed = time.perf_counter() - started
    # Then each answers without reading everything, the rare state within a bounded scan plus one more page
    assert [row["id"] for row in first["tasks"]][:2] == ["task-9999", "task-9998"]
    assert deep["tasks"][0]["id"] == "task-99"
    assert html.status_code == 200 and "task-999" in html.get_data(as_text=True)
    assert first_pass["tasks"] == [] and first_pass["next"] is not None  # scanned 5,000; more to look at
    second_pass = client.get(f"/api/tasks?state=PROGRESS&cursor={first_pass['next']}").json
    assert [row["id"] for row in second_pass["tasks"]] == ["task-0"]
    assert elapsed < 5, f"four list requests over 10,000 tasks took {elapsed:.2f} s"


@pytest.mark.parametrize(
    ("query", "field"),
    [("state=LOST", "state"), ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"),
     ("state=failure", "state"), ("cursor=yesterday", "cursor"), ("cursor=nan", "cursor"), ("cursor=", "cursor")],
)
def test_invalid_list_parameters_are_a_422_naming_the_parameter(client, query, field):
    response = client.get(f"/api/tasks?{query}")
    assert response.status_code == 422 and field in response.json["errors"]


def test_the_list_page_shows_the_filter_the_rows_and_a_link_to_older_tasks(app, client, redis_conn):
    # Given 30 tasks
    fill(app, redis_conn, 30)
    # When the page is shown ten at a time
    page = client.get("/tasks?limit=10").get_data(as_text=True)
    # Then it has the state filter, ten linked rows with their age, and a link to older ones
    assert '<select name="state"' in page and page.count('href="/tasks/task-') == 10
    assert 'rel="next"' in page and " d</time>" in page
    # And an invalid filter is a 400 page, not an error
    assert client.get("/tasks?state=LOST").status_code == 400
