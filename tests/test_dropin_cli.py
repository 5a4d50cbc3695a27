"""Issue 16: Celery's command line, ``python -m app.celery_compat -A proj <command>``, on an unchanged project.

The project (tests/programs/dropin/cliproj.py) is written against Celery; every command runs with
the switch on (``CELERY_COMPAT=1``), as a Celery user's would. Exit codes are Celery's: 0, 1 for a
task that failed, 2 for a command line that cannot be carried out, 69 when no worker answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from app.celery_compat import Celery
from app.celery_compat.bin.celery import main
from tests.support import ROOT, stop_workers, wait_for
from tests.support_dropin import PROGRAMS, run, start_cli_worker


@pytest.fixture
def celery_cli(redis_url, redis_conn):
    """Run ``python -m app.celery_compat -A cliproj ARGS`` to completion (``input``: what is typed)."""

    def call(*args: str, input: str | None = None, app: str = "cliproj") -> subprocess.CompletedProcess:
        return run(["-m", "app.celery_compat", "-A", app, *args], input=input, PYTHONPATH=str(PROGRAMS),
                   CELERY_COMPAT="1", DROPIN_BROKER=redis_url)

    return call


@pytest.fixture
def cli_worker(redis_url, redis_conn, tmp_path):
    """``python -m app.celery_compat -A cliproj worker -P solo`` on queue celery, stopped at teardown."""
    env = {"PYTHONPATH": str(PROGRAMS), "CELERY_COMPAT": "1", "DROPIN_BROKER": redis_url}
    worker = start_cli_worker(["-A", "cliproj", "worker", "-P", "solo", "-l", "INFO"], env,
                              tmp_path / "worker.log", redis_conn)
    yield worker
    stop_workers([worker])


def test_call_prints_the_id_and_result_prints_the_result(celery_cli, cli_worker):
    sent = celery_cli("call", "cliproj.add", "--args", "[2, 3]")
    assert sent.returncode == 0, sent.stderr
    task_id = sent.stdout.strip()
    shown = celery_cli("result", task_id)
    assert (shown.returncode, shown.stdout) == (0, "5\n")


def test_call_wait_shows_the_progress_bar_from_progress_meta_then_the_result(celery_cli, cli_worker):
    waited = celery_cli("call", "cliproj.progress", "--kwargs", '{"n": 3}', "--wait")
    assert waited.returncode == 0, waited.stderr
    task_id, result = waited.stdout.splitlines()
    assert len(task_id) == 36 and result == "{'current': 3, 'total': 3}"
    bars = [line for line in waited.stderr.splitlines() if line.startswith("PROGRESS [")]
    assert bars and all(line.endswith("/3") for line in bars), waited.stderr


def test_a_failed_task_exits_1_with_its_error_and_result_traceback_shows_where(celery_cli, cli_worker):
    waited = celery_cli("call", "cliproj.boom", "--wait")
    assert (waited.returncode, waited.stderr.splitlines()[-1]) == (1, "FAILURE: ValueError: boom")
    task_id = waited.stdout.strip()
    assert celery_cli("result", task_id).returncode == 1
    traceback = celery_cli("result", task_id, "--traceback")
    assert 'raise ValueError("boom")' in traceback.stdout and traceback.stdout.strip().endswith("ValueError: boom")


def test_result_of_an_unfinished_task_gives_up_after_its_timeout(celery_cli):
    shown = celery_cli("result", "no-such-task", "--timeout", "0.3")
    assert (shown.returncode, shown.stderr) == (1, "Error: task no-such-task is still PENDING after 0.3 s\n")


def test_status_and_inspect_ping_list_the_workers_as_celery_does(celery_cli, cli_worker):
    status = celery_cli("status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("->  ") and status.stdout.endswith("\n1 node online.\n")
    ping = celery_cli("inspect", "ping")
    assert ping.returncode == 0 and '"ok": "pong"' in ping.stdout


def test_status_without_workers_exits_69_as_celery_does(celery_cli):
    status = celery_cli("status")
    assert (status.returncode, status.stderr) == (69, "Error: No nodes replied within time constraint\n")


def test_control_revoke_revokes_a_waiting_task(celery_cli, redis_url):
    task_id = celery_cli("call", "cliproj.add", "--args", "[1, 1]", "--countdown", "60").stdout.strip()
    revoked = celery_cli("control", "revoke", task_id)
    assert (revoked.returncode, revoked.stdout) == (0, "revoke: done\n"), revoked.stderr
    assert Celery("client", broker=redis_url, set_as_current=False).AsyncResult(task_id).state == "REVOKED"


def test_purge_asks_first_and_deletes_only_after_yes_or_with_f(celery_cli, redis_url):
    # Given two tasks waiting in a queue no worker consumes
    for _ in range(2):
        celery_cli("call", "cliproj.add", "--args", "[1, 1]", "--queue", "parked")
    queue = Celery("client", broker=redis_url, set_as_current=False).queue("parked")
    # When the purge is not confirmed, nothing is deleted
    refused = celery_cli("purge", "-Q", "parked", input="no\n")
    assert refused.returncode == 1 and "There is no undo for this operation!" in refused.stdout
    assert queue.count == 2
    # When it is, or -f is given, they are deleted
    confirmed = celery_cli("purge", "-Q", "parked", input="yes\n")
    assert confirmed.stdout.endswith("Purged 2 messages from 1 known task queue.\n")
    assert queue.count == 0
    assert celery_cli("purge", "-f", "-Q", "parked").stdout == "Purged 0 messages from 1 known task queue.\n"


def test_beat_sends_the_schedules_tasks(redis_url, redis_conn, tmp_path):
    env = {"PYTHONPATH": f"{ROOT}:{PROGRAMS}", "CELERY_COMPAT": "1", "DROPIN_BROKER": redis_url}
    beat = subprocess.Popen([sys.executable, "-m", "app.celery_compat", "-A", "cliproj", "beat"], cwd=ROOT,
                            env={**os.environ, **env}, stdout=(tmp_path / "beat.log").open("wb"),
                            stderr=subprocess.STDOUT)
    try:
        queue = Celery("client", broker=redis_url, set_as_current=False).queue("celery")
        wait_for(lambda: queue.count >= 2 or beat.poll() is not None, timeout=30,
                 describe=lambda: (tmp_path / "beat.log").read_text())
        assert beat.poll() is None, (tmp_path / "beat.log").read_text()
    finally:
        beat.send_signal(signal.SIGTERM)
        assert beat.wait(timeout=20) == 0


def test_shell_has_the_app_and_its_tasks_by_name(celery_cli):
    shell = celery_cli("shell", input="print(app.main, add.name, sorted(app.tasks)[-1])\n")
    assert shell.returncode == 0, shell.stderr
    assert "cliproj cliproj.add cliproj.progress" in shell.stdout + shell.stderr


def test_report_shows_versions_and_masks_the_password_in_the_broker_url(redis_url):
    url = redis_url.replace("redis://", "redis://:s3cret@")
    report = run(["-m", "app.celery_compat", "-A", "cliproj", "report"], PYTHONPATH=str(PROGRAMS),
                 CELERY_COMPAT="1", DROPIN_BROKER=url)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith("software -> celery-compat:") and "s3cret" not in report.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["frobnicate"], "no such command 'frobnicate'; commands: worker, beat, inspect"),
    (["events"], "the `events` command is not supported here"),
    (["multi", "start", "w1"], "the `multi` command is not supported here"),
    (["inspect", "frobnicate"], "inspect method 'frobnicate' is not provided by this adapter (provided: "),
    (["control", "frobnicate"], "control method 'frobnicate' is not provided by this adapter (provided: "),
    (["call", "tests.compat_tasks.add", "--args", "2, 3"], "--args must be JSON"),
    (["call", "tests.compat_tasks.add", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["worker", "default"], "unrecognized arguments: default"),
    (["worker", "--autoscale", "4,2"], "--autoscale is not supported by this worker"),
    (["exec"], "exec needs a program: a console script"),
    (["exec", "no-such-script"], "exec: no console script 'no-such-script' is installed"),
])
def test_unknown_commands_methods_and_flags_are_errors_that_name_them(celery_app, args, message, capsys):
    # In this process (none of these reaches a worker or Redis), on the adapter's own test app
    try:
        code = main(["-A", "tests.compat_tasks", *args])
    except SystemExit as exited:  # argparse's way out
        code = exited.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_without_the_switch_an_unchanged_project_is_refused_with_the_way_to_turn_it_on(redis_url):
    completed = run(["-m", "app.celery_compat", "-A", "cliproj", "status"], PYTHONPATH=str(PROGRAMS),
                    DROPIN_BROKER=redis_url)
    assert completed.returncode == 2
    assert "real celery.Celery, not the adapter's: run with the switch (CELERY_COMPAT=1 or --shim)" in completed.stderr


def test_a_command_that_cannot_reach_redis_says_so_in_one_line(celery_cli):
    completed = celery_cli("-b", "redis://127.0.0.1:1/0", "status", app="cliproj")
    assert completed.returncode == 1
    assert completed.stderr.startswith("python -m app.celery_compat status: cannot reach Redis at redis://127.0.0.1:1/0")
    assert len(completed.stderr.splitlines()) == 1
