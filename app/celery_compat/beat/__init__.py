"""The periodic task scheduler, as ``celery.beat``: ``Scheduler``, ``ScheduleEntry``, ``Service``.

* ``entry``: ``ScheduleEntry`` (one task and its schedule), ``BeatLazyFunc``, ``event_t``.
* ``scheduler``: ``Scheduler``, Celery's in-memory scheduler and the class custom ones subclass.
* ``persistent``: ``PersistentScheduler``, the default: run history in Redis as JSON, shared by
  every beat of the app, so that several beats (``worker.py -B`` on each worker) send each run once.
* ``service``: ``Service`` (the loop), ``run_beat`` (the blocking ``beat`` program),
  ``start_beat_thread`` (``-B``), ``EmbeddedService``.
"""

from __future__ import annotations

from .entry import BeatLazyFunc, ScheduleEntry, event_t
from .persistent import PersistentScheduler
from .scheduler import DEFAULT_MAX_INTERVAL, Scheduler, SchedulingError
from .service import EmbeddedService, Service, beat_nodename, run_beat, start_beat_thread

__all__ = (
    "DEFAULT_MAX_INTERVAL", "BeatLazyFunc", "EmbeddedService", "PersistentScheduler", "ScheduleEntry", "Scheduler",
    "SchedulingError", "Service", "beat_nodename", "event_t", "run_beat", "start_beat_thread",
)
