"""The pytest plugin ``app.celery_compat.contrib.pytest``: a user's test suite written as for Celery runs here.

Each test runs pytest in a subprocess on a small user suite (the files below), with the plugin
enabled as a user would (``-p app.celery_compat.contrib.pytest``), against this test's own Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import redis
from rq import Worker

ROOT = Path(__file__).resolve().parent.parent

USER_CONFTEST = '''
import os

import pytest


@pytest.fixture(scope="session")
def celery_config():
    return {"broker_url": os.environ["USER_REDIS_URL"], "result_backend": os.environ["USER_REDIS_URL"]}


@pytest.fixture(scope="session")
def celery_includes():
    return ["user_tasks"]
'''

USER_TASKS = '''
from app.celery_compat import shared_task


@shared_task(name="user_tasks.mul")
def mul(x, y):
    return x * y
'''

USER_TESTS = '''
import os
import socket
import threading

import pytest

from app.celery_compat import current_app
from app.celery_compat.contrib.testing.manager import Manager
from app.celery_compat.signals import task_prerun

TIMEOUT = float(os.environ.get("USER_GET_TIMEOUT", "10"))


def test_a_task_defined_in_the_test_runs_on_the_test_worker(celery_app, celery_worker):
    @celery_app.task
    def add(x, y):
        return x + y

    assert add.delay(2, 3).get(timeout=TIMEOUT) == 5


def test_the_worker_runs_tasks_in_a_thread_of_the_test_process(celery_app, celery_worker):
    @celery_app.task
    def where():
        return [os.getpid(), threading.current_thread() is threading.main_thread()]

    assert where.delay().get(timeout=TIMEOUT) == [os.getpid(), False]


def test_the_test_sees_the_workers_signals(celery_app, celery_worker):
    seen = []

    @celery_app.task
    def noop():
        return None

    def on_prerun(sender=None, task_id=None, **kwargs):
        seen.append(task_id)

    task_prerun.connect(on_prerun)
    try:
        result = noop.delay()
        result.get(timeout=TIMEOUT)
    finally:
        task_prerun.disconnect(on_prerun)
    assert seen == [result.id]


@pytest.mark.celery(result_expires=123)
def test_the_celery_mark_overrides_the_configuration(celery_app):
    assert celery_app.conf.result_expires == 123
    assert celery_app.conf.broker_url == os.environ["USER_REDIS_URL"]


def test_the_session_worker_runs_the_included_tasks(celery_session_app, celery_session_worker):
    from user_tasks import mul

    manager = Manager(celery_session_app)
    assert manager.join(mul.delay(6, 7), timeout=TIMEOUT) == [42]
    assert celery_session_worker.hostname in [w.name for w in celery_session_worker.workers]


def test_the_worker_is_named_like_celerys_test_worker_and_never_twice_alike(celery_worker, celery_session_worker):
    assert celery_session_worker.hostname == f"gen{os.getpid()}@{socket.gethostname()}"
    assert celery_worker.hostname == f"gen{os.getpid()}-2@{socket.gethostname()}"
'''

USER_TRAP_TESTS = '''
import pytest

from app.celery_compat import current_app


@pytest.fixture(scope="session")
def use_celery_app_trap():
    return True


def test_code_that_falls_back_on_the_current_app_is_caught(celery_app):
    with pytest.raises(RuntimeError, match="current_app"):
        current_app().conf


def test_depends_on_current_app_makes_the_app_current(celery_app, depends_on_current_app):
    assert current_app() is celery_app
'''


def run_user_suite(tmp_path: Path, redis_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(USER_CONFTEST)
    (tmp_path / "user_tasks.py").write_text(USER_TASKS)
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    (tmp_path / "test_user_trap.py").write_text(USER_TRAP_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:valkey -p no:cacheprovider\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "app.celery_compat.contrib.pytest", "-q", "--timeout", "60", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "USER_REDIS_URL": redis_url,
             **env},
    )


def test_a_users_celery_tests_pass_with_the_plugin_and_leave_no_worker_behind(tmp_path, redis_url, redis_conn):
    run = run_user_suite(tmp_path, redis_url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "8 passed" in run.stdout, run.stdout
    assert Worker.all(connection=redis.Redis.from_url(redis_url)) == []


def test_without_the_worker_a_task_is_never_run(tmp_path, redis_url, redis_conn):
    # NO_WORKER is Celery's switch to skip starting the worker: the same test must then fail.
    run = run_user_suite(tmp_path, redis_url, "test_user.py", "-k", "defined_in_the_test", NO_WORKER="1",
                         USER_GET_TIMEOUT="1")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "TimeoutError" in run.stdout and "1 failed" in run.stdout, run.stdout
