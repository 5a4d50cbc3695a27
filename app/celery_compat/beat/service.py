"""``Service``: the beat loop (tick, sleep, repeat), and the two ways to run it here.

* :func:`run_beat` blocks: the standalone ``beat`` program.
* :func:`start_beat_thread` runs it in a daemon thread: ``worker.py -B``.

Several may run against one Redis: the default scheduler (``PersistentScheduler``) sends each
run once between them.
"""

from __future__ import annotations

import importlib
import logging
import socket
import threading
import time
from functools import cached_property
from typing import Any

import redis

from .. import signals
from .persistent import PersistentScheduler
from .pidbox import BeatPidbox
from .scheduler import Scheduler

logger = logging.getLogger("app.celery_compat.beat")

#: Seconds to wait after a tick failed (Redis unreachable...) before the next one.
RETRY_AFTER_ERROR = 1.0
#: Celery's module name in a ``beat_scheduler`` setting: ``celery.beat:Scheduler`` means ours.
CELERY_PREFIX = "celery."


def scheduler_class(spec: str | type) -> type:
    """A scheduler class from ``"package.module:Class"`` (or ``package.module.Class``), or the class itself."""
    if not isinstance(spec, str):
        return spec
    module_name, _, name = spec.partition(":") if ":" in spec else spec.rpartition(".")
    if module_name == "celery" or module_name.startswith(CELERY_PREFIX):
        module_name = "app.celery_compat" + module_name[len("celery"):]
    return getattr(importlib.import_module(module_name), name)


def beat_nodename(hostname: str | None = None) -> str:
    """The name beat would answer remote control under: ``celerybeat@<host>`` unless ``hostname`` names one."""
    host = socket.gethostname()
    name = hostname or f"celerybeat@{host}"
    if "@" not in name:
        name = f"celerybeat@{name}"
    return name.replace("%h", host).replace("%n", host.split(".")[0]).replace("%d", host.partition(".")[2])


class Service:
    """Ticks the scheduler until stopped (its class: ``scheduler_cls``, ``PersistentScheduler`` by default)."""

    scheduler_cls: Any = PersistentScheduler

    def __init__(self, app: Any, max_interval: float | None = None, schedule_filename: str | None = None,
                 scheduler_cls: Any = None, remote_control: bool | None = None, hostname: str | None = None) -> None:
        self.app = app
        self.max_interval = max_interval or app.conf.get("beat_max_loop_interval")
        self.scheduler_cls = scheduler_cls or self.scheduler_cls
        self.schedule_filename = schedule_filename or app.conf.get("beat_schedule_filename")
        self.remote_control = app.conf.get("beat_enable_remote_control") if remote_control is None else remote_control
        self.hostname = hostname
        self.effective_max_interval: float | None = None
        self._pidbox: BeatPidbox | None = None
        #: ``time.monotonic()`` of the last pass of the loop.
        self._last_tick: float | None = None
        self._is_shutdown = threading.Event()
        self._is_stopped = threading.Event()

    def __reduce__(self) -> tuple:
        return self.__class__, (self.app, self.max_interval, self.schedule_filename, self.scheduler_cls,
                                self.remote_control, self.hostname)

    def start(self, embedded_process: bool = False) -> None:
        """Tick until :meth:`stop`; a failing tick is logged and retried, never fatal."""
        scheduler = self._first_scheduler()
        if scheduler is None:
            self._is_stopped.set()
            return
        logger.info("beat: Starting... %d periodic tasks: %s", len(scheduler.schedule),
                    ", ".join(scheduler.schedule) or "none")
        signals.beat_init.send(sender=self)
        self.effective_max_interval = scheduler.max_interval
        if self.remote_control:
            self._pidbox = BeatPidbox(self, beat_nodename(self.hostname))
            self._pidbox.start()
        # Stamped before the first pass, so a beat that wedges before it ever ticks goes stale.
        self._last_tick = time.monotonic()
        try:
            while not self._is_shutdown.is_set():
                interval = self._tick_once()
                self._last_tick = time.monotonic()
                if interval and interval > 0:
                    self._is_shutdown.wait(interval)
                    if self.scheduler.should_sync():
                        self.scheduler._do_sync()
        except (KeyboardInterrupt, SystemExit):
            self._is_shutdown.set()
        finally:
            # The schedule first: a supervisor may follow SIGTERM with SIGKILL.
            self.sync()
            if self._pidbox is not None:
                self._pidbox.stop()

    def _first_scheduler(self) -> Scheduler | None:
        """The scheduler, once it could be set up (it reads Redis); None when stopped before that."""
        while not self._is_shutdown.is_set():
            try:
                return self.scheduler
            except redis.RedisError as exc:
                logger.warning("beat: cannot read the schedule's history (%s); retrying in %s s", exc,
                               RETRY_AFTER_ERROR)
                self._is_shutdown.wait(RETRY_AFTER_ERROR)
        return None

    def _tick_once(self) -> float:
        try:
            return self.scheduler.tick()
        except Exception:
            logger.exception("beat: could not send due tasks; retrying in %s s", RETRY_AFTER_ERROR)
            # The failing tick may have taken its entry off the heap: rebuild it from the schedule.
            self.scheduler._heap = None
            return RETRY_AFTER_ERROR

    def sync(self) -> None:
        try:
            self.scheduler.close()
        finally:
            self._is_stopped.set()

    def stop(self, wait: bool = False) -> None:
        logger.info("beat: Shutting down...")
        self._is_shutdown.set()
        if wait:
            self._is_stopped.wait()

    def get_scheduler(self, lazy: bool = False, extension_namespace: str | None = None) -> Scheduler:
        return scheduler_class(self.scheduler_cls)(app=self.app, schedule_filename=self.schedule_filename,
                                                   max_interval=self.max_interval, lazy=lazy)

    @cached_property
    def scheduler(self) -> Scheduler:
        return self.get_scheduler()


class _Threaded(threading.Thread):
    """Beat in a daemon thread of this process (Celery's embedded beat, and ``-B``)."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(name="Beat", daemon=True)
        self.app = app
        self.service = Service(app, **kwargs)

    def run(self) -> None:
        self.app.set_current()
        self.service.start()

    def stop(self) -> None:
        self.service.stop(wait=True)


def EmbeddedService(app: Any, max_interval: float | None = None, **kwargs: Any) -> _Threaded:  # noqa: N802
    """Celery's embedded beat; always a thread here (Celery forks a process unless ``thread=True``)."""
    kwargs.pop("thread", None)
    kwargs.setdefault("remote_control", False)
    # A short interval, so that stopping the thread does not wait out a long sleep.
    return _Threaded(app, max_interval=max_interval or 1, **kwargs)


def _service(app: Any, stop: threading.Event | None, **kwargs: Any) -> Service:
    """The service the programs run: its scheduler named by ``beat_scheduler``, as Celery's ``beat`` and ``-B``."""
    service = Service(app, scheduler_cls=app.conf.get("beat_scheduler"), **kwargs)
    if stop is not None:
        service._is_shutdown = stop  # the caller's event is the loop's own stop signal
    return service


def run_beat(app: Any, *, max_interval: float | None = None, stop: threading.Event | None = None) -> None:
    """Run beat in this thread until ``stop`` is set (or Ctrl-C / SystemExit): the ``beat`` program."""
    _service(app, stop, max_interval=max_interval).start()


def start_beat_thread(app: Any) -> threading.Event:
    """Run beat in a daemon thread of this process (``worker.py -B``); set the returned event to stop it.

    As Celery's embedded beat: a one-second loop (so it stops promptly), no remote control
    of its own (the worker answers for the process).
    """
    stop = threading.Event()
    service = _service(app, stop, max_interval=1.0, remote_control=False)
    threading.Thread(target=service.start, name="beat", daemon=True).start()
    return stop
