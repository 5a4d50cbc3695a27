"""Issue 16: the worker takes Celery's command habits and uses the Redis the client uses.

``worker.py -A proj worker --loglevel INFO`` is Celery's verb habit (never a queue named
"worker"), ``-A`` accepts Celery's forms, a worker that cannot load ``-A`` exits with one line,
and the app's ``broker_url`` wins over ``REDIS_URL``, with a warning when they differ.
"""

from __future__ import annotations

import sys

import pytest

from app.celery_compat import Celery
from app.celery_compat.bin.loading import AppNotFound, find_app
from app.celery_compat.worker.celery_flags import apply_celery_flags
from app.celery_compat.worker.cli import EXIT_USAGE, build_parser, choose_redis_url, parse_worker_args
from tests.support import spawn_worker, stop_workers
from tests.support_dropin import PROGRAMS, run, settle, write_tree

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


def test_the_worker_uses_the_apps_broker_url_and_says_that_redis_url_differs(redis_url, redis_conn, tmp_path):
    # Given an app whose broker_url is the live Redis, and REDIS_URL pointing at a closed port
    env = {"REDIS_URL": CLOSED_PORT_URL, "DROPIN_BROKER": redis_url, "PYTHONPATH": f"{PROGRAMS}:."}
    log = tmp_path / "worker.log"
    # When its worker starts with Celery's verb habit and no -u
    worker = spawn_worker(["-A", "brokered", "worker", "--loglevel", "INFO", "-P", "solo"], env, log, redis_conn)
    try:
        # Then it takes the tasks the app's .delay() sends to broker_url
        client = Celery("brokered", broker=redis_url, set_as_current=False)
        assert client.send_task("brokered.add", (2, 3)).get(timeout=30) == 5
        # And it said at start which URL it ignored
        assert "REDIS_URL=redis://127.0.0.1:1/0 differs from the app's broker_url" in log.read_text()
        assert "queues=['celery']" in log.read_text()  # "worker" is the verb, not a queue
    finally:
        stop_workers([worker])


@pytest.mark.parametrize(("explicit", "configured", "environ", "expected", "warns"), [
    (None, "redis://broker/0", {"REDIS_URL": "redis://env/0"}, "redis://broker/0", "REDIS_URL"),
    (None, "redis://broker/0", {"REDIS_URL": "redis://broker/0"}, "redis://broker/0", None),
    (None, None, {"REDIS_URL": "redis://env/0"}, "redis://env/0", None),
    (None, None, {}, "redis://localhost:6379/0", None),
    ("redis://flag/0", "redis://broker/0", {"REDIS_URL": "redis://env/0"}, "redis://flag/0", "-u"),
    ("redis://flag/0", None, {"REDIS_URL": "redis://env/0"}, "redis://flag/0", None),
])
def test_the_worker_redis_is_u_then_broker_url_then_redis_url(explicit, configured, environ, expected, warns):
    app = Celery("proj", broker=configured, set_as_current=False)
    url, warnings = choose_redis_url(app, explicit, environ)
    assert url == expected
    assert [warning.split(" ")[0].split("=")[0] for warning in warnings] == ([warns] if warns else [])


@pytest.mark.parametrize(("argv", "queues", "level"), [
    (["-A", "proj", "worker", "--loglevel", "INFO"], [], "INFO"),
    (["worker", "-A", "proj", "-l", "DEBUG", "-Q", "a,b"], [], "DEBUG"),
    (["-A", "proj", "default", "high"], ["default", "high"], "INFO"),  # RQ's habit: positional queues
    (["-A", "proj", "worker", "default"], ["default"], "INFO"),
])
def test_worker_py_takes_celerys_verb_and_rqs_queue_names(argv, queues, level):
    options = parse_worker_args(argv, build_parser())
    assert (options.queue_names, options.loglevel) == (queues, level)


@pytest.mark.parametrize(("argv", "message"), [
    (["-A", "proj", "beat"], "'beat' is a Celery command, not a queue name"),
    (["-A", "proj", "worker", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["-A", "proj", "--autoscale", "4,2"], "--autoscale is not supported by this worker"),
    (["-A", "proj", "-D"], "-D is not supported by this worker"),
])
def test_unknown_verbs_and_flags_are_errors_never_queue_names(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_worker_args(argv, build_parser())
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_celerys_worker_command_takes_no_queue_names(capsys):
    with pytest.raises(SystemExit):
        parse_worker_args(["-A", "proj", "default"], build_parser("celery worker", queue_arguments=False))
    assert "unrecognized arguments: default" in capsys.readouterr().err


@pytest.mark.parametrize(("spec", "reason"), [
    ("nowhere", "-A nowhere: no module named 'nowhere'"),
    ("raises_at_import", "-A raises_at_import: importing 'raises_at_import' raised KeyError: 'missing' ("),
    ("no_app", "-A no_app: module 'no_app' holds no Celery app"),
    ("no_app:app", "-A no_app:app: module 'no_app' has no attribute 'app'"),
    ("real_celery_app", "-A real_celery_app: the app is a real celery.Celery, not the adapter's: run with the switch"),
])
def test_a_worker_that_cannot_load_its_app_exits_with_one_line_naming_module_and_reason(spec, reason):
    completed = run(["worker.py", "-A", spec, "worker"], PYTHONPATH=str(PROGRAMS))
    assert completed.returncode == EXIT_USAGE
    assert completed.stderr.splitlines() == [completed.stderr.strip()]  # one line, no traceback
    assert completed.stderr.startswith(f"worker: {reason}"), completed.stderr


CELERY_FORMS = {
    "one/proj/__init__.py": "",
    "one/proj/celery.py": "from app.celery_compat import Celery\napp = Celery('one')\n",
    "two/proj2/__init__.py": "from .celery import app as celery_app\n",
    "two/proj2/celery.py": "from app.celery_compat import Celery\napp = Celery('two')\n",
    "three/make_celery.py": "from app.celery_compat import Celery\nflask_app = 1\ncelery_app = Celery('three')\n",
    "four/tasks4.py": "from app.celery_compat import Celery\ncelery = Celery('four')\napp = 'a Flask app, say'\n",
}


@pytest.fixture
def celery_forms(tmp_path, monkeypatch):
    """Four little projects, laid out as Celery's documentation and Flask's example lay them out."""
    write_tree(tmp_path, CELERY_FORMS)
    for directory in ("one", "two", "three", "four"):
        monkeypatch.syspath_prepend(str(tmp_path / directory))
    yield
    for name in [name for name in sys.modules if name.split(".")[0] in ("proj", "proj2", "make_celery", "tasks4")]:
        del sys.modules[name]


@pytest.mark.parametrize(("spec", "main"), [
    ("proj", "one"), ("proj.celery", "one"), ("proj.celery:app", "one"), ("proj.celery.app", "one"),
    ("proj2", "two"), ("proj2:celery_app", "two"),
    ("make_celery", "three"), ("make_celery:celery_app", "three"),
    ("tasks4", "four"),
])
def test_minus_a_accepts_celerys_forms(celery_forms, spec, main):
    assert find_app(spec).main == main


def test_minus_a_naming_something_else_says_what_it_is(celery_forms):
    with pytest.raises(AppNotFound, match="str object is not a Celery app"):
        find_app("tasks4:app")


def test_celerys_time_limit_and_include_flags_configure_the_app():
    app = Celery("proj", set_as_current=False)
    options = parse_worker_args(["-A", "proj", "worker", "--time-limit", "30", "--soft-time-limit", "20",
                                 "-I", "tests.programs_dropin_probe_absent,json", "--without-gossip", "-O", "fair"],
                                build_parser())
    with pytest.raises(ModuleNotFoundError, match="tests.programs_dropin_probe_absent"):
        apply_celery_flags(app, options)  # -I imports what it names, as Celery's does
    assert (app.conf.task_time_limit, app.conf.task_soft_time_limit) == (30.0, 20.0)


def test_logfile_takes_the_whole_log(tmp_path):
    log = tmp_path / "worker.log"
    completed = run(["worker.py", "-A", "brokered", "worker", "--burst", "-f", str(log)],
                    PYTHONPATH=str(PROGRAMS), DROPIN_BROKER=CLOSED_PORT_URL)
    assert completed.returncode == 3  # no Redis, --burst: one attempt
    assert completed.stdout == completed.stderr == ""
    assert "cannot reach Redis at redis://127.0.0.1:1" in log.read_text()


def test_pidfile_holds_the_workers_pid_while_it_runs(redis_url, redis_conn, tmp_path):
    pidfile = tmp_path / "worker.pid"
    env = {"DROPIN_BROKER": redis_url, "PYTHONPATH": f"{PROGRAMS}:."}
    worker = spawn_worker(["-A", "brokered", "worker", "-P", "solo", "--pidfile", str(pidfile)], env,
                          tmp_path / "worker.log", redis_conn)
    try:
        assert pidfile.read_text() == f"{worker.pid}\n"
        settle(tmp_path / "worker.log")
    finally:
        stop_workers([worker])


def test_pidfile_is_removed_when_the_worker_exits(redis_url, redis_conn, tmp_path):
    pidfile = tmp_path / "worker.pid"
    completed = run(["worker.py", "-A", "brokered", "worker", "-P", "solo", "--burst", "--pidfile", str(pidfile)],
                    PYTHONPATH=str(PROGRAMS), DROPIN_BROKER=redis_url)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Listening on celery" in completed.stdout and not pidfile.exists()
