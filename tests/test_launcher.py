"""The launcher behind `make run`: Redis, worker and web in one log; Ctrl-C stops all of it, cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.embedded_redis import EmbeddedRedis, free_port, pid_alive
from tests.support import wait_until

#: The venv that `make venv` builds; the test falls back to the running interpreter outside of it.
VENV_PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"
STARTUP_SECONDS = 60
SHUTDOWN_SECONDS = 60


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class RunningLauncher:
    """One `python -m app.launcher` process, its combined log, and the pids it reports."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.port = int(env["PORT"])
        python = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [python, "-m", "app.launcher"], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def child_pids(self) -> dict[str, int]:
        return {label: int(pid) for label, pid in re.findall(r"started (\w+) \(pid (\d+)\)", self.log)}

    def redis_pid(self) -> int | None:
        match = re.search(r"Redis: embedded .* \(pid (\d+),", self.log)
        return int(match.group(1)) if match else None

    def workers(self) -> int:
        try:
            with urllib.request.urlopen(self.url("/healthz"), timeout=2) as response:
                return json.load(response)["workers"] or 0
        except (OSError, ValueError):
            return 0

    def submit(self, duration: int) -> str:
        request = urllib.request.Request(
            self.url("/api/tasks/long-running"),
            data=json.dumps({"duration": duration}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)["id"]

    def task_state(self, task_id: str) -> str:
        with urllib.request.urlopen(self.url(f"/api/tasks/{task_id}"), timeout=5) as response:
            return json.load(response)["state"]

    def wait_until_serving(self) -> None:
        """Wait for the page, the dashboard, and a worker registered in Redis (it is listening then)."""
        ready = wait_until(
            lambda: self.process.poll() is not None
            or (http_status(self.url("/")) == 200 and http_status(self.url("/rq/")) == 200 and self.workers() >= 1),
            timeout=STARTUP_SECONDS,
        )
        assert ready and self.process.poll() is None, self.log

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=SHUTDOWN_SECONDS)


@pytest.fixture
def start_launcher(tmp_path: Path) -> Iterator[Callable[..., RunningLauncher]]:
    """Start launchers on a free port with no REDIS_URL; whatever a failing test leaves running is killed."""
    started: list[RunningLauncher] = []
    port = free_port()

    def start(**env_overrides: str) -> RunningLauncher:
        env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "FLASK_ENV", "APP_ENV")}
        env.update(PORT=str(port), VAR_DIR=str(tmp_path / "var"), **env_overrides)
        launcher = RunningLauncher(env, tmp_path / f"launcher-{len(started)}.log")
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        if launcher.process.poll() is None:
            launcher.process.kill()
            launcher.process.wait()
        for pid in [*launcher.child_pids().values(), launcher.redis_pid()]:
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_ctrl_c_stops_redis_worker_and_web_and_a_second_run_starts_at_once(start_launcher):
    # Given `make run` with no REDIS_URL, serving the page and the dashboard
    first = start_launcher()
    first.wait_until_serving()
    # Then the first lines of its log say which Redis it uses, and the embedded one answers
    assert "Redis: embedded Valkey" in first.log.splitlines()[0]
    redis_pid = first.redis_pid()
    children = first.child_pids()
    assert redis_pid and set(children) == {"mail", "worker", "web"}
    assert http_status(first.url("/healthz")) == 200

    # And a task is in progress
    task_id = first.submit(duration=2)
    assert wait_until(lambda: first.task_state(task_id) == "PROGRESS", timeout=30), first.log

    # When Ctrl-C is pressed
    status = first.stop(signal.SIGINT)

    # Then the worker finishes its task (warm shutdown) and the launcher exits cleanly,
    # having stopped every process it started
    assert status == 0, first.log
    assert "warm shut down" in first.log
    assert f"[{task_id}] succeeded in " in first.log
    for label, pid in {**children, "redis": redis_pid}.items():
        assert not pid_alive(pid), f"{label} (pid {pid}) survived the launcher"
    assert not list(Path(first.log_path.parent / "var").glob("*.pid"))

    # And a second run right after starts on the same port without a clash, and stops on SIGTERM
    second = start_launcher()
    second.wait_until_serving()
    assert second.redis_pid() != redis_pid
    assert second.stop(signal.SIGTERM) == 0, second.log
    assert not pid_alive(second.redis_pid())


def test_a_given_redis_url_is_used_and_no_embedded_redis_is_started(start_launcher, redis_server, tmp_path):
    # Given REDIS_URL pointing at a running Redis
    launcher = start_launcher(REDIS_URL=redis_server.url)
    # When the launcher has started
    launcher.wait_until_serving()
    # Then it says it uses that server and starts none of its own
    assert f"Redis: using REDIS_URL={redis_server.url}" in launcher.log.splitlines()[0]
    assert launcher.redis_pid() is None
    assert http_status(launcher.url("/healthz")) == 200
    assert launcher.stop(signal.SIGINT) == 0
    # And the given Redis keeps running
    assert redis_server.pid is not None


def test_the_launcher_stops_everything_when_a_child_dies(start_launcher):
    # Given a running launcher
    launcher = start_launcher()
    launcher.wait_until_serving()
    redis_pid = launcher.redis_pid()
    # When the web app dies on its own
    os.kill(launcher.child_pids()["web"], signal.SIGKILL)
    # Then the launcher stops the rest and exits with an error
    assert launcher.process.wait(timeout=SHUTDOWN_SECONDS) == 1
    assert "web exited" in launcher.log
    assert not pid_alive(launcher.child_pids()["worker"]) and not pid_alive(redis_pid)


def test_without_smtp_host_an_email_is_caught_and_shown_on_the_mail_page(start_launcher):
    # Given `make run` with no SMTP_HOST: it starts a mail catcher and says where to see its mail
    launcher = start_launcher(SMTP_HOST="")
    launcher.wait_until_serving()
    assert "mail: SMTP_HOST unset, so email is caught" in launcher.log
    # When an email is sent through the API
    request = urllib.request.Request(
        launcher.url("/api/tasks/email"),
        data=json.dumps({"to": "ada@example.com", "subject": "Caught <b>here</b>", "body": "Hello & bye"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        task_id = json.load(response)["id"]
    # Then the worker delivers it to the catcher, and /mail shows it, escaped
    assert wait_until(lambda: launcher.task_state(task_id) == "SUCCESS", timeout=30), launcher.log
    with urllib.request.urlopen(launcher.url("/mail"), timeout=5) as response:
        page = response.read().decode()
    assert "Caught &lt;b&gt;here&lt;/b&gt;" in page and "Hello &amp; bye" in page
    assert f"&lt;{task_id}@localhost&gt;" in page
    # And Ctrl-C stops the catcher with the rest
    assert launcher.stop(signal.SIGINT) == 0, launcher.log
    assert not pid_alive(launcher.child_pids()["mail"])


def test_a_redis_left_behind_by_a_killed_run_is_stopped_by_pid_file(tmp_path):
    # Given an embedded Redis whose launcher was killed before it could stop it
    leftover = EmbeddedRedis(tmp_path)
    leftover.start()
    pid = leftover.pid
    # When the next run looks at the same directory
    stopped = EmbeddedRedis(tmp_path).stop_stale()
    # Then it stops that server by its pid file
    assert stopped == pid
    assert not pid_alive(pid)
