"""The worker command: ``python worker.py -A proj -Q queues -c N -P pool -B --loglevel info``.

It accepts Celery's worker flags and runs RQ workers underneath. ``-P`` says how tasks run:

* ``prefork`` (the default): ``-c`` long-lived work processes (default: one per core) that run
  tasks in-process, under a supervisor that replaces a process that dies, kills one whose
  task overruns its hard time limit or is revoked with ``terminate=True``, and re-queues or
  fails (``WorkerLostError``) the task of a process that died (see ``pool.py``).
* ``fork``: RQ's classic worker: a fresh forked work horse for every task (slower; each task
  starts from a clean copy of the worker).
* ``solo`` (also ``threads``, ``gevent``, ``eventlet``): tasks run in the worker process itself;
  ``revoke(terminate=True)`` interrupts the task with ``Terminated``.

Every worker runs RQ's scheduler (it takes a lock, so only one schedules at a time), which
``countdown``, ``eta`` and retries need. ``-B`` also runs the periodic task scheduler
(``beat_schedule``) in a thread of the main process; several ``-B`` workers send each tick once
between them.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing
import os
import signal
import socket
import sys
from typing import Any

from rq.logutils import setup_loghandlers
from rq.queue import Queue
from rq.serializers import JSONSerializer

from .. import execution as execution  # noqa: F401 - the entry point, imported before work horses fork
from .. import switch
from ..app.base import Celery, current_app
from ..beat import start_beat_thread
from ..bin.loading import AppNotFound, find_app
from ..redaction import redact_handlers, redact_url
from .celery_flags import add_celery_flags, apply_celery_flags, expand_hostname
from .classes import HEARTBEAT_INTERVAL, ForkingWorker, InProcessWorker, raise_terminated
from .guard import TaskJob
from .lean import LeanWorker
from .pool import Supervisor, child_main
from .reach import (
    EXIT_NO_REDIS,
    FIRST_WAIT,
    MAX_WAIT,
    OUTAGE,
    GaveUp,
    UnusableURL,
    check_url,
    ping,
    reason,
    sleep_unless,
    wait_for_redis,
)

POOLS = {"prefork": LeanWorker, "fork": ForkingWorker, "solo": LeanWorker, "threads": LeanWorker,
         "gevent": LeanWorker, "eventlet": LeanWorker}
#: Short enough that a dead worker's tasks are recovered within a minute (see workers.py).
WORKER_TTL = 30
MAINTENANCE_INTERVAL = 10

logger = logging.getLogger("app.celery_compat.worker")


def build_parser(prog: str = "worker.py", queue_arguments: bool = True) -> argparse.ArgumentParser:
    """The worker's flags; ``queue_arguments``: also RQ's positional queue names (``worker.py``, not Celery's)."""
    usage = "%(prog)s [-A APP] [-Q QUEUES] [-c N] [-P POOL] [-B] [-l LEVEL] [-u URL] [--burst] [options]"
    parser = argparse.ArgumentParser(prog=prog, description="Run Celery-style tasks on RQ workers.",
                                     usage=usage + (" [queue ...]" if queue_arguments else ""))
    parser.add_argument("-A", "--app", help="the Celery app, as `celery -A`: proj, proj.celery, proj:app")
    parser.add_argument("-Q", "--queues", help="comma-separated queues to consume (default: the app's default)")
    if queue_arguments:
        parser.add_argument("queue_names", nargs="*", help="queues, as `rq worker` takes them")
    else:
        parser.set_defaults(queue_names=[])
    parser.add_argument("-c", "--concurrency", type=int, default=None,
                        help="number of work processes (default: 1 per core with prefork, else 1)")
    parser.add_argument("-P", "--pool", default="prefork", choices=sorted(POOLS), help="how tasks run (see above)")
    parser.add_argument("-B", "--beat", action="store_true", help="also run the periodic task scheduler")
    parser.add_argument("-l", "--loglevel", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("-u", "--url", help="Redis URL (default: the app's broker_url, else REDIS_URL)")
    parser.add_argument("--shim", action="store_true",
                        help="`import celery` gives this adapter (also: CELERY_COMPAT=1): unchanged Celery projects")
    parser.add_argument("-n", "--hostname", help="worker name (%%h: host name, %%n: its first part, %%d: domain)")
    parser.add_argument("-b", "--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument("--max-tasks-per-child", type=int, help="a work process is replaced after this many tasks")
    parser.add_argument("--grace-period", type=float, default=60.0,
                        help="seconds a warm shutdown waits for running tasks before re-queueing them")
    parser.add_argument("--without-scheduler", action="store_true", help="do not run RQ's scheduler here")
    parser.add_argument("--worker-ttl", type=int, default=WORKER_TTL, help="seconds before a silent worker is dead")
    parser.add_argument("--maintenance-interval", type=int, default=MAINTENANCE_INTERVAL,
                        help="seconds between RQ maintenance runs (abandoned-task detection)")
    add_celery_flags(parser)
    return parser


def load_app(spec: str) -> Celery:
    """The Celery app ``-A spec`` names, found as ``celery -A`` does (see :mod:`..bin.loading`)."""
    return find_app(spec)


def queue_names(options: argparse.Namespace, app: Celery) -> list[str]:
    names = [name for name in (options.queues or "").split(",") if name] + list(options.queue_names)
    excluded = set(filter(None, (getattr(options, "exclude_queues", None) or "").split(",")))
    return [name for name in names or [app.conf.task_default_queue] if name not in excluded]


def rq_queues(app: Celery, names: list[str]) -> list[Queue]:
    """The RQ queues a worker of ``names`` pops, in order: each queue's priority lists, priority-major."""
    # TaskJob: the worker runs only the adapter's entry point, whatever a job hash names.
    return [Queue(name, connection=app.connection, serializer=JSONSerializer, job_class=TaskJob)
            for name in app.amqp.priorities.consume_order(names)]


def make_worker(app: Celery, options: argparse.Namespace, index: int = 0) -> Any:
    """One RQ worker of the chosen pool's class, on the app's queues, with JSON jobs."""
    queues = rq_queues(app, queue_names(options, app))
    name = options.hostname and (f"{options.hostname}-{index}" if options.concurrency > 1 else options.hostname)
    return POOLS[options.pool](
        queues, connection=app.connection, serializer=JSONSerializer, name=name or default_name(index),
        worker_ttl=options.worker_ttl, maintenance_interval=options.maintenance_interval,
        job_monitoring_interval=HEARTBEAT_INTERVAL,
    )


#: Workers built so far in this process: one rebuilt after an outage must not reuse the name of
#: the one before, whose registration may outlive it (RQ refuses a second live worker of a name).
_built = itertools.count()


def default_name(index: int) -> str:
    """``worker-<index>.<pid>@<host>`` (``.<n>`` added for a rebuilt one): readable, unique per process.

    Not stable across a child's restart on purpose: the supervisor finds a dead child's tasks by
    its name, so a successor with the same name could have its own task taken for the dead one's.
    Capped to fit the 63 bytes a prefork slot keeps of the name.
    """
    built = next(_built)
    process = f"{os.getpid()}.{built}" if built else str(os.getpid())
    return f"worker-{index}.{process}@{socket.gethostname()}"[:63]


def run_worker(app: Celery, options: argparse.Namespace, index: int = 0,
               should_stop: Any = lambda: False) -> bool:
    """Run one RQ worker in this process until it is told to stop (or the queues drain in burst mode).

    RQ's own loop quits on a Redis timeout; here the worker starts again once Redis answers, so
    an outage never leaves a machine without its worker. A new worker is only built once Redis
    answers: RQ's ``Worker.__init__`` already talks to it (``CLIENT SETNAME``).
    """
    wait = FIRST_WAIT
    while True:
        if not wait_for_redis(lambda: app.connection, app.broker_url, burst=options.burst, should_stop=should_stop):
            if options.burst:
                raise GaveUp()
            return False
        try:
            worker = make_worker(app, options, index)
        except OUTAGE as exc:
            error: Exception | None = exc
        else:
            if isinstance(worker, InProcessWorker):
                signal.signal(signal.SIGUSR1, raise_terminated)
            try:
                worked = worker.work(burst=options.burst, logging_level=options.loglevel.upper(),
                                     with_scheduler=not options.without_scheduler,
                                     max_jobs=options.max_tasks_per_child)
                error = None
            except OUTAGE as exc:
                worked, error = False, exc
            asked_to_stop = getattr(worker, "_shutdown_requested_date", None) is not None
            if asked_to_stop or (worked and options.max_tasks_per_child) or not _redis_trouble(app, error):
                return worked
        if options.burst:
            raise GaveUp()
        if should_stop():
            return False
        logger.error("worker: stopped by Redis (%s); starting again in %.0f s",
                     reason(error) if error else "timeout", wait)
        if not sleep_unless(wait, should_stop):
            return False
        wait = min(wait * 2, MAX_WAIT)


def _redis_trouble(app: Celery, error: Exception | None) -> bool:
    """Did the worker stop because Redis failed (rather than by request)?"""
    if error is not None:
        return True
    try:
        ping(app.connection)
    except OUTAGE:
        return True
    return False


def _child(app: Celery, options: argparse.Namespace, index: int) -> None:
    app._connection = None  # never share a socket with the parent
    try:
        run_worker(app, options, index)
    except GaveUp:
        sys.exit(EXIT_NO_REDIS)


def run_processes(app: Celery, options: argparse.Namespace) -> int:
    """``-c N`` with ``fork`` or ``solo``: N independent workers; signals are passed on to them."""
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_child, args=(app, options, i), name=f"worker-{i}")
                for i in range(options.concurrency)]
    for child in children:
        child.start()

    def forward(signum: int, frame: Any) -> None:
        for child in children:
            if child.pid and child.is_alive():
                os.kill(child.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for child in children:
        child.join()
    return max((child.exitcode or 0) for child in children)


#: Celery's commands: ``worker.py -A proj worker ...`` is Celery's habit, never a queue named "worker".
CELERY_COMMANDS = ("worker", "beat", "inspect", "control", "status", "purge", "call", "result", "report", "shell",
                   "events", "multi", "list", "graph", "migrate", "amqp", "upgrade", "logtool")
#: How the adapter's Celery command line is run (the package this module is in).
COMMAND = f"python -m {__name__.rsplit('.', 2)[0]}"
#: Exit code of a worker that cannot load its app (Celery's usage error).
EXIT_USAGE = 2


def parse_worker_args(argv: list[str] | None, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the flags; a Celery command among ``worker.py``'s queue names is a verb, not a queue."""
    options = parser.parse_intermixed_args(argv)
    if options.queue_names and options.queue_names[0] in CELERY_COMMANDS:
        verb = options.queue_names.pop(0)
        if verb != "worker":
            parser.error(f"{verb!r} is a Celery command, not a queue name: run `{COMMAND} -A <app> {verb}`")
    return options


def choose_redis_url(app: Celery, explicit: str | None, environ: Any = os.environ) -> tuple[str, list[str]]:
    """The Redis the worker uses, and warnings: ``-u``, else the app's ``broker_url``, else ``REDIS_URL``.

    The app's ``broker_url`` wins over ``REDIS_URL`` because it is what ``.delay()`` in the app's
    own programs sends to: a worker on another Redis would wait for ever on an empty queue.
    """
    configured = app.conf.broker_url or app.conf.result_backend
    from_env = environ.get("REDIS_URL")
    url = explicit or configured or from_env or app.broker_url
    warnings = []
    if explicit and configured and explicit != configured:
        warnings.append(f"-u {redact_url(explicit)} differs from the app's broker_url {redact_url(configured)} "
                        "(the one its .delay() sends to); using -u")
    elif configured and from_env and from_env != configured:
        warnings.append(f"REDIS_URL={redact_url(from_env)} differs from the app's broker_url "
                        f"{redact_url(configured)}; using the app's broker_url, as its .delay() does")
    return url, warnings


def main(argv: list[str] | None = None, default_app: Celery | None = None, prog: str = "worker.py",
         queue_arguments: bool = True) -> int:
    """Entry point of ``python worker.py`` (and of the ``worker`` command); returns the exit code."""
    parser = build_parser(prog, queue_arguments)
    options = parse_worker_args(argv, parser)
    if options.concurrency is None:
        options.concurrency = (os.cpu_count() or 1) if options.pool == "prefork" else 1
    options.hostname = expand_hostname(options.hostname)
    if options.shim or switch.enabled(os.environ):
        switch.install()
    try:
        app = load_app(options.app) if options.app else (default_app or current_app())
    except AppNotFound as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    apply_celery_flags(app, options)
    setup_loghandlers(options.loglevel.upper())
    setup_loghandlers(options.loglevel.upper(), name="app.celery_compat")
    for name in ("rq.worker", "app.celery_compat", ""):
        redact_handlers(logging.getLogger(name))
    app.set_default()
    url, warnings = choose_redis_url(app, options.url)
    app.conf.broker_url = url
    for warning in warnings:
        logger.warning("worker: %s", warning)
    return _run(app, options)


def _run(app: Celery, options: argparse.Namespace) -> int:
    app.import_default_modules()
    app.finalize()
    # In a worker, a result that cannot be stored is waited on, not lost, while Redis is away.
    if "result_backend_always_retry" not in app.conf:
        app.conf.result_backend_always_retry = True
    logger.info("worker: app=%s queues=%s pool=%s concurrency=%s redis=%s", app.main, queue_names(options, app),
                options.pool, options.concurrency, redact_url(app.broker_url))
    ready = _reach_redis(app, options)
    if ready is not None:
        return ready
    if options.beat:
        start_beat_thread(app)
    if options.pool == "prefork":
        def run_child(slot: Any, index: int) -> None:
            child_main(app, options, slot, index, make_worker)

        return Supervisor(app, options, run_child, queue_names(options, app)).run()
    if options.concurrency > 1:
        return run_processes(app, options)
    try:
        run_worker(app, options)
    except GaveUp:
        return EXIT_NO_REDIS
    return 0


def _reach_redis(app: Celery, options: argparse.Namespace) -> int | None:
    """Before any work process starts: None once Redis answers, else the exit code.

    A URL that can never work ends the worker at once; an unreachable Redis is waited for
    (``--burst``: one attempt), so that no work process is started only to fail.
    """
    try:
        check_url(app.broker_url)
    except UnusableURL as exc:
        logger.error("worker: %s; exiting", exc)
        return EXIT_NO_REDIS
    stop = []
    previous = {signum: signal.signal(signum, lambda signum, frame: stop.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        reached = wait_for_redis(lambda: app.connection, app.broker_url, burst=options.burst,
                                 should_stop=lambda: bool(stop))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if reached:
        return None
    return 0 if stop else EXIT_NO_REDIS
