"""Celery's command line on the adapter: ``python -m app.celery_compat -A proj <command> ...``.

Installed, the same is ``python -m celery_compat`` and the console script ``celery-compat``.
Global options come before the command as in Celery 5 (``-A``, ``-b``, ``--workdir``), plus
``--shim`` (or ``CELERY_COMPAT=1``), the import switch for unchanged Celery projects. Commands:
``worker``, ``beat``, ``inspect <method>``, ``control <method>``, ``status``, ``purge``,
``call <task>``, ``result <id>``, ``report``, ``shell``, and ``exec PROGRAM`` (not Celery's: runs
``flask``, ``gunicorn``... with the switch on, unchanged). Celery's other commands, unknown
commands and unknown flags are errors with a message and exit code 2, never guessed at.
"""

from __future__ import annotations

import argparse
import code
import importlib.metadata as metadata
import logging
import os
import platform
import runpy
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import redis

from .. import AsyncResult, Task, chain, chord, group, signature, switch
from ..app.base import Celery, current_app
from ..beat import start_beat_thread
from ..redaction import redact_url
from ..worker import cli as worker_cli
from . import calls, remote
from .base import EXIT_USAGE, PROG, UsageError, command_parser
from .loading import AppNotFound, find_app

#: Celery's commands that have no counterpart here, and why.
UNSUPPORTED = {
    "events": "there is no event stream to monitor: the dashboard (/rq) and the web app's task pages show tasks",
    "multi": "start workers with a process manager (systemd, supervisord, Docker), one `worker` each",
    "list": "`list bindings` is about AMQP exchanges, which do not exist on Redis",
    "graph": "bootstep graphs are Celery's internals",
    "migrate": "tasks are RQ jobs: move them with RQ's tools",
    "amqp": "there is no AMQP broker: Redis is the broker",
    "upgrade": "there is no settings upgrade to do",
    "logtool": "read the worker's log directly",
}


def global_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Celery's command line, on RQ and Redis.",
                                     usage=f"{PROG} [-A APP] [-b URL] [--shim] COMMAND [ARGS...]")
    parser.add_argument("-A", "--app", default=os.environ.get("CELERY_APP"),
                        help="the Celery app (proj, proj.celery, proj:app); default: CELERY_APP")
    parser.add_argument("-b", "--broker", help="Redis URL (default: the app's broker_url, else REDIS_URL)")
    parser.add_argument("--result-backend", help="accepted: the result backend is the broker's Redis")
    parser.add_argument("--workdir", help="change to this directory first")
    parser.add_argument("--shim", action="store_true", help="`import celery` gives this adapter (or CELERY_COMPAT=1)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print less")
    parser.add_argument("--loader", "--config", dest="unsupported_global", help=argparse.SUPPRESS)
    parser.add_argument("command", help=", ".join(COMMANDS))
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's arguments (COMMAND --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m <adapter>`` and ``celery-compat``; returns the exit code."""
    options = global_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if options.unsupported_global:
        return _usage("--loader/--config are not supported: configure the app in code or config_from_object")
    if options.command in UNSUPPORTED:
        return _usage(f"the `{options.command}` command is not supported here: {UNSUPPORTED[options.command]}")
    if options.command not in COMMANDS:
        return _usage(f"no such command {options.command!r}; commands: {', '.join(COMMANDS)}")
    if options.workdir:
        os.chdir(options.workdir)
    if options.shim or switch.enabled(os.environ):
        switch.install()
    if options.command == "worker":
        return worker_command(options)
    if options.command == "exec":
        return exec_command(options.arguments)
    try:
        app = _app(options)
        return COMMANDS[options.command](options, app)
    except (UsageError, AppNotFound) as exc:
        return _usage(str(exc))
    except redis.exceptions.ConnectionError as exc:
        print(f"{PROG} {options.command}: cannot reach Redis at {redact_url(app.broker_url)}: {exc}", file=sys.stderr)
        return 1


def _usage(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _app(options: argparse.Namespace) -> Celery:
    """The app ``-A`` names (``-A`` may also follow the command, Celery 4's habit), on the right Redis."""
    arguments = list(options.arguments)
    for flag in ("-A", "--app"):
        if flag in arguments[:-1]:
            at = arguments.index(flag)
            options.app = arguments[at + 1]
            del arguments[at:at + 2]
    options.arguments = arguments
    app = find_app(options.app) if options.app else current_app()
    url, _ = worker_cli.choose_redis_url(app, options.broker)
    app.conf.broker_url = url
    app.set_default()
    return app


def worker_command(options: argparse.Namespace) -> int:
    """``worker``: the adapter's worker with Celery's flags (``-A`` may come before or after ``worker``)."""
    argv = [*(["-A", options.app] if options.app else []), *(["-u", options.broker] if options.broker else []),
            *options.arguments]
    return worker_cli.main(argv, prog=f"{PROG} worker", queue_arguments=False)


def exec_command(argv: list[str]) -> int:
    """``exec PROGRAM ARGS...``: run another program in this process with the import switch on.

    For programs that start themselves and that the user does not want to edit: a console
    script (``exec flask -A task_app run``, ``exec gunicorn ...``), ``-m module`` or a ``.py`` file.
    """
    if not argv or argv == ["-m"]:
        return _usage("exec needs a program: a console script (flask, gunicorn, ...), -m MODULE or a .py file")
    if argv[0] == "-m":
        program, sys.argv = (lambda: runpy.run_module(argv[1], run_name="__main__", alter_sys=True)), argv[1:]
    elif argv[0].endswith(".py"):
        program, sys.argv = (lambda: runpy.run_path(argv[0], run_name="__main__")), list(argv)
    else:
        scripts = [entry for entry in metadata.entry_points(group="console_scripts") if entry.name == argv[0]]
        if not scripts:
            return _usage(f"exec: no console script {argv[0]!r} is installed in this environment")
        program, sys.argv = (lambda: scripts[0].load()()), list(argv)
    switch.install()
    code = program()
    return code if isinstance(code, int) else 0


def beat_command(options: argparse.Namespace, app: Celery) -> int:
    """``beat``: the periodic task scheduler alone (several may run: each tick is sent once)."""
    parser = command_parser("beat", "Send the beat_schedule's tasks when due.")
    parser.add_argument("-l", "--loglevel", default="INFO")
    parser.add_argument("-s", "--schedule", help="accepted: the schedule's state is kept in Redis")
    parser.add_argument("--max-interval", type=float, help="accepted: the scheduler wakes when the next task is due")
    parser.add_argument("-S", "--scheduler", help="only the adapter's own scheduler exists")
    beat = parser.parse_args(options.arguments)
    if beat.scheduler:
        raise UsageError(f"beat --scheduler {beat.scheduler} is not supported: the adapter's scheduler keeps its "
                         "state in Redis")
    logging.basicConfig(level=beat.loglevel.upper(), format="%(asctime)s %(message)s")
    app.finalize()
    stop = start_beat_thread(app)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    print(f"beat: sending {len(app.conf.beat_schedule or {})} periodic tasks to {redact_url(app.broker_url)}",
          flush=True)
    done.wait()
    stop.set()
    return 0


def report_command(options: argparse.Namespace, app: Celery) -> int:
    """``report``: versions and settings, for bug reports (secrets masked)."""
    command_parser("report", "Versions and settings, for bug reports.").parse_args(options.arguments)
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    print(f"software -> celery-compat:{version('celery-compat')} ({switch.PACKAGE}) rq:{version('rq')} "
          f"redis-py:{version('redis')} python:{platform.python_version()}")
    print(f"platform -> system:{platform.system()} arch:{platform.machine()} impl:{platform.python_implementation()}")
    print(f"broker -> {redact_url(app.broker_url)}")
    for key, value in sorted(app.conf.items()):
        if value not in (None, {}, [], ()) and key != "broker_url":
            shown = "********" if any(word in key.lower() for word in ("password", "secret", "key")) else value
            print(f"{key}: {redact_url(repr(shown))}")
    return 0


def shell_command(options: argparse.Namespace, app: Celery) -> int:
    """``shell``: Python with the app, its tasks (by short name) and Celery's names ready."""
    parser = command_parser("shell", "An interactive Python shell with the app loaded.")
    parser.add_argument("--ipython", action="store_true")
    parser.add_argument("--python", action="store_true", help="plain Python (the default)")
    parser.add_argument("--without-tasks", action="store_true", help="do not add the tasks to the namespace")
    shell = parser.parse_args(options.arguments)
    app.import_default_modules()
    app.finalize()
    namespace: dict[str, Any] = {"app": app, "celery": app, "Task": Task, "chain": chain, "chord": chord,
                                 "group": group, "signature": signature, "subtask": signature,
                                 "AsyncResult": AsyncResult}
    if not shell.without_tasks:
        namespace.update({name.rsplit(".", 1)[-1]: task for name, task in app.tasks.items()
                          if not name.startswith("celery.")})
    if shell.ipython:
        try:
            import IPython
        except ImportError as exc:
            raise UsageError("shell --ipython: IPython is not installed") from exc
        IPython.start_ipython(argv=[], user_ns=namespace)
        return 0
    code.interact(banner=f"app: {app.main}, tasks: {', '.join(sorted(namespace))}", local=namespace, exitmsg="")
    return 0


COMMANDS: dict[str, Callable[..., int]] = {
    "worker": lambda options, app: worker_command(options),
    "beat": beat_command,
    "inspect": remote.inspect_command,
    "control": remote.control_command,
    "status": remote.status_command,
    "purge": remote.purge_command,
    "call": calls.call_command,
    "result": calls.result_command,
    "report": report_command,
    "shell": shell_command,
    "exec": lambda options, app: exec_command(options.arguments),
}
