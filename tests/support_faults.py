"""Helpers for the fault tests: a worker process on a test's own Redis, and its log."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import redis

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
