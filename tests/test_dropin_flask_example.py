"""Issue 16: Flask's own Celery example runs unchanged on the adapter, with the switch on.

The example (examples/celery in the Flask sdist: make_celery.py, task_app with celery_init_app, a
FlaskTask passed as task_cls, set_default(), config_from_object(dict), task_ignore_result,
shared_task(ignore_result=False)) is fetched at test time with ``pip download`` for the installed
Flask version, never copied into this repository. As its README says, with the adapter's entry
point: the worker from ``celery -A make_celery worker --loglevel INFO``, the web app from
``flask -A task_app run`` (through ``exec``, which turns the switch on for a program it starts).
The Redis comes in through the example's own ``from_prefixed_env()`` (``FLASK_CELERY__broker_url``).
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
import urllib.error

import pytest

from tests.support import ROOT, stop_workers, wait_for
from tests.support_dropin import answers_until, free_port, http_json, start_cli_worker


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


@pytest.fixture
def example_web(flask_example, redis_url, tmp_path):
    """``flask -A task_app run`` on a free port, started through the adapter's ``exec``; its base URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{flask_example / 'src'}",
           "FLASK_CELERY__broker_url": redis_url, "FLASK_CELERY__result_backend": redis_url}
    log = tmp_path / "web.log"
    web = subprocess.Popen([sys.executable, "-m", "app.celery_compat", "exec", "flask", "-A", "task_app", "run",
                            "--port", str(port)], cwd=flask_example, env=env, stdout=log.open("wb"),
                           stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return http_json(f"{url}/tasks/result/none") is not None
        except (urllib.error.URLError, ConnectionError):
            return web.poll() is not None

    wait_for(answers, timeout=60, describe=log.read_text)
    assert web.poll() is None, log.read_text()
    yield url
    stop_workers([web])


def test_flasks_celery_example_runs_unchanged(flask_example, example_web, redis_url, redis_conn, tmp_path):
    # Given the example's worker from Celery's documented command, on the adapter's entry point
    env = {"PYTHONPATH": str(flask_example / "src"), "CELERY_COMPAT": "1",
           "FLASK_CELERY__broker_url": redis_url, "FLASK_CELERY__result_backend": redis_url}
    log = tmp_path / "worker.log"
    worker = start_cli_worker(["-A", "make_celery", "worker", "--loglevel", "INFO"], env, log, redis_conn,
                              cwd=flask_example)
    try:
        # When its page posts add, process and block
        ids = {"add": http_json(f"{example_web}/tasks/add", {"a": 2, "b": 3})["result_id"],
               "process": http_json(f"{example_web}/tasks/process", {"total": 3})["result_id"],
               "block": http_json(f"{example_web}/tasks/block", {})["result_id"]}
        # And polls their results as its JavaScript does
        answers = {task: answers_until(f"{example_web}/tasks/result/{ids[task]}", lambda answer: answer["ready"], 60)
                   for task in ("add", "process")}
        # (block's result is never stored: the worker's log says when it ran)
        wait_for(lambda: f"Task task_app.tasks.block[{ids['block']}] succeeded" in log.read_text(), timeout=60,
                 describe=log.read_text)
        answers["block"] = answers_until(f"{example_web}/tasks/result/{ids['block']}", lambda answer: True, 1)
    finally:
        stop_workers([worker])
    # Then add ends with its sum
    assert answers["add"][-1] == {"ready": True, "successful": True, "value": 5}
    # And process reports its PROGRESS meta while it runs, then its result
    assert {"ready": False, "successful": None, "value": {"current": 1, "total": 3}} in answers["process"]
    assert answers["process"][-1] == {"ready": True, "successful": True, "value": {"current": 3, "total": 3}}
    # And block, whose result is ignored (task_ignore_result=True), is not ready even after it ran, as under Celery
    assert answers["block"] == [{"ready": False, "successful": None, "value": None}]
