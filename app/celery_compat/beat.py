"""The periodic task scheduler (``worker.py -B``): sends ``beat_schedule`` entries when they are due.

Several workers may run it at once: for each tick of each entry, the first scheduler to set
``celery-compat:beat:<entry>:<tick>`` (``SET NX``) sends the task and the others skip it, so a
task runs once per tick however many ``-B`` workers there are. Ticks missed while no
scheduler ran are not caught up, as with ``celery beat``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import keys
from .schedules import as_schedule

if TYPE_CHECKING:
    from .app.base import Celery

logger = logging.getLogger("app.celery_compat.beat")


def _zone(app: Celery) -> Any:
    name = app.conf.timezone
    if not name:
        return timezone.utc
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


class Beat:
    """Sends each entry of ``app.conf.beat_schedule`` once per tick."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.zone = _zone(app)
        self.entries = {name: dict(entry, schedule=as_schedule(entry["schedule"]))
                        for name, entry in (app.conf.beat_schedule or {}).items()}
        now = datetime.now(timezone.utc)
        self.next_run = {name: self._next(entry, now) for name, entry in self.entries.items()}

    def _next(self, entry: dict, moment: datetime) -> datetime:
        sched = entry["schedule"]
        if hasattr(sched, "day_of_week"):
            return sched.next_after(moment, self.zone)
        return sched.next_after(moment)

    def tick(self, now: datetime | None = None) -> float:
        """Send what is due; return the seconds until the next tick of any entry."""
        now = now or datetime.now(timezone.utc)
        for name, entry in self.entries.items():
            due = self.next_run[name]
            if due <= now:
                self._claim_and_send(name, entry, due)
                self.next_run[name] = self._next(entry, now)
        if not self.next_run:
            return 60.0
        return max(0.0, min(self.next_run.values()).timestamp() - now.timestamp())

    def _claim_and_send(self, name: str, entry: dict, due: datetime) -> None:
        key = keys.beat_claim(name, str(int(due.timestamp())))
        if not self.app.connection.set(key, 1, nx=True, ex=3600):
            return  # another scheduler sent this tick
        options = dict(entry.get("options") or {})
        self.app.send_task(entry["task"], entry.get("args") or (), entry.get("kwargs") or {}, **options)
        logger.info("Scheduler: sending due task %s (%s)", name, entry["task"])

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; a Redis error is logged and retried, never fatal."""
        logger.info("beat: %d periodic tasks: %s", len(self.entries), ", ".join(self.entries) or "none")
        while not stop.is_set():
            try:
                wait = self.tick()
            except Exception:
                logger.exception("beat: could not send due tasks; retrying")
                wait = 1.0
            stop.wait(min(wait, 1.0) + 0.001)


def start_beat_thread(app: Celery) -> threading.Event:
    """Run the scheduler in a daemon thread of this process; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=Beat(app).run, args=(stop,), name="beat", daemon=True)
    thread.start()
    return stop
