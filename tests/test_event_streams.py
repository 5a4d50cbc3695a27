"""Live event streams cannot take the app down: 200 held open, yet the pages and /healthz answer at once.

The attack (issue 12, item 3): every ``/api/tasks/<id>/events`` stream holds a server thread, so a
few dozen open streams used to take every thread of the production server and make every
endpoint, /healthz included, time out. These tests run real gunicorn with gunicorn.conf.py (the
configuration the Dockerfile, docker-compose.yml and the README use) against a test Redis.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator

import pytest

from app import config
from tests.conftest import wait_for
from tests.support_gunicorn import BASIC, BEARER, PASSWORD, USERNAME, Gunicorn, serve

STREAMS = 200
#: What "answering" means while the streams are open.
MAX_ANSWER_SECONDS = 1.0


@pytest.fixture
def server(redis_url, redis_conn, tmp_path) -> Iterator[Gunicorn]:
    with serve(redis_url, tmp_path, SUBMIT_RATE_LIMIT="off") as running:
        yield running


def open_streams(server: Gunicorn, task_id: str, count: int) -> list[socket.socket]:
    """Open ``count`` event streams on raw sockets, as an attacker would, and leave them open."""
    request = (f"GET /api/tasks/{task_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: {BEARER['Authorization']}\r\nAccept: text/event-stream\r\n\r\n").encode()
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(request)
        sockets.append(sock)
    return sockets


def read_heads(sockets: list[socket.socket], within: float = 10.0) -> list[str]:
    """What each stream answered first, all within ``within`` seconds ("" where nothing came)."""
    deadline = time.monotonic() + within
    heads = []
    for sock in sockets:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        heads.append(first_lines(sock))
    return heads


def first_lines(sock: socket.socket) -> str:
    """The status line and headers of a stream's response, and its body when it has a length (a refusal)."""
    data = b""
    with contextlib.suppress(TimeoutError):
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


def _length(data: bytes) -> int:
    match = re.search(rb"(?im)^content-length: (\d+)\r$", data)
    return int(match[1]) if match else 0


def timed_get(server: Gunicorn, path: str) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = server.request("GET", path, headers=BASIC, timeout=3)[0]
    except TimeoutError:
        status = 0
    return status, time.monotonic() - started


def submit(server: Gunicorn, duration: int) -> str:
    status, _, body = server.request("POST", "/api/tasks/long-running", {"duration": duration}, BEARER)
    assert status == 202, body
    return json.loads(body)["id"]


def test_two_hundred_open_streams_leave_the_pages_and_healthz_answering_within_a_second(server):
    # Given a task that waits (no worker yet), so its streams stay open
    task_id = submit(server, 3)
    # When 200 clients open its event stream and keep it open
    sockets = open_streams(server, task_id, STREAMS)
    try:
        heads = read_heads(sockets)
        # Then the index page and /healthz still answer, each within a second, again and again
        timings = [timed_get(server, path) for _ in range(5) for path in ("/", "/healthz")]
        assert all(status == 200 for status, _ in timings), timings
        assert max(seconds for _, seconds in timings) < MAX_ANSWER_SECONDS, timings
        # And each process streams only its share; every other client was told at once to poll instead
        streaming = [head for head in heads if head.startswith("HTTP/1.1 200")]
        refused = [head for head in heads if head.startswith("HTTP/1.1 503")]
        settings = config.defaults()
        assert 0 < len(streaming) <= settings["WEB_WORKERS"] * settings["EVENT_STREAMS_PER_WORKER"]
        assert len(streaming) + len(refused) == STREAMS
        assert all(re.search(r"(?i)^retry-after: \d+\r$", head, re.MULTILINE) for head in refused)
        assert all(f"/api/tasks/{task_id}" in head for head in refused)  # the JSON body says where to poll
        print(f"\n{len(streaming)} streaming, {len(refused)} refused; slowest / or /healthz: "  # noqa: T201
              f"{max(seconds for _, seconds in timings) * 1000:.0f} ms")
    finally:
        for sock in sockets:
            sock.close()


def test_while_streams_are_held_open_the_task_page_still_follows_its_task(server, project_worker, browser):
    # Given 200 streams held open on a task that runs (a worker is up)
    task_id = submit(server, 3)
    sockets = open_streams(server, task_id, STREAMS)
    try:
        read_heads(sockets)
        # When a person opens the task's page
        context = browser.new_context(http_credentials={"username": USERNAME, "password": PASSWORD})
        page = context.new_page()
        answers: dict[str, list[int]] = {"stream": [], "poll": []}
        page.on("response", lambda response: answers["stream" if response.url.endswith("/events") else "poll"]
                .append(response.status) if f"/api/tasks/{task_id}" in response.url else None)
        page.goto(f"{server.url}/tasks/{task_id}")
        # Then the page shows the task's progress and its end without a reload (polling, if no stream is free)
        page.evaluate("window.notReloaded = true")
        page.wait_for_function("() => Number(document.querySelector('#progress').value) > 0", timeout=20_000)
        page.wait_for_function("() => document.querySelector('#state').textContent === 'SUCCESS'", timeout=20_000)
        assert page.evaluate("window.notReloaded") is True
        assert "Worked for 3 s" in page.text_content("#result")
        # Every stream slot was taken, so the page's stream was refused and it polled the status instead
        assert answers["stream"] == [503] and answers["poll"] and set(answers["poll"]) == {200}, answers
        context.close()
    finally:
        for sock in sockets:
            sock.close()


def test_the_api_poll_still_reports_progress_while_streams_are_held_open(server, project_worker):
    # Given 200 streams held open on a task that runs
    task_id = submit(server, 3)
    sockets = open_streams(server, task_id, STREAMS)
    try:
        # When its status is polled as the page's fallback does, Then every answer is quick and it moves to SUCCESS
        seen: list[str] = []

        def finished() -> bool:
            started = time.monotonic()
            status = json.loads(server.request("GET", f"/api/tasks/{task_id}", headers=BEARER, timeout=5)[2])
            assert time.monotonic() - started < MAX_ANSWER_SECONDS
            seen.append(status["state"])
            return status["state"] == "SUCCESS"

        wait_for(finished, timeout=30, interval=0.2)
        assert "PROGRESS" in seen, seen
    finally:
        for sock in sockets:
            sock.close()


def test_a_stream_beyond_the_bound_is_refused_at_once_and_a_closed_stream_frees_its_slot(make_app, redis_url,
                                                                                        redis_conn):
    # Given a process that serves one stream at a time, serving one
    client = make_app(redis_url, EVENT_STREAMS_PER_WORKER=1).test_client()
    task_id = client.post("/api/tasks/long-running", json={"duration": 5}).json["id"]
    first = client.get(f"/api/tasks/{task_id}/events")
    assert first.status_code == 200
    # When another client asks for a stream, Then it is refused at once, told to poll and when to come back
    refused = client.get(f"/api/tasks/{task_id}/events")
    assert refused.status_code == 503 and refused.headers["Retry-After"].isdigit()
    assert refused.json["poll"] == f"/api/tasks/{task_id}"
    # And once the first stream is closed, its slot serves the next one
    first.close()
    again = client.get(f"/api/tasks/{task_id}/events")
    assert again.status_code == 200
    again.close()


def test_an_unknown_task_gives_its_slot_back(make_app, redis_url, redis_conn):
    client = make_app(redis_url, EVENT_STREAMS_PER_WORKER=1).test_client()
    assert [client.get("/api/tasks/nobody/events").status_code for _ in range(3)] == [404] * 3


def test_a_stream_ends_after_its_lifetime_even_if_the_task_has_not(make_app, redis_url, redis_conn):
    client = make_app(redis_url, EVENT_STREAM_MAX_SECONDS=1.5).test_client()
    task_id = client.post("/api/tasks/long-running", json={"duration": 5}).json["id"]
    started = time.monotonic()
    response = client.get(f"/api/tasks/{task_id}/events")
    body = response.get_data(as_text=True)
    response.close()
    # The browser's EventSource reconnects after the "retry" the stream announced
    assert 1.5 <= time.monotonic() - started < 5
    assert body.startswith("retry: 1000\nevent: status") and "event: end" not in body
