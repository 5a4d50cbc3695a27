"""The worker command: ``python worker.py -A proj -Q queues -c N -P pool -B --loglevel info``.

It accepts Celery's worker flags and runs RQ workers underneath. ``-P`` says how a task is
isolated:

* ``fork`` (also ``prefork``, the default): RQ's ``Worker``; each task runs in a freshly forked
  work horse, so a hard time limit or ``revoke(terminate=True)`` kills only that task.
* ``solo`` (also ``threads``, ``gevent``, ``eventlet``): RQ's ``SimpleWorker``; tasks run in the
  worker process itself, faster, but a task can only be stopped by stopping the worker.

``-c N`` starts N such workers as child processes of one supervisor. Every worker runs RQ's
scheduler (it takes a lock, so only one schedules at a time), which ``countdown``, ``eta``
and retries need. ``-B`` also runs the periodic task scheduler (``beat_schedule``) in a thread
of the main process; several ``-B`` workers send each tick once between them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import multiprocessing
import os
import signal
import sys
from typing import Any

from rq import SimpleWorker, Worker
from rq.logutils import setup_loghandlers
from rq.serializers import JSONSerializer

from . import execution as execution  # noqa: F401 - imported here so forked work horses need not import it
from .app import Celery, current_app

POOLS = {"fork": Worker, "prefork": Worker, "solo": SimpleWorker, "threads": SimpleWorker,
         "gevent": SimpleWorker, "eventlet": SimpleWorker}

logger = logging.getLogger("app.celery_compat.worker")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="worker.py", description="Run Celery-style tasks on RQ workers.")
    parser.add_argument("-A", "--app", help="module (or module:attribute) holding the Celery app, as `celery -A`")
    parser.add_argument("-Q", "--queues", help="comma-separated queues to consume (default: the app's default)")
    parser.add_argument("queue_names", nargs="*", help="queues, as `rq worker` takes them")
    parser.add_argument("-c", "--concurrency", type=int, default=1, help="number of worker processes")
    parser.add_argument("-P", "--pool", default="fork", choices=sorted(POOLS), help="how tasks are isolated")
    parser.add_argument("-B", "--beat", action="store_true", help="also run the periodic task scheduler")
    parser.add_argument("-l", "--loglevel", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("-u", "--url", help="Redis URL (default: REDIS_URL, else the app's broker_url)")
    parser.add_argument("-n", "--hostname", help="worker name")
    parser.add_argument("-b", "--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument("--max-tasks-per-child", type=int, help="a worker exits after this many tasks")
    parser.add_argument("--without-scheduler", action="store_true", help="do not run RQ's scheduler here")
    parser.add_argument("--worker-ttl", type=int, default=None, help="seconds before a silent worker is dead")
    parser.add_argument("--maintenance-interval", type=int, default=None,
                        help="seconds between RQ maintenance runs (abandoned-job detection)")
    return parser


def load_app(spec: str) -> Celery:
    """Find the Celery app as ``celery -A`` does: ``mod:attr``, ``mod.app``/``mod.celery``, or ``mod.celery``."""
    sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    if attr:
        return getattr(module, attr)
    for name in ("app", "celery"):
        candidate = getattr(module, name, None)
        if isinstance(candidate, Celery):
            return candidate
    for candidate in vars(module).values():
        if isinstance(candidate, Celery):
            return candidate
    submodule = importlib.import_module(f"{module_name}.celery")
    return load_app(f"{submodule.__name__}")


def queue_names(options: argparse.Namespace, app: Celery) -> list[str]:
    names = [name for name in (options.queues or "").split(",") if name] + list(options.queue_names)
    return names or [app.conf.task_default_queue]


def run_worker(app: Celery, options: argparse.Namespace, index: int = 0) -> bool:
    """Run one RQ worker in this process until it is told to stop (or the queues drain in burst mode)."""
    worker_class = POOLS[options.pool]
    queues = [app.queue(name) for name in queue_names(options, app)]
    name = options.hostname and (f"{options.hostname}-{index}" if options.concurrency > 1 else options.hostname)
    extra = {}
    if options.worker_ttl:
        extra["worker_ttl"] = options.worker_ttl
    if options.maintenance_interval:
        extra["maintenance_interval"] = options.maintenance_interval
    worker = worker_class(queues, connection=app.connection, serializer=JSONSerializer, name=name, **extra)
    return worker.work(burst=options.burst, logging_level=options.loglevel.upper(),
                       with_scheduler=not options.without_scheduler, max_jobs=options.max_tasks_per_child)


def _child(app: Celery, options: argparse.Namespace, index: int) -> None:
    app._connection = None  # never share a socket with the parent
    run_worker(app, options, index)


def supervise(app: Celery, options: argparse.Namespace) -> int:
    """Run ``-c N`` workers as child processes; pass SIGINT/SIGTERM on and wait for all of them."""
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


def main(argv: list[str] | None = None, default_app: Celery | None = None) -> int:
    """Entry point of ``python worker.py``; returns the exit code."""
    options = build_parser().parse_args(argv)
    setup_loghandlers(options.loglevel.upper())
    setup_loghandlers(options.loglevel.upper(), name="app.celery_compat")
    app = load_app(options.app) if options.app else (default_app or current_app())
    app.set_default()
    url = options.url or os.environ.get("REDIS_URL")
    if url:
        app.conf.broker_url = url
    app.import_default_modules()
    app.finalize()
    if options.beat:
        from .beat import start_beat_thread

        start_beat_thread(app)
    logger.info("worker: app=%s queues=%s pool=%s concurrency=%s redis=%s", app.main, queue_names(options, app),
                options.pool, options.concurrency, app.broker_url)
    if options.concurrency > 1:
        return supervise(app, options)
    run_worker(app, options)
    return 0
