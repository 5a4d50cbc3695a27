"""A Redis password never shows in a log line or a page (issue 12, item 7).

The tests run against a Redis started with ``--requirepass``, so the password is in every URL
the worker and the launcher are given, as it is in production.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.celery_compat.redaction import redact_url
from app.embedded_redis import free_port
from tests import compat_tasks
from tests.conftest import find_server_binary, no_redis
from tests.support import spawn_worker, stop_workers, wait_for
from tests.test_launcher import RunningLauncher

SECRET = "s3cret-Passw0rd"


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis of this test alone that wants a password; yields its URL, password included."""
    binary = find_server_binary()
    if binary is None:
        no_redis("a password-protected Redis needs a server binary")
    port, pidfile = free_port(), tmp_path / "redis.pid"
    subprocess.run([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--requirepass", SECRET, "--dir", str(tmp_path), "--daemonize", "yes",
                    "--pidfile", str(pidfile)], check=True, timeout=10)
    url = f"redis://:{SECRET}@127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=2)
    wait_for(lambda: _answers(client), timeout=10)
    yield url
    client.shutdown(nosave=True) if _answers(client) else None


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.mark.parametrize("pool", ["prefork", "solo", "fork"])
def test_the_worker_never_logs_the_redis_password(pool, password_redis, tmp_path):
    # Given a worker started with the password in its Redis URL, running tasks that succeed and fail
    connection = redis.Redis.from_url(password_redis)
    log = tmp_path / "worker.log"
    worker = spawn_worker(["-A", "tests.compat_tasks", "-u", password_redis, "-P", pool, "-c", "1", "-l", "DEBUG"],
                          {"REDIS_URL": password_redis, "PATH": "/usr/bin:/bin"}, log, connection)
    saved = compat_tasks.app.conf.broker_url
    compat_tasks.app.conf.broker_url = password_redis
    try:
        assert compat_tasks.add.delay(2, 3).get(timeout=20) == 5
        failed = compat_tasks.fail.delay("expected")
        wait_for(lambda: failed.state == "FAILURE", timeout=20)
    finally:
        compat_tasks.app.conf.broker_url = saved
        stop_workers([worker])
    # Then its log says which Redis it uses, with the password masked, and never the password itself
    text = log.read_text()
    assert f"redis://:***@127.0.0.1:{password_redis.rsplit(':', 1)[1]}" in text
    assert SECRET not in text


def test_the_launcher_and_healthz_never_show_the_redis_password(password_redis, tmp_path):
    # Given `make run` with REDIS_URL holding a password
    env = {key: value for key, value in os.environ.items() if key not in ("FLASK_ENV", "APP_ENV")}
    env.update(PORT=str(free_port()), VAR_DIR=str(tmp_path / "var"), REDIS_URL=password_redis)
    launcher = RunningLauncher(env, tmp_path / "launcher.log")
    try:
        launcher.wait_until_serving()
        with urllib.request.urlopen(launcher.url("/healthz"), timeout=5) as response:
            health = response.read().decode()
        assert json.loads(health)["status"] in ("ok", "degraded")
        launcher.stop(signal.SIGINT)
    finally:
        if launcher.process.poll() is None:
            launcher.process.kill()
            launcher.process.wait()
    # Then neither its combined log (worker and web included) nor /healthz carry the password
    assert "REDIS_URL=redis://:***@127.0.0.1" in launcher.log
    assert SECRET not in launcher.log and SECRET not in health


def test_every_url_form_is_masked():
    assert redact_url(f"redis://:{SECRET}@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url(f"rediss://user:{SECRET}@h/0") == "rediss://user:***@h/0"
    assert redact_url(f"sentinel://:{SECRET}@a:26379;sentinel://:{SECRET}@b:26379") == (
        "sentinel://:***@a:26379;sentinel://:***@b:26379")
    assert redact_url(f"redis://h/0?password={SECRET}&db=1") == "redis://h/0?password=***&db=1"
    assert redact_url(f"unix:///run/redis.sock?password={SECRET}") == "unix:///run/redis.sock?password=***"
    assert redact_url(f"redis://u:{SECRET}@x/y@h/0") == "redis://u:***@h/0"  # an unescaped "@" or "/" in it
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
