"""Helpers for the fault tests: a worker process on a test's own Redis, its log, replies lost on the way."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.connection import AbstractConnection

from tests.support import ROOT


@contextlib.contextmanager
def app_on(url: str) -> Iterator[object]:
    """The test tasks' Celery app, pointed at ``url`` for the time of the block."""
    from tests import compat_tasks

    app = compat_tasks.app
    saved = dict(app.conf)
    app.conf.broker_url = url
    app._connection = None
    try:
        yield app
    finally:
        app.conf.clear()
        app.conf.update(saved)
        app._connection = None


def start_worker(url: str, log_path: Path, *args: str) -> subprocess.Popen:
    """``python worker.py -A tests.compat_tasks -u URL ARGS`` in its own session, its output to ``log_path``."""
    log = log_path.open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "worker.py", "-A", "tests.compat_tasks", "-u", url, "-l", "INFO", *args],
            cwd=ROOT, env={**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    finally:
        log.close()  # the child has its own copy


def log_lines(log_path: Path) -> list[str]:
    return log_path.read_text(errors="replace").splitlines()


def submit(task, *args):
    """``task.delay(*args)``, or None while Redis refuses it (for ``wait_for``)."""
    try:
        return task.delay(*args)
    except redis.exceptions.RedisError:
        return None


class LostReplies:
    """Lose the reply of one script's EVALSHA: Redis runs it, then the client's connection drops.

    As a connection cut (or a socket timeout) right after Redis ran the call. Every matching
    call, up to ``times``, loses its reply: alone (``in_pipeline=False``) or sent in a pipeline.
    Whatever retries comes from the code under test (redis-py's own retry, the worker's loops).
    Alone or in a pipeline: however it is sent, one command or several in one round trip.
    """

    def __init__(self, script: str, in_pipeline: bool, times: int = 1) -> None:
        self.sha = hashlib.sha1(script.encode()).hexdigest()
        self.in_pipeline = in_pipeline
        self.left = times
        self.lost = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> LostReplies:
        """Patch redis-py's connections (every one: the worker's are made later) for the test's time."""
        pack_commands, send_packed = AbstractConnection.pack_commands, AbstractConnection.send_packed_command
        send_command, read_response = AbstractConnection.send_command, AbstractConnection.read_response

        def send(conn: AbstractConnection, *args: Any, **options: Any) -> None:
            if self._wanted([args]) is None:
                return send_command(conn, *args, **options)
            packed = conn._command_packer.pack(*args)
            conn._lose_after = (packed, 0)  # type: ignore[attr-defined]
            conn.send_packed_command(packed, check_health=options.get("check_health", True))

        def pack(conn: AbstractConnection, commands: Any) -> Any:
            commands = list(commands)
            packed = pack_commands(conn, commands)
            at = self._wanted(commands)
            if at is not None:
                conn._lose_after = (packed, at)  # type: ignore[attr-defined]
            return packed

        def send_packed_command(conn: AbstractConnection, command: Any, check_health: bool = True) -> None:
            send_packed(conn, command, check_health)
            # Counted from here: connecting and its health check (inside the send) read replies too.
            pending = getattr(conn, "_lose_after", None)
            if pending is not None and pending[0] is command:
                conn._lose_after, conn._lose_reply_at, conn._replies_read = None, pending[1], 0  # type: ignore

        def read(conn: AbstractConnection, *args: Any, **options: Any) -> Any:
            try:
                reply = read_response(conn, *args, **options)
            except redis.exceptions.ResponseError:
                self._maybe_lose(conn, ran=False)
                raise
            self._maybe_lose(conn, ran=True)
            return reply

        monkeypatch.setattr(AbstractConnection, "send_command", send)
        monkeypatch.setattr(AbstractConnection, "pack_commands", pack)
        monkeypatch.setattr(AbstractConnection, "send_packed_command", send_packed_command)
        monkeypatch.setattr(AbstractConnection, "read_response", read)
        return self

    def _wanted(self, commands: list) -> int | None:
        """The place of the call whose reply is to be lost among ``commands``, or None."""
        if (len(commands) > 1) != self.in_pipeline:
            return None
        for index, command in enumerate(commands):
            if self.left and len(command) > 1 and str(command[0]).upper() == "EVALSHA" \
                    and _text(command[1]) == self.sha:
                self.left -= 1
                return index
        return None

    def _maybe_lose(self, conn: AbstractConnection, ran: bool) -> None:
        """Count a reply read; drop the connection instead of returning the chosen one."""
        at = getattr(conn, "_lose_reply_at", None)
        if at is None:
            return
        if conn._replies_read < at:  # type: ignore[attr-defined]
            conn._replies_read += 1  # type: ignore[attr-defined]
            return
        conn._lose_reply_at = None  # type: ignore[attr-defined]
        if not ran:  # an error reply (NOSCRIPT: Redis had forgotten the script): a later call loses its reply
            self.left += 1
            return
        self.lost += 1
        conn.disconnect()
        raise redis.exceptions.ConnectionError("test: the connection dropped before the reply arrived")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
