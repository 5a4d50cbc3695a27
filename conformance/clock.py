"""Each test's time limit in a conformance run (instead of pytest-timeout, which the runner disables).

pytest-timeout fails a test once, by raising in it when its time is up. Celery's suite runs many
checks as subtests, and a subtest catches that failure: the test goes on to its next check, which
waits for its own result, and a test limited to 15 s ran for minutes. Here, once a test's time is
up, every further wait in its call phase is interrupted too, every ``REFIRE`` seconds, until the
test ends. Setup and teardown get the rest of the test's time, at least ``GRACE`` seconds, and are
interrupted once. Nothing fires while pytest writes its reports (between phases).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

#: Seconds between interruptions of a test whose time is up (one per remaining subtest).
REFIRE = 0.5
#: Seconds setup or teardown may take even when the test used all its time.
GRACE = 10.0


def _may_interrupt(frame: Any) -> bool:
    """Only test or adapter code is interrupted: an exception raised inside pytest's own machinery
    (a subtest's report) or at an instruction without a line number (a ``with`` block's exit in
    CPython 3.11) gives a traceback pytest cannot format, and pytest stops with an INTERNALERROR."""
    if frame.f_lineno is None:
        return False
    filename = frame.f_code.co_filename
    return not any(part in filename for part in ("/_pytest/", "/pluggy/", "/pytest_", "/_hypothesis", "/schemathesis/"))


class TestClock:
    """Arms SIGALRM around each phase of a test; see the module docstring."""

    __test__ = False

    def __init__(self, limits: dict[str, float]) -> None:
        self.limits = limits  # test id -> seconds
        self.deadline = 0.0
        self.limit = 0.0
        self.in_call = False
        signal.signal(signal.SIGALRM, self._time_is_up)

    def _time_is_up(self, signum: int, frame: Any) -> None:
        if frame is not None and not _may_interrupt(frame):
            signal.setitimer(signal.ITIMER_REAL, 0.05)  # try again in a moment, out of pytest's own code
            return
        if self.in_call:
            signal.setitimer(signal.ITIMER_REAL, REFIRE)
        pytest.fail(f"Timeout (>{self.limit:.1f}s): the conformance run's limit for this test")

    def _arm(self, minimum: float = 0.01) -> None:
        signal.setitimer(signal.ITIMER_REAL, max(self.deadline - time.monotonic(), minimum))

    @staticmethod
    def _disarm() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        self.limit = self.limits.get(item.nodeid, 0.0)
        self.deadline = time.monotonic() + self.limit
        self._arm()
        try:
            yield
        finally:
            self._disarm()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        self.in_call = True
        self._arm()
        try:
            yield
        finally:
            self.in_call = False
            self._disarm()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        self._arm(minimum=GRACE)
        try:
            yield
        finally:
            self._disarm()
