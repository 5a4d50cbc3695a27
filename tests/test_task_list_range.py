"""The task list's time range: tasks sent from `since` (inclusive) to `until` (exclusive), with every filter.

The range bounds what the cursors page through (Older and Newer stop at its edges) and what a
filtered scan examines, so a page costs no more with a range than without one.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest

from app.celery_compat import view
from app.web import history
from app.web.history import Query
from tests.support_axe import axe_violations
from tests.support_dashboard import DEADLINE_MS
from tests.support_tasklist import fill

START = 1_700_000_000.0  # task-i is sent at START + i
KOLKATA = timezone(timedelta(hours=5, minutes=30))


def ids(page: history.Page) -> list[str]:
    return [found.sent.id for found in page.found]


def local(seconds: float, zone: timezone = KOLKATA) -> str:
    """A send time as a datetime-local input holds it, in ``zone``."""
    return datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%dT%H:%M:%S")


# --- history.find, on real Redis ------------------------------------------------------------------

def test_a_range_holds_the_tasks_sent_from_since_up_to_but_not_at_until(app, redis_conn):
    fill(app, redis_conn, 30)
    page = history.find(redis_conn, Query(since=START + 10, until=START + 20))
    assert ids(page) == [f"task-{i}" for i in range(19, 9, -1)]
    assert page.older is None and page.newer is None  # tasks exist either side, but not in the range


def test_a_range_with_only_one_bound_is_open_on_the_other_side(app, redis_conn):
    fill(app, redis_conn, 10)
    assert ids(history.find(redis_conn, Query(since=START + 7))) == ["task-9", "task-8", "task-7"]
    assert ids(history.find(redis_conn, Query(until=START + 2))) == ["task-1", "task-0"]


def test_a_range_combines_with_a_name_and_with_a_queue(app, redis_conn):
    fill(app, redis_conn, 20, name=lambda i: "proj.even" if i % 2 == 0 else "proj.odd",
         queue=lambda i: "fast" if i % 4 == 0 else "slow")
    by_name = history.find(redis_conn, Query(name="proj.even", since=START + 5, until=START + 15))
    assert ids(by_name) == ["task-14", "task-12", "task-10", "task-8", "task-6"]
    both = history.find(redis_conn, Query(name="proj.even", queue="fast", since=START + 5, until=START + 15))
    assert ids(both) == ["task-12", "task-8"]  # a name and a queue together go through the scan


def test_a_state_filter_scans_only_inside_the_range(app, redis_conn):
    # Given 3,000 tasks, every third one failed
    fill(app, redis_conn, 3000, state_of=lambda i: "FAILURE" if i % 3 == 0 else "SUCCESS")
    # When the failed ones sent in a range of twenty seconds are asked for
    page = history.find(redis_conn, Query(state="FAILURE", since=START + 1000, until=START + 1020))
    # Then exactly those are found, with no page either side
    assert ids(page) == [f"task-{i}" for i in range(1017, 999, -3)]
    assert page.older is None and page.newer is None
    # And a state that matches nothing in the range examines only the range, not the 2,980 tasks around it
    scan = view.scan_sent(redis_conn, 25, history.MAX_SCANNED, state="REVOKED",
                          statuses=history._statuses("REVOKED"), within=view.Range(START + 1000, START + 1020))
    assert scan.found == [] and (scan.oldest, scan.newest) == (START + 1000, START + 1019)


@pytest.mark.parametrize("state", [None, "SUCCESS"], ids=["by-time", "through-the-scan"])
def test_older_and_newer_page_within_the_range_and_stop_at_its_edges(app, redis_conn, state):
    # Given 30 tasks, and a range that holds task-10 to task-19
    fill(app, redis_conn, 30)
    base = Query(state=state, limit=4, since=START + 10, until=START + 20)
    # When it is read four at a time, following Older to the end
    first = history.find(redis_conn, base)
    second = history.find(redis_conn, Query(**{**base.__dict__, "before": first.older}))
    third = history.find(redis_conn, Query(**{**base.__dict__, "before": second.older}))
    # Then the pages hold the range and nothing beyond it: the last has no Older, the first no Newer
    assert [ids(first), ids(second), ids(third)] == [
        ["task-19", "task-18", "task-17", "task-16"], ["task-15", "task-14", "task-13", "task-12"],
        ["task-11", "task-10"]]
    assert first.newer is None and third.older is None
    # And Newer from the last page leads back without leaving the range
    back = history.find(redis_conn, Query(**{**base.__dict__, "after": third.newer}))
    assert ids(back) == ["task-15", "task-14", "task-13", "task-12"]
    newest = history.find(redis_conn, Query(**{**base.__dict__, "after": back.newer}))
    assert ids(newest) == ids(first) and newest.newer is None


# --- the API --------------------------------------------------------------------------------------

def test_the_api_takes_iso_8601_with_an_offset_or_epoch_seconds(app, client, redis_conn):
    fill(app, redis_conn, 10)
    since = datetime.fromtimestamp(START + 3, KOLKATA).isoformat()  # 2023-11-15T03:43:23+05:30
    until = datetime.fromtimestamp(START + 6, timezone.utc).isoformat().replace("+00:00", "Z")
    for query in ({"since": since, "until": until}, {"since": repr(START + 3), "until": str(int(START) + 6)}):
        response = client.get("/api/tasks", query_string=query)
        assert response.status_code == 200, response.json
        assert [row["id"] for row in response.json["tasks"]] == ["task-5", "task-4", "task-3"]


def test_the_api_pages_within_the_range_with_its_cursors(app, client, redis_conn):
    fill(app, redis_conn, 30)
    first = client.get(f"/api/tasks?limit=6&since={START + 10!r}&until={START + 20!r}").json
    second = client.get(f"/api/tasks?limit=6&since={START + 10!r}&until={START + 20!r}&cursor={first['next']}").json
    assert [row["id"] for row in second["tasks"]] == ["task-13", "task-12", "task-11", "task-10"]
    assert second["next"] is None and first["prev"] is None


@pytest.mark.parametrize(("query", "field"), [
    ("since=yesterday", "since"), ("since=2026-12-01T17:00", "since"), ("since=2026-02-30T10:00Z", "since"),
    ("since=2025-02-29T10:00Z", "since"), ("until=-5", "until"), ("until=2026-12-01T24:00Z", "until"),
    ("until=2026-12-01 17:00Z", "until"), ("until=" + "9" * 40, "until")])
def test_a_malformed_bound_is_a_422_naming_it(client, query, field):
    response = client.get(f"/api/tasks?{query}")
    assert response.status_code == 422 and set(response.json["errors"]) == {field}, response.json
    assert "offset from UTC" in response.json["errors"][field]


def test_a_leap_day_is_a_date(client):
    assert client.get("/api/tasks?since=2028-02-29T10:00:00Z").status_code == 200


def test_in_the_api_a_range_that_ends_before_it_begins_holds_no_task(app, client, redis_conn):
    # The document cannot state that until follows since (each is a parameter of its own), and a
    # request the document allows must be accepted: the API answers the empty range (the page says more).
    fill(app, redis_conn, 10)
    response = client.get(f"/api/tasks?since={START + 8!r}&until={START + 2!r}")
    assert response.status_code == 200 and response.json == {"tasks": [], "next": None, "prev": None}


def test_the_openapi_document_states_the_range_and_its_syntax(client):
    parameters = {p["name"]: p for p in client.get("/api/openapi.json").json["paths"]["/api/tasks"]["get"]
                  ["parameters"]}
    assert parameters["since"]["schema"]["pattern"] == parameters["until"]["schema"]["pattern"]
    assert parameters["since"]["schema"]["pattern"].startswith("^(?:[0-9]{1,12}")
    assert "ISO 8601 with its offset" in parameters["since"]["description"]
    assert "exclusive" in parameters["until"]["description"]


# --- the page -------------------------------------------------------------------------------------

def test_the_page_reads_the_range_in_the_readers_time_zone_and_keeps_it_in_its_links(app, client, redis_conn):
    fill(app, redis_conn, 30)
    query = {"since": local(START + 10), "until": local(START + 20), "tz": "Asia/Kolkata", "limit": "4"}
    response = client.get("/tasks", query_string=query)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert [f"/tasks/task-{i}" in page for i in (20, 19, 16, 15)] == [False, True, True, False]
    older = page.split('rel="next"')[0].rsplit('href="', 1)[1]
    assert parse_qs(urlparse(older.replace("&amp;", "&")).query)["since"] == [query["since"]]
    assert f'value="{query["since"]}"' in page  # the input shows what was typed


@pytest.mark.parametrize("zone", ["", "Mars/Olympus", "Europe", "../../etc/passwd", "a\x00b"])
def test_without_a_known_time_zone_the_page_reads_the_range_as_utc(app, client, redis_conn, zone):
    fill(app, redis_conn, 10)
    page = client.get("/tasks", query_string={"since": local(START + 8, timezone.utc), "tz": zone})
    assert page.status_code == 200 and page.get_data(as_text=True).count('href="/tasks/task-') == 2


def test_a_time_long_ago_in_a_zone_whose_offset_then_had_seconds_is_read(client):
    # Paris kept its local mean time (UTC+00:09:21) before 1891; the API's offsets are whole minutes
    response = client.get("/tasks", query_string={"since": "1850-01-01T00:00", "tz": "Europe/Paris"})
    assert response.status_code == 200


@pytest.mark.parametrize(("query", "message"), [
    ({"since": local(START + 20), "until": local(START + 10), "tz": "Asia/Kolkata"},
     "Sent since must be earlier than Sent until"),
    ({"since": "last tuesday"}, "Sent since must be a date and time"),
])
def test_a_reversed_or_malformed_range_shows_the_form_again_with_the_reason_beside_the_field(
        app, client, redis_conn, query, message):
    fill(app, redis_conn, 5)
    response = client.get("/tasks", query_string=query)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in page and 'id="since-error"' in page and 'aria-describedby="since-error"' in page
    assert f'value="{query["since"]}"' in page and 'href="/tasks/task-' not in page


# --- in a real browser ----------------------------------------------------------------------------

def test_a_reader_filters_the_list_by_a_range_in_their_own_time(browser, live_server, redis_conn):
    # Given ten tasks, and a reader in Kolkata (UTC+05:30)
    fill(live_server.app, redis_conn, 10)
    context = browser.new_context(timezone_id="Asia/Kolkata")
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/tasks")
        page.wait_for_selector("#tasks", timeout=DEADLINE_MS)
        # When they enter, in their own time, a range holding task-3 to task-6, and filter
        page.get_by_label("Sent since").fill(local(START + 3))
        page.get_by_label("Sent until").fill(local(START + 7))
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**since=*", timeout=DEADLINE_MS)
        # Then exactly those are listed, and the form keeps the range as they typed it
        links = page.locator("#tasks tbody a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert links == [f"/tasks/task-{i}" for i in (6, 5, 4, 3)]
        assert page.get_by_label("Sent since").input_value() == local(START + 3)
        assert parse_qs(urlparse(page.url).query)["tz"] in (["Asia/Kolkata"], ["Asia/Calcutta"])  # Chromium's name
        # And a range typed backwards comes back with the reason beside the field, and no axe violation
        page.get_by_label("Sent until").fill(local(START + 1))
        with page.expect_navigation():
            page.get_by_role("button", name="Filter").click()
        assert page.inner_text("#since-error") == "Sent since must be earlier than Sent until"
        assert page.get_by_label("Sent since").get_attribute("aria-describedby") == "since-error"
        assert axe_violations(page) == []
    finally:
        context.close()


def test_the_live_list_asks_the_api_for_the_same_range(client, redis_conn):
    # The page takes local times and a zone; the API takes times with an offset, or epoch seconds
    page = client.get("/tasks", query_string={"since": "2026-12-01T10:00", "tz": "Asia/Kolkata",
                                              "name": "proj.add"}).get_data(as_text=True)
    live = page.split('data-live-url="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    asked = parse_qs(urlparse(live).query)
    since = datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))).timestamp()
    assert float(asked["since"][0]) == since and asked["name"] == ["proj.add"]
    assert client.get(live).status_code == 200


def _link(page: str, marker: str) -> str:
    return page.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")


def test_a_range_from_before_1970_starts_the_live_list_and_the_bulk_links_at_1970(client, redis_conn):
    # No task was sent before 1970: the API refuses a negative time, so the page writes 0 instead
    page = client.get("/tasks", query_string={"since": "1969-12-31T00:00:00", "until": "2030-01-01T00:00:00",
                                              "tz": "UTC"}).get_data(as_text=True)
    live, bulk = _link(page, 'data-live-url="'), _link(page, 'id="bulk-cancel" href="')
    assert parse_qs(urlparse(live).query)["since"] == ["0.000000"]
    assert client.get(live).status_code == 200 and client.get(bulk).status_code == 200


def test_a_refused_range_offers_no_live_list_and_no_bulk_action(client, redis_conn):
    # The range is left out of a refused form's query: its bulk buttons would act on every PENDING task
    response = client.get("/tasks", query_string={"state": "PENDING", "since": "2025-01-01T00:00",
                                                  "until": "2024-01-01T00:00", "tz": "UTC"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "data-live-url" not in page and 'id="bulk-actions"' not in page and "/tasks/bulk/" not in page
