"""A long-running task that works in steps and reports its progress as Celery's PROGRESS state."""

from __future__ import annotations

import time

from app.celery_compat import Task, shared_task

STEP_SECONDS = 0.5


# Safe to repeat: if its worker dies, the task runs again (at most 3 times) instead of failing.
@shared_task(bind=True, track_started=True, acks_late=True, reject_on_worker_lost=True)
def long_running(self: Task, duration: int) -> dict:
    """Work for ``duration`` seconds in half-second steps, publishing ``{current, total, percent}``."""
    total = max(1, round(duration / STEP_SECONDS))
    for current in range(1, total + 1):
        time.sleep(STEP_SECONDS)
        self.update_state(state="PROGRESS", meta=progress(current, total))
    return {"duration": duration, "steps": total, "message": f"Worked for {duration} s in {total} steps"}


def progress(current: int, total: int) -> dict:
    return {"current": current, "total": total, "percent": round(100 * current / total)}
