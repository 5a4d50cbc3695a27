"""Issue 16: the opt-in import switch makes an unchanged Celery program import the adapter.

Each check runs in a fresh interpreter: the switch changes what ``import celery`` means for the
whole process, and this test process keeps the real celery for the parity tests.
"""

from __future__ import annotations

import json

import pytest

from app.celery_compat import Celery
from tests.support import spawn_worker, stop_workers
from tests.support_dropin import PROGRAMS, run, settle

#: Celery's import -> the adapter's module it resolves to under the switch.
RESOLVES_TO = {
    "celery": "app.celery_compat",
    "celery.result": "app.celery_compat.result",
    "celery.exceptions": "app.celery_compat.exceptions",
    "celery.signals": "app.celery_compat.signals",
    "celery.schedules": "app.celery_compat.schedules",
    "celery.states": "app.celery_compat.states",
    "celery.canvas": "app.celery_compat.canvas",
    "celery.app.task": "app.celery_compat.app.task",
    "celery.contrib.pytest": "app.celery_compat.contrib.pytest",
    "celery.utils.log": "app.celery_compat.switch.utils.log",
    "kombu": "app.celery_compat.switch.kombu",
}

PROBE = """
import importlib, json, sys
{switch}
print(json.dumps({{name: importlib.import_module(name).__name__ for name in sys.argv[1:]}}))
"""


def probe(*names: str, switch: str = "import app.celery_compat.shim", **env: str) -> dict[str, str]:
    completed = run(["-c", PROBE.format(switch=switch), *names], **env)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_with_the_switch_celery_and_kombu_names_resolve_to_the_adapter():
    assert probe(*RESOLVES_TO) == RESOLVES_TO


def test_without_the_switch_the_real_celery_stays_importable():
    assert probe("celery", "celery.result", "kombu", switch="") == {
        "celery": "celery", "celery.result": "celery.result", "kombu": "kombu"}


def test_the_names_a_celery_program_imports_are_the_adapters_own_objects():
    completed = run(["-c", """
import app.celery_compat.shim
import app.celery_compat as adapter
from celery import Celery, Task, shared_task, chain, group, chord, signature, states, current_app
from celery.result import AsyncResult
from celery.exceptions import Retry, SoftTimeLimitExceeded
from kombu import Queue, Exchange
assert (Celery, Task, shared_task, chain, AsyncResult) == (
    adapter.Celery, adapter.Task, adapter.shared_task, adapter.chain, adapter.AsyncResult)
assert Retry is adapter.exceptions.Retry
app = Celery("probe", set_as_current=False)
app.conf.task_queues = [Queue("high", Exchange("high"), routing_key="high"), Queue("low")]
print(sorted(app.amqp.queues))
"""])
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["['high',", "'low']"]


@pytest.mark.parametrize(("statement", "message"), [
    ("import celery.backends.database", "No module named 'celery.backends.database': the Celery import switch"),
    ("from kombu import Connection", "kombu.Connection is not provided by the Celery import switch"),
])
def test_what_the_adapter_does_not_provide_fails_to_import_naming_it(statement, message):
    completed = run(["-c", f"import app.celery_compat.shim\n{statement}"])
    assert completed.returncode == 1
    assert message in completed.stderr.splitlines()[-1]


def test_turning_the_switch_on_after_the_real_celery_was_imported_is_refused():
    completed = run(["-c", "import celery\nimport app.celery_compat.shim"])
    assert "RuntimeError: the real celery is already imported" in completed.stderr.splitlines()[-1]


def test_without_django_installed_django_conf_settings_is_the_plain_settings_module(tmp_path):
    (tmp_path / "plainsettings.py").write_text("CELERY_BROKER_URL = 'redis://settings/0'\nDEBUG = True\n")
    completed = run(["-c", """
import app.celery_compat.shim
from celery import Celery
app = Celery("django_style", set_as_current=False)
app.config_from_object("django.conf:settings", namespace="CELERY")
print(app.conf.broker_url)
"""], PYTHONPATH=str(tmp_path), DJANGO_SETTINGS_MODULE="plainsettings")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "redis://settings/0"


@pytest.mark.parametrize("switch", [{"CELERY_COMPAT": "1"}, {"args": "--shim"}], ids=["env", "flag"])
def test_the_worker_runs_an_unchanged_celery_program_with_the_switch(switch, redis_url, redis_conn, tmp_path):
    # Given a program importing celery and kombu, and a worker started with the switch
    env = {"DROPIN_BROKER": redis_url, "PYTHONPATH": f"{PROGRAMS}:.", **switch}
    extra = [env.pop("args")] if "args" in env else []
    worker = spawn_worker(["-A", "unchanged", "worker", "-Q", "high,low", "-P", "solo", *extra], env,
                          tmp_path / "worker.log", redis_conn)
    settle(tmp_path / "worker.log")
    try:
        # When its task is sent to the queue its kombu.Queue names
        client = Celery("client", broker=redis_url, set_as_current=False)
        # Then the worker runs it
        assert client.send_task("unchanged.mul", (6, 7), queue="high").get(timeout=30) == 42
    finally:
        stop_workers([worker])
