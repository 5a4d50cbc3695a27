"""Embedded workers for integration tests, as Celery's ``celery.contrib.testing.worker``.

:func:`start_worker` runs the adapter's worker in a thread of the test process, on the app's
broker, until the ``with`` block ends. Tasks run in that thread whatever ``pool`` is asked
(Celery's ``solo`` pool does the same; its default ``prefork`` pool would fork children): so a
test sees from inside what the worker does, its signals (``task_prerun``, ``task_success``, ...),
its log records (``caplog``) and module state its tasks change.

Differences from ``-P solo`` in ``python worker.py``, all because a thread is not a process:
no signal handlers (the test process keeps its own), ``revoke(terminate=True)`` raises
:class:`Terminated` in the worker thread at its next Python instruction (a task blocked in C,
e.g. ``time.sleep``, notices when that call returns), and the time limits of the adapter
(which need the main thread) do not apply. RQ's scheduler (``countdown``, ``eta``, retries)
runs in a second thread instead of a process.
"""

from __future__ import annotations

import ast
import ctypes
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ... import Celery
from ...exceptions import Terminated
from ...signals import Signal
from ...utils.nodenames import anon_nodename as anon_nodename
from ._adapter import JSONSerializer, LeanWorker, RQScheduler, WorkersHost, rq_queues, start_control
from .tasks import ping

WORKER_LOGLEVEL = os.environ.get("WORKER_LOGLEVEL", "error")
#: Seconds the worker blocks waiting for a task: also how long stopping it may take.
POLL_SECONDS = 0.25

test_worker_starting = Signal("test_worker_starting")
test_worker_started = Signal("test_worker_started", providing_args={"worker", "consumer"})
test_worker_stopped = Signal("test_worker_stopped", providing_args={"worker"})

logger = logging.getLogger(__name__)


#: Names of this process's running test workers: RQ, unlike Celery, wants each name once.
_running_names: set[str] = set()


def _serialize_ast_parse() -> None:
    """Let one thread at a time run ``ast.parse`` in the test process (once; idempotent).

    CPython 3.11 keeps the AST converter's recursion depth in state shared by all threads. A
    task failing in the worker thread formats its traceback (``traceback`` calls ``ast.parse``
    for the ``^^^`` markers) while pytest formats a report in the main thread (it calls
    ``ast.parse`` too): the counters mix and every later parse fails with "SystemError: AST
    constructor recursion depth mismatch", taking pytest down with an INTERNALERROR.
    """
    if getattr(ast.parse, "_one_thread_at_a_time", False):
        return
    parse, lock = ast.parse, threading.RLock()

    def locked_parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    locked_parse._one_thread_at_a_time = True  # type: ignore[attr-defined]
    ast.parse = locked_parse


def _free_nodename() -> str:
    """``gen<pid>@<host>``, or ``gen<pid>-2@<host>``... while a session worker holds the plain name."""
    name, number = anon_nodename(), 1
    while name in _running_names:
        number += 1
        name = f"gen{os.getpid()}-{number}@{socket.gethostname()}"
    return name


class ThreadScheduler(RQScheduler):
    """RQ's scheduler run in a thread of the test process (RQ forks a process for it)."""

    _thread: threading.Thread | None = None

    def _install_signal_handlers(self) -> None:
        pass  # only the main thread may; the worker stops it with request_stop()

    def start(self) -> threading.Thread:
        self._status = self.Status.STARTED
        self._thread = threading.Thread(target=self.work, name="test-worker-scheduler", daemon=True)
        self._thread.start()
        return self._thread

    def stop_thread(self, timeout: float) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)


class ThreadWorker(LeanWorker):
    """The adapter's lean worker, made to live in a thread: no signals, a short poll, a thread scheduler."""

    answers_control = False  # its TestWorkController answers for all its threads, as one node

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.thread_ident: int | None = None
        self.on_ready: Any = None

    @property
    def dequeue_timeout(self) -> float:
        return POLL_SECONDS

    def _install_signal_handlers(self) -> None:
        pass

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        if self.on_ready is not None:
            self.on_ready()

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO", **kwargs: Any) -> None:
        self.scheduler = ThreadScheduler(self.queues, connection=self.connection, serializer=self.serializer,
                                         logging_level=logging_level or "ERROR")
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            self.scheduler.start()

    def stop_scheduler(self) -> None:
        scheduler = getattr(self, "scheduler", None)
        if isinstance(scheduler, ThreadScheduler):
            scheduler.stop_thread(timeout=10)

    def kill_horse(self, sig: Any = None) -> None:
        """``revoke(terminate=True)``: raise Terminated in the worker thread (see the module docstring)."""
        if self.thread_ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_ident), ctypes.py_object(Terminated))

    def request_stop_soon(self) -> None:
        self._stop_requested = True


class TestWorkController:
    """A test worker: ``concurrency`` adapter workers, each in its own thread, on the app's queues."""

    __test__ = False  # not a test class, though its name starts with "Test"

    def __init__(self, app: Celery, concurrency: int = 1, hostname: str | None = None, pool: Any = "solo",
                 loglevel: str | int = WORKER_LOGLEVEL, queues: Any = None, **kwargs: Any) -> None:
        self.app = app
        self.hostname = hostname or _free_nodename()
        self.pool_cls = pool
        self.concurrency = max(1, int(concurrency or 1))
        self.loglevel = logging.getLevelName(loglevel) if isinstance(loglevel, int) else str(loglevel).upper()
        if isinstance(queues, str):
            queues = queues.split(",")
        self.queues = list(queues or [app.conf.task_default_queue])
        self.options = kwargs
        self.consumer = None  # Celery's consumer has no counterpart: RQ workers pop tasks themselves
        self.workers: list[ThreadWorker] = []
        self.threads: list[threading.Thread] = []
        self._on_started = threading.Event()
        self._ready = 0
        self.control: Any = None
        self._lock = threading.Lock()

    def _make_worker(self, index: int) -> ThreadWorker:
        name = self.hostname if self.concurrency == 1 else f"{self.hostname}-{index}"
        worker = ThreadWorker(rq_queues(self.app, self.queues), connection=self.app.connection,
                              serializer=JSONSerializer, name=name)
        worker.node_name = self.hostname  # its threads are one node, sharing its rate limits
        worker.on_ready = self._one_ready
        return worker

    def _one_ready(self) -> None:
        with self._lock:
            self._ready += 1
            if self._ready == self.concurrency:
                self._on_started.set()
                test_worker_started.send(sender=self.app, worker=self, consumer=self.consumer)

    def _run(self, worker: ThreadWorker, scheduler: bool) -> None:
        worker.thread_ident = threading.get_ident()
        self.app.set_current()
        try:
            worker.work(logging_level=self.loglevel, with_scheduler=scheduler)
        except Exception:
            logger.exception("test worker %s stopped by an error", worker.name)
            self._on_started.set()  # never leave ensure_started() waiting on a dead worker

    def start(self) -> None:
        """Start the worker threads (they run until :meth:`stop`)."""
        _running_names.add(self.hostname)
        for index in range(self.concurrency):
            worker = self._make_worker(index)
            thread = threading.Thread(target=self._run, args=(worker, index == 0), daemon=True,
                                      name=f"test-worker-{worker.name}")
            self.workers.append(worker)
            self.threads.append(thread)
            thread.start()
        # Threads, whatever pool was asked; a shutdown command stops them, never the test process.
        host = WorkersHost(self.hostname, self.workers, "solo", stop=self._stop_soon,
                           priorities=self.app.amqp.priorities)
        self.control = start_control(self.app, self.hostname, host)

    def ensure_started(self, timeout: float = 30.0) -> None:
        """Wait until every worker thread is registered and polling its queues."""
        if not self._on_started.wait(timeout) or not all(t.is_alive() for t in self.threads):
            raise RuntimeError(f"test worker {self.hostname} did not start")
        if not self.control.listening.wait(timeout):
            raise RuntimeError(f"test worker {self.hostname} does not answer app.control")

    def _stop_soon(self) -> None:
        for worker in self.workers:
            worker.request_stop_soon()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the running tasks; raise if a thread is still busy after ``timeout`` seconds."""
        self.control.stop()
        for worker in self.workers:
            worker.request_stop_soon()
        for thread in self.threads:
            thread.join(timeout)
        stuck = [thread.name for thread in self.threads if thread.is_alive()]
        if not stuck:
            _running_names.discard(self.hostname)
        if stuck:
            raise RuntimeError(f"Worker thread failed to exit within {timeout} s: {', '.join(stuck)}. "
                               "Consider raising `shutdown_timeout` if your tasks take longer to execute.")

    def __repr__(self) -> str:
        return f"<TestWorkController {self.hostname} queues={self.queues} concurrency={self.concurrency}>"


def setup_app_for_worker(app: Celery, loglevel: str | int | None = None, logfile: str | None = None) -> None:
    """Make ``app`` the one its tasks see, as a worker process does at start."""
    app.finalize()
    app.set_current()
    app.set_default()


@contextmanager
def start_worker(app: Celery, concurrency: int = 1, pool: Any = "solo", loglevel: str | int = WORKER_LOGLEVEL,
                 logfile: str | None = None, perform_ping_check: bool = True, ping_task_timeout: float = 10.0,
                 shutdown_timeout: float = 10.0, **kwargs: Any) -> Iterator[TestWorkController]:
    """Start an embedded worker; it stops when the block ends. Yields a :class:`TestWorkController`.

    With ``perform_ping_check`` it first runs Celery's ``celery.ping`` task through the broker,
    so the block starts with a worker known to take tasks.
    """
    test_worker_starting.send(sender=app)
    _serialize_ast_parse()
    worker = None
    try:
        with _start_worker_thread(app, concurrency=concurrency, pool=pool, loglevel=loglevel, logfile=logfile,
                                  perform_ping_check=perform_ping_check, shutdown_timeout=shutdown_timeout,
                                  **kwargs) as worker:
            if perform_ping_check:
                assert ping.delay().get(timeout=ping_task_timeout) == "pong"
            yield worker
    finally:
        test_worker_stopped.send(sender=app, worker=worker)


@contextmanager
def _start_worker_thread(app: Celery, concurrency: int = 1, pool: Any = "solo", loglevel: str | int = WORKER_LOGLEVEL,
                         logfile: str | None = None, WorkController: Any = TestWorkController,  # noqa: N803
                         perform_ping_check: bool = True, shutdown_timeout: float = 10.0,
                         **kwargs: Any) -> Iterator[TestWorkController]:
    setup_app_for_worker(app, loglevel, logfile)
    if perform_ping_check:
        app.register_task(ping)
    app.connection.ping()  # fail here, clearly, when the broker is not there
    worker = WorkController(app=app, concurrency=concurrency, hostname=kwargs.pop("hostname", None), pool=pool,
                            loglevel=loglevel, **kwargs)
    worker.start()
    try:
        worker.ensure_started()
        yield worker
    finally:
        worker.stop(shutdown_timeout)
