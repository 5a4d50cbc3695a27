"""Soft and hard time limits for a task running in the main thread of its process.

The soft limit raises :class:`SoftTimeLimitExceeded` inside the task so it can clean up;
the hard limit raises :class:`TimeLimitExceeded`. Both use one ``SIGALRM`` timer with
sub-second precision. RQ's own job timeout is set just past the hard limit, so RQ's work
horse monitor still kills a task that swallows the exception (after RQ's 60 s grace).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..exceptions import SoftTimeLimitExceeded, TimeLimitExceeded


@contextmanager
def time_limits(soft: float | None, hard: float | None) -> Iterator[None]:
    """Arm the limits around a block; a no-op outside the main thread (signals need it)."""
    if not (soft or hard) or threading.current_thread() is not threading.main_thread():
        yield
        return
    soft_pending = bool(soft) and (not hard or soft < hard)

    def on_alarm(signum: int, frame: object) -> None:
        nonlocal soft_pending
        if soft_pending:
            soft_pending = False
            if hard:
                signal.setitimer(signal.ITIMER_REAL, hard - soft)
            raise SoftTimeLimitExceeded()
        raise TimeLimitExceeded(hard)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, soft if soft_pending else hard)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
