"""Remote control: app.control and inspect() are answered by the workers themselves, over Redis.

Each real worker (a prefork supervisor for its work processes, a solo worker, the test worker
in a thread) listens on the control channel and answers with its node name, as Celery's do.
"""

from __future__ import annotations

import os
import time

import pytest

from app.celery_compat.contrib.testing.worker import start_worker
from app.celery_compat.exceptions import TimeLimitExceeded
from app.celery_compat.worker import state as worker_state
from app.celery_compat.worker.control import Panel, control_command, inspect_command
from tests import compat_tasks
from tests.support import stop_workers, wait_for
from tests.support_faults import app_on
from tests.support_faults import start_worker as start_faulted_worker

#: Generous: the machine is shared; an answer normally comes in milliseconds.
TIMEOUT = 20.0


def test_a_prefork_worker_answers_as_one_node_for_its_work_processes(celery_app, worker_process):
    # Given a prefork worker with two work processes, named alpha@test
    worker_process("-P", "prefork", "-c", "2", "-n", "alpha@test", workers=2)
    inspect = celery_app.control.inspect(timeout=TIMEOUT)
    # When it is pinged, then it answers once, under its node name
    started = time.monotonic()
    assert inspect.ping() == {"alpha@test": {"ok": "pong"}}
    # and the caller did not wait out the timeout: every live node had answered
    assert time.monotonic() - started < TIMEOUT
    # Its stats show both work processes, and registered() lists the worker's own tasks
    stats = inspect.stats()["alpha@test"]
    assert (stats["pool"]["max-concurrency"], len(stats["pool"]["processes"])) == (2, 2)
    assert "tests.compat_tasks.add" in inspect.registered()["alpha@test"]


def test_active_lists_the_task_a_prefork_work_process_is_running(celery_app, worker_process):
    worker_process("-P", "prefork", "-c", "1", "-n", "busy@test")
    result = compat_tasks.sleep.delay(30)
    inspect = celery_app.control.inspect(timeout=TIMEOUT)

    def running() -> list:
        return (inspect.active() or {}).get("busy@test")

    active = wait_for(running, timeout=TIMEOUT)
    assert [(task["id"], task["name"], task["args"]) for task in active] == [
        (result.id, "tests.compat_tasks.sleep", [30])]
    assert active[0]["worker_pid"] in inspect.stats()["busy@test"]["pool"]["processes"]
    assert inspect.query_task(result.id)["busy@test"][result.id][0] == "active"
    result.revoke(terminate=True)


def test_destination_selects_which_workers_answer(celery_app, worker_process):
    worker_process("-P", "solo", "-n", "one@test")
    worker_process("-P", "solo", "-n", "two@test")
    control = celery_app.control
    assert control.inspect(destination=["two@test"], timeout=TIMEOUT).ping() == {"two@test": {"ok": "pong"}}
    assert control.inspect(destination="one@test", timeout=TIMEOUT).ping() == {"ok": "pong"}
    assert control.inspect(timeout=1).ping() == {"one@test": {"ok": "pong"}, "two@test": {"ok": "pong"}}
    assert control.inspect(pattern="t*@test", matcher="glob", timeout=TIMEOUT).ping() == {"two@test": {"ok": "pong"}}


def test_add_consumer_makes_a_running_worker_take_tasks_from_another_queue(celery_app, worker_process):
    # Given a solo worker on the default queue only
    worker_process("-P", "solo", "-n", "solo@test")
    control = celery_app.control
    # When it is told to consume from "extra" too
    replies = control.add_consumer("extra", reply=True, destination=["solo@test"], timeout=TIMEOUT)
    assert replies == [{"solo@test": {"ok": "add consumer extra"}}]
    # Then a task sent to "extra" runs, and active_queues lists both queues
    assert compat_tasks.add.apply_async((2, 3), queue="extra").get(timeout=TIMEOUT) == 5
    queues = control.inspect(timeout=TIMEOUT).active_queues()["solo@test"]
    assert [queue["name"] for queue in queues] == ["celery", "extra"]
    control.cancel_consumer("extra", reply=True, destination=["solo@test"], timeout=TIMEOUT)
    assert [q["name"] for q in control.inspect(timeout=TIMEOUT).active_queues()["solo@test"]] == ["celery"]


def test_inspect_answers_none_at_once_when_no_worker_listens(celery_app):
    started = time.monotonic()
    assert celery_app.control.inspect(timeout=TIMEOUT).ping() is None
    assert time.monotonic() - started < TIMEOUT


# -- in this process: the test worker in a thread, user commands, the worker's state -------------
@pytest.fixture
def thread_worker(celery_app):
    with start_worker(celery_app, perform_ping_check=False, hostname="thread@test") as worker:
        yield worker


@pytest.fixture
def user_commands():
    @control_command(args=[("value", int)])
    def double_it(state, value, **kwargs):
        return {"ok": value * 2, "node": state.hostname}

    @inspect_command()
    def always_fails(state, **kwargs):
        raise RuntimeError("broken command")

    yield
    for name in ("double_it", "always_fails"):
        Panel.data.pop(name)
        Panel.meta.pop(name)


def test_a_user_command_runs_in_the_worker_and_a_failing_one_does_not_stop_it(celery_app, thread_worker,
                                                                              user_commands):
    control = celery_app.control
    assert control.broadcast("double_it", arguments={"value": 21}, reply=True, timeout=TIMEOUT) == [
        {"thread@test": {"ok": 42, "node": "thread@test"}}]
    answer = control.inspect(timeout=TIMEOUT)._request("always_fails")["thread@test"]
    assert "RuntimeError('broken command')" in answer["error"]
    assert control.inspect(timeout=TIMEOUT).ping() == {"thread@test": {"ok": "pong"}}


def test_revoke_with_reply_answers_and_the_worker_remembers_the_id(celery_app, thread_worker):
    result = compat_tasks.add.apply_async((1, 1), countdown=60)
    replies = celery_app.control.revoke(result.id, reply=True, timeout=TIMEOUT)
    assert replies == [{"thread@test": {"ok": f"tasks {result.id} flagged as revoked"}}]
    assert result.id in celery_app.control.inspect(timeout=TIMEOUT).revoked()["thread@test"]
    assert result.id in worker_state.revoked
    worker_state.revoked.discard(result.id)


def test_scheduled_lists_a_task_waiting_for_its_eta(celery_app, thread_worker):
    result = compat_tasks.add.apply_async((1, 2), countdown=60)
    scheduled = celery_app.control.inspect(timeout=TIMEOUT).scheduled()["thread@test"]
    assert [(entry["request"]["id"], entry["request"]["args"]) for entry in scheduled] == [(result.id, [1, 2])]
    result.revoke()


def test_a_task_run_by_the_worker_is_counted_in_its_state(celery_app, thread_worker):
    result = compat_tasks.add.delay(2, 2)
    assert result.get(timeout=TIMEOUT) == 4
    wait_for(lambda: result.id in worker_state.successful_requests, timeout=TIMEOUT)
    stats = celery_app.control.inspect(timeout=TIMEOUT).stats()["thread@test"]
    assert stats["pid"] == os.getpid()
    assert stats["total"]["tests.compat_tasks.add"] >= 1


def test_a_prefork_worker_counts_the_tasks_its_work_processes_ran(celery_app, worker_process):
    # Given a prefork worker whose two work processes ran three tasks
    worker_process("-P", "prefork", "-c", "2", "-n", "counting@test")
    assert [compat_tasks.add.delay(n, n).get(timeout=TIMEOUT) for n in range(3)] == [0, 2, 4]

    def total() -> dict:
        return (celery_app.control.inspect(timeout=TIMEOUT).stats() or {}).get("counting@test", {}).get("total")

    # Then its stats count them by name (the processes report with their heartbeat)
    wait_for(lambda: total() == {"tests.compat_tasks.add": 3}, timeout=TIMEOUT, describe=lambda: str(total()))


def test_hello_takes_other_workers_revoked_ids_with_stamps_of_this_host(celery_app, thread_worker):
    far_ahead = time.monotonic() + 10 ** 6
    reply = celery_app.control.inspect(timeout=TIMEOUT).hello("other@host", revoked={"abc": [far_ahead, 0, "abc"]})
    assert "abc" in reply["thread@test"]["revoked"]
    assert worker_state.revoked.as_dict()["abc"] <= time.monotonic()
    worker_state.revoked.discard("abc")


def test_time_limit_command_applies_to_the_tasks_a_prefork_worker_starts_next(celery_app, worker_process):
    # Given a prefork worker, and a task with no time limit of its own
    worker_process("-P", "prefork", "-c", "1", "-n", "limits@test")
    # (one task first: the command then replaces a work process that is past its start)
    assert compat_tasks.add.delay(1, 1).get(timeout=TIMEOUT) == 2
    # When the worker is told that this task may run one second at most
    replies = celery_app.control.time_limit("tests.compat_tasks.sleep", hard=1, reply=True, timeout=TIMEOUT)
    assert replies == [{"limits@test": {"ok": "time limits set successfully"}}]
    # Then the next such task is stopped after a second, as over its own limit
    result = compat_tasks.sleep.delay(30)
    with pytest.raises(TimeLimitExceeded):
        result.get(timeout=TIMEOUT)


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_shutdown_command_stops_the_worker(celery_app, worker_process, pool):
    process = worker_process("-P", pool, "-c", "1", "-n", f"{pool}-bye@test")
    assert compat_tasks.add.delay(1, 1).get(timeout=TIMEOUT) == 2  # a worker past its start, as above
    replies = celery_app.control.shutdown(destination=[f"{pool}-bye@test"], reply=True, timeout=TIMEOUT)
    assert replies == [{f"{pool}-bye@test": {"ok": "shutting down"}}]
    wait_for(lambda: process.poll() is not None, timeout=TIMEOUT)
    assert process.returncode == 0


def test_revoke_by_stamped_headers_is_remembered_by_the_worker(celery_app, thread_worker):
    replies = celery_app.control.revoke_by_stamped_headers({"monitoring_id": ["m-1"]}, reply=True, timeout=TIMEOUT)
    assert replies == [{"thread@test": {"ok": "headers {'monitoring_id': ['m-1']} flagged as revoked, "
                                              "but not terminated"}}]
    assert worker_state.revoked_stamps == {"monitoring_id": ["m-1"]}
    worker_state.revoked_stamps.clear()


def test_a_worker_answers_again_once_redis_is_back(own_redis_server, tmp_path):
    # Given a prefork worker answering ping on a Redis of this test's own
    with app_on(own_redis_server.url) as app:
        process = start_faulted_worker(own_redis_server.url, tmp_path / "worker.log", "-P", "prefork", "-c", "1",
                                       "-n", "phoenix@test")
        try:
            wait_for(lambda: app.control.inspect(timeout=1).ping(), timeout=TIMEOUT)
            # When Redis goes away and comes back
            own_redis_server.stop()
            own_redis_server.start()
            # Then the worker answers again (its listening and its listing come back by themselves)
            app._connection = None
            wait_for(lambda: app.control.inspect(timeout=1).ping() == {"phoenix@test": {"ok": "pong"}},
                     timeout=TIMEOUT * 2)
        finally:
            stop_workers([process])
