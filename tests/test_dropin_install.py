"""Issue 16: the adapter installs with pip as ``celery_compat`` and never clashes with a project's own names.

The repository keeps its layout (``app/``, ``worker.py``); pyproject.toml installs ``app/celery_compat``
as the top-level package ``celery_compat`` with the console script ``celery-compat``. A project
with its own ``app`` package, ``tasks`` and ``worker`` modules runs its Celery code unchanged
(the switch on) against that installation alone: the repository is not on its path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support import stop_workers, wait_for
from tests.support_dropin import PROGRAMS, pip_install_adapter, write_tree

USER_PROJECT = {
    "app/__init__.py": """
        # The project's own `app` package, as in most Flask projects.
        import os
        from celery import Celery

        celery_app = Celery("userproj", broker=os.environ["DROPIN_BROKER"], include=["tasks"])
    """,
    "tasks.py": """
        from celery import shared_task

        @shared_task
        def add(x, y):
            return x + y
    """,
    "worker.py": 'ROLE = "the project\'s own worker module"\n',
}


@pytest.fixture(scope="module")
def installed_adapter(tmp_path_factory):
    """The adapter pip-installed into a directory of its own: (that directory, its bin/)."""
    site = tmp_path_factory.mktemp("installed") / "site"
    return site, pip_install_adapter(site)


def test_a_project_with_its_own_app_tasks_and_worker_runs_on_the_installed_adapter(
        installed_adapter, redis_url, redis_conn, tmp_path):
    # Given the adapter installed as celery_compat, and a project with its own app, tasks and worker
    site, scripts = installed_adapter
    project = write_tree(tmp_path / "project", USER_PROJECT)
    shutil.copy(PROGRAMS / "installed_client.py", project)
    env = {**os.environ, "PYTHONPATH": str(site), "DROPIN_BROKER": redis_url}
    # When its worker starts from Celery's command, with the console script and the switch
    worker = subprocess.Popen([str(scripts / "celery-compat"), "-A", "app", "worker", "-P", "solo"], cwd=project,
                              env={**env, "CELERY_COMPAT": "1"}, stdout=(tmp_path / "worker.log").open("wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: b"Listening on celery" in (tmp_path / "worker.log").read_bytes() or worker.poll() is not None,
                 timeout=60)
        # And its program sends a task after the one-line switch
        client = subprocess.run([sys.executable, "installed_client.py"], cwd=project, env=env,
                                capture_output=True, text=True, timeout=90)
    finally:
        stop_workers([worker])
    # Then its own modules are its own, and the installed worker ran the task
    assert client.returncode == 0, client.stderr + (tmp_path / "worker.log").read_text()
    assert client.stdout.splitlines() == [str(project / "app" / "__init__.py"), "the project's own worker module", "5"]


def test_the_installed_package_is_the_adapter_under_its_own_name(installed_adapter):
    site, _ = installed_adapter
    completed = subprocess.run(
        [sys.executable, "-c", "import celery_compat, celery_compat.protocol as p; print(p.EXECUTE_TASK)"],
        cwd=site.parent, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=60)
    assert completed.stdout.strip() == "celery_compat.execution.execute_task", completed.stderr
    assert not (site / "app").exists()  # only the adapter: never an `app` package in the user's environment
