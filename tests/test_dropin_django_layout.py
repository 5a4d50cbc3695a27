"""Issue 16: a Django-style Celery project runs unchanged on the adapter (Django itself not needed).

The layout of Celery's "First steps with Django": ``proj/celery.py`` sets DJANGO_SETTINGS_MODULE,
calls ``config_from_object("django.conf:settings", namespace="CELERY")`` and ``autodiscover_tasks()``;
``proj/__init__.py`` exposes ``celery_app``; tasks live in ``<app>/tasks.py`` of INSTALLED_APPS.
With the switch on and no Django installed, ``django.conf.settings`` is the plain settings module.
"""

from __future__ import annotations

from tests.support import stop_workers
from tests.support_dropin import run, start_cli_worker, write_tree

DJANGO_PROJECT = {
    "proj/__init__.py": """
        from .celery import app as celery_app

        __all__ = ("celery_app",)
    """,
    "proj/celery.py": """
        import os

        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
        app = Celery("proj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()


        @app.task(bind=True, ignore_result=True)
        def debug_task(self):
            print(f"Request: {self.request!r}")
    """,
    "proj/settings.py": """
        import os

        INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "polls.apps.PollsConfig", "billing"]
        CELERY_BROKER_URL = os.environ["DROPIN_BROKER"]
        CELERY_RESULT_BACKEND = os.environ["DROPIN_BROKER"]
        CELERY_TASK_DEFAULT_QUEUE = "django"
        SECRET_KEY = "not used"
    """,
    "polls/__init__.py": "",
    "polls/apps.py": "",
    "polls/tasks.py": """
        from celery import shared_task


        @shared_task
        def add(x, y):
            return x + y
    """,
    "billing/__init__.py": "",
    "billing/tasks.py": """
        from celery import shared_task


        @shared_task
        def invoice(amount):
            return f"invoiced {amount}"
    """,
}

CLIENT = """
import sys

import app.celery_compat.shim  # the one-line switch, as a Django project's settings or wsgi.py would do
import proj

# autodiscover_tasks() imported the tasks modules of INSTALLED_APPS, before anything else did
print(sorted(name for name in sys.modules if name in ("polls.tasks", "billing.tasks")),
      proj.celery_app.tasks["polls.tasks.add"].name, proj.celery_app.tasks["billing.tasks.invoice"].name)
from billing.tasks import invoice
from polls.tasks import add

print(add.delay(2, 3).get(timeout=30), invoice.delay(7).get(timeout=30))
"""


def test_a_django_style_project_runs_unchanged_with_a_plain_settings_module(redis_url, redis_conn, tmp_path):
    # Given Celery's Django layout, with a plain settings module
    project = write_tree(tmp_path / "site", DJANGO_PROJECT)
    env = {"PYTHONPATH": str(project), "CELERY_COMPAT": "1", "DROPIN_BROKER": redis_url}
    # When its worker starts as Celery's Django guide says: celery -A proj worker -l INFO
    worker = start_cli_worker(["-A", "proj", "worker", "-l", "INFO", "-P", "solo"], env, tmp_path / "worker.log",
                              redis_conn, cwd=project)
    try:
        client = run(["-c", CLIENT], cwd=project, **env)
    finally:
        stop_workers([worker])
    # Then the settings' CELERY_ names configured it, autodiscovery found the apps' tasks, and they ran
    assert client.returncode == 0, client.stderr + (tmp_path / "worker.log").read_text()
    assert client.stdout.splitlines() == [
        "['billing.tasks', 'polls.tasks'] polls.tasks.add billing.tasks.invoice", "5 invoiced 7"]
    assert "queues=['django']" in (tmp_path / "worker.log").read_text()
