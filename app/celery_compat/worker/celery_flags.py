"""Celery's other ``celery worker`` flags, so that a Procfile or a unit file written for Celery runs.

Each flag either does what Celery's does (``-I``, ``-X``, ``--time-limit``, ``--soft-time-limit``,
``-f``, ``--pidfile``, ``-n`` with ``%h``), is accepted with no effect because the thing it tunes
does not exist here (gossip, mingle, prefetching: the help says why), or is refused with an error
naming it (``--autoscale``, ``--detach``, ...), never silently taken for something else.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import socket
from typing import Any

#: Accepted, no effect: flag -> why (shown by --help).
NO_EFFECT = {
    "--without-gossip": "workers do not gossip: they share Redis",
    "--without-mingle": "workers do not mingle at start: revokes live in Redis",
    "--without-heartbeat": "heartbeats are RQ's, in Redis",
}
#: Refused: flag -> why.
UNSUPPORTED = {
    "--autoscale": "the number of work processes is fixed (-c)",
    "--detach": "run the worker under a process manager (systemd, supervisord, Docker)",
    "--max-memory-per-child": "use --max-tasks-per-child",
    "--statedb": "revokes are kept in Redis, no state file is needed",
    "--scheduler": "the periodic scheduler is the adapter's own, kept in Redis",
    "--uid": "start the worker as the user it should run as",
    "--gid": "start the worker with the group it should run as",
}


class _Refuse(argparse.Action):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, nargs="?", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Any = None) -> None:
        parser.error(f"{option} is not supported by this worker: {UNSUPPORTED[self.dest_flag]}")


def add_celery_flags(parser: argparse.ArgumentParser) -> None:
    """Add Celery's worker flags that RQ's worker has no counterpart for."""
    group = parser.add_argument_group("Celery's other worker flags")
    group.add_argument("-I", "--include", help="comma-separated modules to import at start")
    group.add_argument("-X", "--exclude-queues", help="comma-separated queues not to consume")
    group.add_argument("--time-limit", type=float, help="hard time limit of every task, in seconds")
    group.add_argument("--soft-time-limit", type=float, help="soft time limit of every task, in seconds")
    group.add_argument("-f", "--logfile", help="write the log to this file")
    group.add_argument("--pidfile", help="write the worker's pid to this file (removed at exit)")
    group.add_argument("-E", "--task-events", action="store_true",
                       help="accepted: task states are always published in Redis")
    group.add_argument("-O", dest="optimization", choices=("default", "fair"),
                       help="accepted: a work process always takes one task at a time (as -O fair)")
    group.add_argument("--prefetch-multiplier", type=int, help="accepted: nothing is prefetched")
    group.add_argument("-s", "--schedule-filename", "--schedule",
                       help="accepted: beat keeps its schedule state in Redis, not a file")
    for flag, why in NO_EFFECT.items():
        group.add_argument(flag, action="store_true", help=f"accepted: {why}")
    for flag, why in UNSUPPORTED.items():
        action = group.add_argument(flag, action=_Refuse, help=f"refused: {why}")
        action.dest_flag = flag  # type: ignore[attr-defined]
    group.add_argument("-D", action=_Refuse, help="refused: as --detach").dest_flag = "--detach"  # type: ignore[attr-defined]


def expand_hostname(name: str | None) -> str | None:
    """Celery's ``-n`` placeholders: ``%h`` the host name, ``%n`` its first label, ``%d`` its domain."""
    if not name:
        return name
    host = socket.gethostname()
    short, _, domain = host.partition(".")
    return name.replace("%h", host).replace("%n", short).replace("%d", domain).replace("%%", "%")


def apply_celery_flags(app: Any, options: argparse.Namespace) -> None:
    """Do what the flags ask, before any work process starts."""
    if options.logfile:
        # At the descriptor level, so that work processes and RQ's scheduler write there too.
        fd = os.open(options.logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    if options.pidfile:
        with open(options.pidfile, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        pid, path = os.getpid(), options.pidfile
        atexit.register(lambda: os.getpid() == pid and _remove(path))
    if options.time_limit is not None:
        app.conf.task_time_limit = options.time_limit
    if options.soft_time_limit is not None:
        app.conf.task_soft_time_limit = options.soft_time_limit
    for module in filter(None, (options.include or "").split(",")):
        importlib.import_module(module.strip())


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
