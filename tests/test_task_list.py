"""The task list: every task sent, newest first, filterable, a page at a time either way, fast with 10,000 tasks."""

from __future__ import annotations

import time

import pytest

from app.celery_compat.app.base import index_task
from tests.support_tasklist import LONG_RUNNING, fill


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
     ("state=failure", "state"), ("cursor=yesterday", "cursor"), ("cursor=nan", "cursor"), ("cursor=1_000", "cursor"),
     ("cursor=%201", "cursor"), ("cursor=" + "9" * 400, "cursor")],
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


# --- every producer ------------------------------------------------------------------------------

def listed(client, query: str = "") -> list[dict]:
    response = client.get(f"/api/tasks?{query}")
    assert response.status_code == 200, response.json
    return response.json["tasks"]


def test_a_celery_programs_tasks_are_listed_with_name_queue_arguments_worker_and_runtime(client, celery_app,
                                                                                          burst_worker):
    from tests import compat_tasks

    # Given a task sent by a Celery program (not the web app), which a worker ran
    result = compat_tasks.add.delay(2, 3)
    burst_worker()
    # Then the list shows it with what the program and the worker said
    [row] = listed(client)
    assert (row["id"], row["kind"], row["queue"], row["arguments"], row["state"]) == (
        result.id, "tests.compat_tasks.add", "celery", "2, 3", "SUCCESS")
    assert row["worker"] and row["retries"] == 0 and row["runtime"] >= 0
    assert row["started_at"] >= row["created_at"] and row["finished_at"].endswith("Z")


def test_canvas_children_and_delayed_tasks_are_listed(client, celery_app, burst_worker):
    from app.celery_compat import chain, group
    from tests import compat_tasks

    # Given a group of two, a chain of two (its second step is sent by the worker) and a countdown
    parts = group(compat_tasks.add.s(1, 1), compat_tasks.add.s(2, 2)).apply_async()
    chained = chain(compat_tasks.add.s(1, 2), compat_tasks.add.s(10)).apply_async()
    later = compat_tasks.add.apply_async((5, 5), countdown=60)
    burst_worker()
    # Then every one of them is in the list
    ids = {row["id"] for row in listed(client, "limit=100")}
    assert {child.id for child in parts.results} | {chained.parent.id, chained.id, later.id} <= ids


# --- filters and search --------------------------------------------------------------------------

def test_the_list_filters_by_name_and_by_queue_and_by_both(app, client, redis_conn):
    # Given 12 tasks: names alternate between two, queues cycle through three
    fill(app, redis_conn, 12, name=lambda i: ["proj.a", "proj.b"][i % 2], queue=lambda i: f"q{i % 3}")
    # Then each filter keeps only its tasks, newest first
    assert [r["id"] for r in listed(client, "name=proj.a")] == [f"task-{i}" for i in (10, 8, 6, 4, 2, 0)]
    assert [r["id"] for r in listed(client, "queue=q1")] == [f"task-{i}" for i in (10, 7, 4, 1)]
    assert [r["id"] for r in listed(client, "name=proj.b&queue=q0")] == ["task-9", "task-3"]
    assert listed(client, "name=proj.none") == []


def test_the_list_finds_tasks_by_argument_text_and_by_id(app, client, redis_conn):
    fill(app, redis_conn, 30)
    assert [r["id"] for r in listed(client, "q=DURATION=2")] == [f"task-{i}" for i in (28, 27, 26, 25, 24, 23, 22,
                                                                                         21, 20, 19, 1)]
    assert [r["id"] for r in listed(client, "id=task-7")] == ["task-7"]
    assert listed(client, "id=no-such-task") == []
    # The page's id search opens the task's page
    response = client.get("/tasks?id=task-7")
    assert response.status_code == 302 and response.headers["Location"] == "/tasks/task-7"


def test_a_state_filter_reads_no_document_of_a_task_whose_job_rules_it_out(client, celery_app, burst_worker,
                                                                             redis_conn):
    from tests import compat_tasks

    # Given 40 tasks that succeeded
    for i in range(40):
        compat_tasks.add.delay(i, i)
    burst_worker()
    def documents_read() -> int:
        stats = redis_conn.info("commandstats")  # commands a script runs are counted too
        return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("get", "mget"))

    before = documents_read()
    # When failed tasks are asked for
    page = client.get("/api/tasks?state=FAILURE").json
    # Then none is found, and no task's document was read to find that out
    assert page["tasks"] == [] and page["next"] is None
    assert documents_read() == before


# --- pages both ways -----------------------------------------------------------------------------

def test_newer_pages_lead_back_to_the_same_tasks(app, client, redis_conn):
    # Given 25 tasks, read ten at a time down to the last page
    fill(app, redis_conn, 25)
    first = client.get("/api/tasks?limit=10").json
    second = client.get(f"/api/tasks?limit=10&cursor={first['next']}").json
    third = client.get(f"/api/tasks?limit=10&cursor={second['next']}").json
    assert first["prev"] is None and third["next"] is None
    # When going back with "prev"
    back = client.get(f"/api/tasks?limit=10&after={third['prev']}").json
    back_again = client.get(f"/api/tasks?limit=10&after={back['prev']}").json
    # Then the same pages come back, newest first, and the newest page has nothing newer
    assert [r["id"] for r in back["tasks"]] == [r["id"] for r in second["tasks"]]
    assert [r["id"] for r in back_again["tasks"]] == [r["id"] for r in first["tasks"]]
    assert back_again["prev"] is None


def test_the_list_page_links_older_and_newer_pages_keeping_the_filters(app, client, redis_conn):
    fill(app, redis_conn, 30, name=lambda i: "proj.a")
    first = client.get("/tasks?limit=10&name=proj.a").get_data(as_text=True)
    assert 'rel="next"' in first and 'rel="prev"' not in first and "name=proj.a" in first
    older = client.get("/tasks?limit=10&name=proj.a&cursor=1700000019.0").get_data(as_text=True)
    assert 'rel="next"' in older and 'rel="prev"' in older and older.count('href="/tasks/task-') == 10


@pytest.mark.parametrize(("query", "field"), [("after=soon", "after"), ("name=" + "x" * 201, "name"),
                                                ("name=" + " " * 201, "name")])
def test_malformed_or_oversized_list_parameters_are_a_422(client, query, field):
    response = client.get(f"/api/tasks?{query}")
    assert response.status_code == 422 and field in response.json["errors"]


def test_with_both_cursors_the_older_page_wins_and_an_empty_cursor_means_none(app, client, redis_conn):
    # Given 30 tasks, and the cursor of the second page of ten
    fill(app, redis_conn, 30)
    first = client.get("/api/tasks?limit=10").json
    second = client.get(f"/api/tasks?limit=10&cursor={first['next']}").json
    # When both cursors come (the document cannot forbid the pair), or empty ones (as the page's form sends)
    both = client.get(f"/api/tasks?limit=10&cursor={first['next']}&after={second['next']}").json
    empty = client.get("/api/tasks?limit=10&cursor=&after=").json
    # Then `cursor` decides, and empty cursors read the newest page
    assert [row["id"] for row in both["tasks"]] == [row["id"] for row in second["tasks"]]
    assert [row["id"] for row in empty["tasks"]] == [row["id"] for row in first["tasks"]]


# --- bounded retention ---------------------------------------------------------------------------

def test_the_index_keeps_at_most_the_configured_number_of_tasks(client, celery_app):
    from tests import compat_tasks

    celery_app.conf.task_index_max_tasks = 3
    celery_app.conf.task_index_trim_every = 1
    ids = [compat_tasks.add.delay(i, i).id for i in range(5)]
    assert [r["id"] for r in listed(client)] == ids[:1:-1]
    assert [r["id"] for r in listed(client, "name=tests.compat_tasks.add")] == ids[:1:-1]


def test_an_index_trimmed_every_nth_send_overshoots_its_cap_by_less_than_n(
        client, celery_app, redis_conn):
    from app.celery_compat import keys
    from tests import compat_tasks

    # Given an index capped at 3 tasks that a sender trims on every 10th send
    celery_app.conf.task_index_max_tasks = 3
    celery_app.conf.task_index_trim_every = 10
    sizes = []
    for i in range(25):
        compat_tasks.add.delay(i, i)
        sizes.append(redis_conn.zcard(keys.TASKS))
    # Then it grows between trims, and each trim brings it back to the cap
    assert max(sizes) <= 3 + 10 - 1
    assert sizes.count(3) >= 2
    assert all(after in (before + 1, 3) for before, after in zip(sizes, sizes[1:], strict=False))


def test_the_index_forgets_tasks_older_than_the_configured_age(app, client, redis_conn):
    # Given a task sent two hours ago, kept for an hour
    fill(app, redis_conn, 1, start=time.time() - 7200)
    pipe = redis_conn.pipeline()
    # When another task is sent now
    index_task(pipe, "fresh", LONG_RUNNING, "default", "", keep_seconds=3600, max_tasks=100)
    pipe.execute()
    # Then only the fresh one is listed
    assert [r["id"] for r in listed(client)] == ["fresh"]
    assert [r["id"] for r in listed(client, f"name={LONG_RUNNING}")] == ["fresh"]


def test_progress_reported_as_current_and_total_only_reads_as_a_percentage(app, client, redis_conn):
    # Given a Celery program's task that reports {"current", "total"} without a percentage
    fill(app, redis_conn, 1, state_of=lambda i: "PENDING")
    app.extensions["celery"].backend.store_result("task-0", {"current": 3, "total": 12}, "PROGRESS")
    # Then the list shows how far it got
    assert listed(client)[0]["progress"] == {"current": 3, "total": 12, "percent": 25}


def test_a_task_taken_by_a_waiting_worker_starts_after_it_was_sent(client, celery_app, worker_process, redis_conn):
    from rq import Worker

    from tests import compat_tasks
    from tests.support import wait_for

    # Given a lean worker already waiting on an empty queue
    worker_process("-P", "solo")
    wait_for(lambda: [w.get_state() for w in Worker.all(connection=redis_conn)] == ["idle"])
    # When a task is sent and fails (its outcome saves the job's start time)
    result = compat_tasks.fail.delay("late")
    wait_for(lambda: listed(client)[0]["state"] == "FAILURE")
    # Then it started after it was sent, not when the worker began to wait
    [row] = listed(client)
    assert row["created_at"] <= row["started_at"] <= row["finished_at"], row
    assert row["id"] == result.id
