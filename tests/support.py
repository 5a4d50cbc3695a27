"""Helpers that tests import: waiting, worker processes, a live app server, an SMTP server.

Fixtures stay in ``conftest.py``; what a test module calls directly lives here, once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> object:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)
    return value


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05,
             describe: Callable[[], str] | None = None) -> object:
    """Like :func:`wait_until`, but fail the test with a clear message (and ``describe()``) at the deadline."""
    value = wait_until(predicate, timeout, interval)
    if not value:
        detail = f"\n{describe()}" if describe is not None else ""
        pytest.fail(f"condition not met within {timeout} s: {getattr(predicate, '__name__', predicate)}{detail}")
    return value


def spawn_worker(args: list[str], env: dict[str, str], log_path: Path, connection: redis.Redis,
                 workers: int = 1) -> subprocess.Popen:
    """Start ``python worker.py ARGS`` and return once ``workers`` more RQ workers registered.

    It runs in its own session, so that stopping it (and a test killing "the whole machine")
    reaches every process the worker started: work processes and RQ's scheduler alike.
    """
    from rq import Worker

    before = Worker.count(connection=connection)
    process = subprocess.Popen(
        [sys.executable, "worker.py", *args], cwd=ROOT, env={"PYTHONPATH": str(ROOT), **env},
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(lambda: Worker.count(connection=connection) >= before + workers or process.poll() is not None,
                 timeout=30)
        assert process.poll() is None, log_path.read_text()
    except BaseException:
        stop_workers([process], timeout=5)  # the caller never gets it to stop: no worker outlives its test
        raise
    return process


def stop_workers(processes: list[subprocess.Popen], timeout: float = 20.0) -> None:
    """SIGTERM (a warm shutdown), a kill after ``timeout`` s, then whatever their sessions left behind."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


class LiveServer:
    """The app served by Werkzeug in a thread: ``.url``, ``.app``."""

    def __init__(self, app) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a loopback port, started and stopped by the test.

    ``.received`` holds ``(mail_from, rcpt_tos, EmailMessage)`` per accepted transaction and
    ``.arrivals`` its ``time.monotonic()``; ``.refuse_rcpt`` and ``.refuse_data`` are replies
    ("550 5.1.1 ...") used, one each, before accepting; ``.delay`` slows every DATA by that many seconds.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[str, list[str], object]] = []
        self.arrivals: list[float] = []
        self.delay = 0.0
        self.refuse_rcpt: collections.deque[str] = collections.deque()
        self.refuse_data: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self._controller = None

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list:
        with self._lock:
            return [message for _, _, message in self.received]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if self.refuse_rcpt:
            return self.refuse_rcpt.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        await asyncio.sleep(self.delay)
        if self.refuse_data:
            return self.refuse_data.popleft()
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        with self._lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
            self.arrivals.append(time.monotonic())
        return "250 2.0.0 Accepted"
