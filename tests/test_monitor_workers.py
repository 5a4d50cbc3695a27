"""The Workers page (/workers): every node as its heartbeats in Redis say, and its buttons (issue 17).

Shutdown and pool grow/shrink go through the adapter's remote control, behind a confirmation, the
app's CSRF token and, outside development, its credentials. Real Redis and real worker processes.
"""

from __future__ import annotations

import re
import socket

import pytest
from rq import Worker

from tests.support import wait_for
from tests.support_gunicorn import BASIC, PRODUCTION_SETTINGS

NODE = f"celery@{socket.gethostname()}"  # a prefork node's name (no -n given)


def node_card(client, node: str | None = NODE, headers: dict | None = None) -> str:
    """The text of a node's card on /workers, or of the first card when ``node`` is None ('' when none is shown)."""
    page = client.get("/workers", headers=headers).get_data(as_text=True)
    name = re.escape(node) if node else r"[^\"]+"
    match = re.search(rf'<section class="card node"[^>]*data-node="{name}">(.*?)</section>', page, re.S)
    return match.group(0) if match else ""


def solo_node(client, headers: dict | None = None) -> str:
    """The name of the one node on the page: a solo worker's node is its RQ worker's name."""
    card = wait_for(lambda: node_card(client, None, headers), timeout=15)
    return re.search(r'data-node="([^"]+)"', card).group(1)


def test_a_prefork_node_shows_its_host_pid_pool_and_the_task_it_runs_since_when(client, worker_process):
    from tests import compat_tasks

    # Given a prefork worker of two processes, running a three-second task
    process = worker_process("-P", "prefork", "-c", "2", workers=2)
    result = compat_tasks.sleep.delay(3)
    # When the Workers page is opened while it runs
    card = wait_for(lambda: result.id in node_card(client) and node_card(client), timeout=15)
    # Then the node shows its host, its pid, its pool and size, and the running task with its start time
    assert socket.gethostname() in card and f"<dd>{process.pid}</dd>" in card
    assert "prefork, 2 processes" in card and "worker-busy" in card
    assert f'href="/tasks/{result.id}"' in card and "tests.compat_tasks.sleep" in card
    assert re.search(r'since <time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"', card)
    # And once it finished, the node is idle and counts it as processed, with a recent heartbeat
    result.get(timeout=15)
    card = wait_for(lambda: 'class="processed">1<' in node_card(client) and node_card(client), timeout=15)
    assert "worker-idle" in card and 'class="failed">0<' in card
    assert re.search(r"Last heartbeat</dt><dd><time datetime=", card)


def test_processed_and_failed_counts_add_up_the_nodes_processes(client, worker_process):
    from tests import compat_tasks

    # Given a solo worker that ran one task that succeeded and one that failed
    worker_process("-P", "solo")
    node = solo_node(client)
    compat_tasks.add.delay(1, 2).get(timeout=15)
    with pytest.raises(Exception, match="boom"):
        compat_tasks.fail.delay().get(timeout=15)
    # Then its card counts two processed, one failed (the counts come with the next heartbeat)
    card = wait_for(lambda: 'class="processed">2<' in node_card(client, node) and node_card(client, node), timeout=15)
    assert 'class="failed">1<' in card and "solo, 1 process<" in card


def test_shutdown_asks_to_confirm_then_stops_the_node_through_the_remote_control(client, worker_process):
    # Given a running worker
    process = worker_process("-P", "prefork", "-c", "1")
    wait_for(lambda: node_card(client), timeout=15)
    # When Shutdown is chosen, a page says what it does and asks to confirm (nothing is sent yet)
    confirm = client.get(f"/workers/{NODE}/shutdown")
    assert confirm.status_code == 200 and "finishes its running tasks" in confirm.get_data(as_text=True)
    assert process.poll() is None
    # And once confirmed, the worker answers and exits
    response = client.post(f"/workers/{NODE}/shutdown")
    assert response.status_code == 303 and response.headers["Location"] == "/workers"
    assert process.wait(timeout=20) == 0
    assert re.search(r'id="done">celery@[^:]+: shutting down<', client.get("/workers").get_data(as_text=True))


def test_grow_and_shrink_change_the_prefork_pool_by_one_process(client, worker_process, redis_conn):
    # Given a prefork worker of one process
    worker_process("-P", "prefork", "-c", "1")
    wait_for(lambda: "prefork, 1 process<" in node_card(client), timeout=15)
    # When "Add a process" is confirmed, a second work process starts
    assert client.post(f"/workers/{NODE}/grow").status_code == 303
    wait_for(lambda: "prefork, 2 processes" in node_card(client), timeout=15)
    wait_for(lambda: Worker.count(connection=redis_conn) == 2, timeout=15)
    # And when "Remove a process" is confirmed, one is retired and not replaced
    assert client.post(f"/workers/{NODE}/shrink").status_code == 303
    wait_for(lambda: "prefork, 1 process<" in node_card(client), timeout=15)
    wait_for(lambda: Worker.count(connection=redis_conn) == 1, timeout=15)
    # And the last process is kept: shrinking it answers, and the pool stays at one
    assert client.post(f"/workers/{NODE}/shrink").status_code == 303
    assert "prefork, 1 process<" in node_card(client)


def test_shrink_retires_an_idle_process_first_and_the_running_task_ends_normally(client, worker_process, redis_conn):
    from app.celery_compat import keys
    from tests import compat_tasks

    # Given a prefork worker of two processes, one of them running a three-second task
    worker_process("-P", "prefork", "-c", "2", workers=2)
    result = compat_tasks.sleep.delay(3)
    wait_for(lambda: result.id in node_card(client), timeout=15)
    busy = redis_conn.hget(keys.job(result.id), "worker_name").decode()
    # When the pool is shrunk by one
    assert client.post(f"/workers/{NODE}/shrink").status_code == 303
    # Then the idle process is the one that goes, and the task finishes where it ran
    wait_for(lambda: Worker.count(connection=redis_conn) == 1, timeout=15)
    assert [worker.name for worker in Worker.all(connection=redis_conn)] == [busy]
    assert result.get(timeout=15) == 3


def test_a_solo_worker_offers_no_pool_buttons_and_says_why_a_resize_failed(client, worker_process):
    # Given a solo worker (its pool has a fixed size)
    worker_process("-P", "solo")
    node = solo_node(client)
    card = node_card(client, node)
    # Then its card has Shutdown only
    assert "Shut down" in card and "Add a process" not in card
    # And a grow sent anyway comes back with the worker's reason, not a silent success
    assert client.post(f"/workers/{node}/grow").status_code == 303
    assert re.search(r'id="failed">[^<]*: pool_grow: the solo pool has a fixed size', client.get("/workers").get_data(
        as_text=True))


def test_a_message_in_the_url_is_not_shown_as_an_answer(client, redis_conn):
    page = client.get("/workers?done=All+workers+are+fine&failed=Call+555").get_data(as_text=True)
    assert "All workers are fine" not in page and "Call 555" not in page


def test_an_rq_worker_outside_any_node_is_shown_without_buttons(client, celery_app, redis_conn):
    from rq.queue import Queue

    from app.celery_compat.worker import LeanWorker

    # Given a registered RQ worker that does not listen to the remote control (a plain `rq worker`)
    worker = LeanWorker([Queue("celery", connection=redis_conn)], connection=redis_conn, name="plain@elsewhere")
    worker.register_birth()
    # Then it shows as a node of its own, with its pid and queue, and says why it has no buttons
    card = node_card(client, "plain@elsewhere")
    assert f"<dd>{worker.pid}</dd>" in card and "<dd>celery</dd>" in card and "rq, 1 process" in card
    assert "Not listening to the remote control" in card and "Shut down" not in card
    assert client.get("/workers/plain@elsewhere/shutdown").status_code == 404


def test_buttons_for_a_node_that_is_not_listening_or_an_unknown_action_are_404(client, redis_conn):
    assert client.get(f"/workers/{NODE}/shutdown").status_code == 404
    assert client.post("/workers/celery@nowhere/shutdown").status_code == 404
    assert client.get(f"/workers/{NODE}/explode").status_code == 404


def test_with_no_worker_the_page_says_how_to_start_one(client, redis_conn):
    assert "python worker.py" in client.get("/workers").get_data(as_text=True)


def test_outside_development_the_buttons_need_credentials_and_the_csrf_token(make_app, redis_url, worker_process):
    # Given the app in production, and a worker
    process = worker_process("-P", "solo")
    client = make_app(redis_url, **PRODUCTION_SETTINGS).test_client()
    node = solo_node(client, BASIC)
    # Then a stranger can neither see the page nor press a button
    assert client.get("/workers").status_code == 401
    assert client.post(f"/workers/{node}/shutdown").status_code == 401
    # And a signed-in post without the form's CSRF token is refused
    assert client.post(f"/workers/{node}/shutdown", headers=BASIC).status_code == 400
    assert process.poll() is None
    # While the confirmation page's own form carries the token, and its post goes through
    page = client.get(f"/workers/{node}/shutdown", headers=BASIC).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(f"/workers/{node}/shutdown", data={"csrf_token": token}, headers=BASIC)
    assert response.status_code == 303
    assert process.wait(timeout=20) == 0
