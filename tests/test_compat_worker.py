"""Workers: `python worker.py` with Celery's flags, and the stock `rq worker` CLI, run the same tasks."""

from __future__ import annotations

import os
import subprocess
import sys

from rq import Worker

from app.celery_compat.worker import build_parser, load_app, queue_names
from tests import compat_tasks
from tests.support import ROOT, wait_for


def test_concurrency_two_starts_two_workers_that_share_the_queue(celery_app, worker_process):
    # Given `python worker.py -c 2`
    worker_process("-c", "2", "-P", "solo", workers=2)
    assert Worker.count(connection=celery_app.connection) == 2
    # When two slow tasks are queued
    results = [compat_tasks.tracked.delay(1.0) for _ in range(2)]
    # Then both run at the same time, on two different workers
    pids = set()

    def both_started() -> bool:
        for result in results:
            if result.state == "STARTED":
                pids.add(result.info["pid"])
        return len(pids) == 2

    wait_for(both_started, timeout=10, interval=0.02)
    assert [result.get(timeout=10) for result in results] == ["tracked", "tracked"]


def test_minus_q_chooses_the_queues(celery_app, worker_process):
    worker_process("-Q", "math,other", "-P", "solo")
    assert compat_tasks.add.apply_async((2, 2), queue="other").get(timeout=10) == 4


def test_the_stock_rq_worker_cli_runs_celery_style_tasks(celery_app, redis_url):
    # Given tasks queued by the adapter
    ok, failed = compat_tasks.add.delay(3, 4), compat_tasks.fail.delay("from rq")
    # When the stock `rq worker` drains the queue with the JSON serializer
    rq = os.path.join(os.path.dirname(sys.executable), "rq")
    completed = subprocess.run(
        [rq, "worker", "-u", redis_url, "--serializer", "json", "--burst", "celery"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    # Then Celery's states and values are there
    assert ok.get(timeout=5) == 7
    assert failed.state == "FAILURE" and str(failed.result) == "from rq"


def test_minus_a_finds_the_app_in_a_module():
    assert load_app("tests.compat_tasks") is compat_tasks.app
    assert load_app("tests.compat_tasks:app") is compat_tasks.app


def test_the_default_queue_is_the_apps_default_queue():
    options = build_parser().parse_args([])
    assert queue_names(options, compat_tasks.app) == ["celery"]
    assert queue_names(build_parser().parse_args(["-Q", "a,b", "c"]), compat_tasks.app) == ["a", "b", "c"]


def test_the_worker_logs_one_line_per_task_event_with_id_name_and_duration(celery_app, worker_process, tmp_path):
    worker_process()
    ok, bad = compat_tasks.add.delay(1, 2), compat_tasks.fail.delay("logged")
    expected = (f"Task tests.compat_tasks.add[{ok.id}] received", f"Task tests.compat_tasks.add[{ok.id}] started",
                f"Task tests.compat_tasks.add[{ok.id}] succeeded in ",
                f"Task tests.compat_tasks.fail[{bad.id}] failed in ")

    def all_logged() -> bool:
        log = (tmp_path / "worker-0.log").read_text()
        return all(line in log for line in expected)

    wait_for(all_logged, timeout=15)
