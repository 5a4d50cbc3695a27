"""Starting a worker without Redis: one line per attempt with backoff, never a flood of tracebacks.

A URL that can never work ends the worker at once, non-zero, saying why; ``--burst`` gives up
after its first failed attempt. Real worker processes, a real Redis started late on its port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.support import ROOT, stop_workers, wait_for
from tests.support_faults import app_on, log_lines, start_worker, submit


@pytest.fixture
def own_app(own_redis_server):
    with app_on(own_redis_server.url) as app:
        yield app


def test_a_worker_started_before_its_redis_waits_quietly_then_takes_tasks(own_redis_server, own_app, tmp_path):
    from tests import compat_tasks

    # Given a worker started while nothing listens on its Redis port (with a password to hide)
    own_redis_server.stop()
    log = tmp_path / "worker.log"
    url = own_redis_server.url.replace("redis://", "redis://:s3cret-pw@", 1)
    worker = start_worker(url, log, "-c", "2")
    try:
        # When it waits for about 5 s
        time.sleep(5)
        # Then it is still running, and said so in a handful of lines, without a traceback
        assert worker.poll() is None, log.read_text()[-2000:]
        lines = log_lines(log)
        assert 2 <= len(lines) <= 8, lines
        assert not any("Traceback" in line for line in lines), lines
        assert f"cannot reach Redis at redis://127.0.0.1:{own_redis_server.port} (connection refused); retrying in" \
            in log.read_text()
        assert "s3cret-pw" not in log.read_text()
        # And once Redis starts on that port, the same worker takes a task
        own_redis_server.start()
        result = wait_for(lambda: submit(compat_tasks.add, 2, 3), timeout=20)
        assert result.get(timeout=40) == 5
        assert worker.poll() is None
    finally:
        stop_workers([worker])


def test_a_url_that_is_not_redis_ends_the_worker_at_once_saying_why(tmp_path):
    log = tmp_path / "worker.log"
    started = time.monotonic()
    worker = start_worker("http://127.0.0.1:9/", log, "-c", "2")
    try:
        code = worker.wait(timeout=5)
    finally:
        stop_workers([worker])
    assert code != 0
    assert time.monotonic() - started < 5
    text = log.read_text()
    assert "'http://127.0.0.1:9/' is not a Redis URL" in text
    assert "Traceback" not in text


def test_a_host_name_that_does_not_exist_ends_the_worker_at_once(tmp_path):
    log = tmp_path / "worker.log"
    worker = start_worker("redis://:pw-hidden@no-such-host.invalid:6379/0", log, "-c", "1")
    try:
        code = worker.wait(timeout=5)
    finally:
        stop_workers([worker])
    assert code != 0
    text = log.read_text()
    assert "cannot resolve the host name 'no-such-host.invalid'" in text
    assert "pw-hidden" not in text and "Traceback" not in text


def test_a_burst_worker_without_redis_exits_non_zero_after_one_attempt(own_redis_server, tmp_path):
    own_redis_server.stop()
    log = tmp_path / "worker.log"
    for pool in ("prefork", "fork", "solo"):
        worker = start_worker(own_redis_server.url, log, "--burst", "-P", pool, "-c", "1")
        try:
            code = worker.wait(timeout=5)
        finally:
            stop_workers([worker])
        assert code != 0, pool
    text = log.read_text()
    assert text.count("giving up (--burst)") == 3, text
    assert "Traceback" not in text


def test_the_supervisor_backs_off_restarting_a_work_process_that_dies_as_it_starts(tmp_path):
    starts = tmp_path / "starts"
    supervisor = subprocess.Popen([sys.executable, "tests/programs/_crashing_children.py", str(starts)], cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(4)
        assert supervisor.poll() is None
    finally:
        stop_workers([supervisor], timeout=5)
    # 1 s, 2 s, 4 s between restarts: a handful of starts, not one per 0.2 s poll
    assert 2 <= len(starts.read_text().splitlines()) <= 4
