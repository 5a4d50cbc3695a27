"""Issue 16: Flask's own Celery example runs unchanged on the adapter, with the switch on.

The example (examples/celery in the Flask sdist: make_celery.py, task_app with celery_init_app, a
FlaskTask passed as task_cls, set_default(), config_from_object(dict), task_ignore_result,
shared_task(ignore_result=False)) is fetched at test time with ``pip download`` for the installed
Flask version, never copied into this repository. Its worker starts from Celery's documented
command (``celery -A make_celery worker --loglevel INFO``) with the adapter's entry point; its web
app is driven through Flask's test client; the Redis comes in through the example's own
``from_prefixed_env()`` (``FLASK_CELERY__broker_url``).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import tarfile

import pytest

from tests.support import stop_workers, wait_for
from tests.support_dropin import PROGRAMS, run, start_cli_worker


@pytest.fixture(scope="module")
def flask_example(tmp_path_factory):
    """examples/celery from the sdist of the installed Flask, extracted to a temporary directory."""
    version = importlib.metadata.version("flask")
    downloads = tmp_path_factory.mktemp("flask-sdist")
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                              f"flask=={version}", "-d", str(downloads)], capture_output=True, text=True, timeout=300)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    (sdist,) = downloads.glob("flask-*.tar.gz")
    prefix = f"{sdist.name.removesuffix('.tar.gz')}/examples/celery/"
    target = downloads / "example"
    with tarfile.open(sdist) as archive:
        members = [member for member in archive.getmembers() if member.name.startswith(prefix)]
        for member in members:
            member.name = member.name.removeprefix(prefix)
        archive.extractall(target, members=members, filter="data")
    assert (target / "make_celery.py").exists() and (target / "src" / "task_app" / "tasks.py").exists()
    return target


def test_flasks_celery_example_runs_unchanged(flask_example, redis_url, redis_conn, tmp_path):
    # Given the example pointed at the test's Redis through its own from_prefixed_env()
    env = {"PYTHONPATH": str(flask_example / "src"), "CELERY_COMPAT": "1",
           "FLASK_CELERY__broker_url": redis_url, "FLASK_CELERY__result_backend": redis_url}
    # When its worker starts from Celery's documented command, on the adapter's entry point
    worker = start_cli_worker(["-A", "make_celery", "worker", "--loglevel", "INFO"], env,
                              tmp_path / "worker.log", redis_conn, cwd=flask_example)
    try:
        # And its web app takes add, process and block as its page sends them
        driven = run([str(PROGRAMS / "flask_example_client.py")], cwd=flask_example, timeout=120, **env)
        assert driven.returncode == 0, driven.stderr + (tmp_path / "worker.log").read_text()
        ids = json.loads(driven.stdout.splitlines()[0])["ids"]
        # (block's result is never stored: the worker's log says it ran)
        log = tmp_path / "worker.log"
        wait_for(lambda: f"Task task_app.tasks.block[{ids['block']}] succeeded" in log.read_text(), timeout=60,
                 describe=log.read_text)
    finally:
        stop_workers([worker])
    lines = [json.loads(line) for line in driven.stdout.splitlines()]
    answers = {task: [line["answer"] for line in lines[1:] if line["task"] == task] for task in ids}
    # Then add ends with its sum
    assert answers["add"][-1] == {"ready": True, "successful": True, "value": 5}
    # And process reports PROGRESS meta while it runs, then its result
    assert {"ready": False, "successful": None, "value": {"current": 1, "total": 3}} in answers["process"]
    assert answers["process"][-1] == {"ready": True, "successful": True, "value": {"current": 3, "total": 3}}
    # And block, whose result is ignored (task_ignore_result=True), never shows ready, as under Celery
    assert answers["block"] == [{"ready": False, "successful": None, "value": None}]
