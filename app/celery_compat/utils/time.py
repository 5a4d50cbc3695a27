"""Time helpers shared by the sending and the working side (Celery keeps its own in ``celery.utils.time``)."""

from __future__ import annotations

from datetime import datetime, timedelta


def whole_second_after(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole second.

    RQ's scheduled registry keeps whole seconds, truncated: a task scheduled for 10.7 s would be
    due at 10 s. Rounded up, it never runs before its eta, countdown, retry delay or rate slot.
    """
    return moment if not moment.microsecond else moment.replace(microsecond=0) + timedelta(seconds=1)
