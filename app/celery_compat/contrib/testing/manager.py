"""Integration-test helpers, as Celery's ``celery.contrib.testing.manager``, on the adapter's public API.

``Manager(app)`` waits for things to happen (``wait_for``), joins results (``join``) and asks the
workers about tasks (``inspect``, ``assert_accepted``, ``assert_received``, ``wait_until_idle``).
The answers come from ``app.control.inspect()``: what it cannot answer, these cannot either.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import count
from typing import Any, TextIO

import redis

from ... import states
from ...exceptions import TimeoutError
from ...result import ResultSet

E_STILL_WAITING = "Still waiting for {0}.  Trying again {when}: {exc!r}"


class Sentinel(Exception):
    """Signifies the end of something."""


def humanize_seconds(secs: float, prefix: str = "", sep: str = "", now: str = "now") -> str:
    """``in 1.50 seconds``, as Celery's (with microseconds) for the "still waiting" remarks."""
    return f"{prefix}{sep}{secs:.2f} seconds" if secs else now


def intervals(start: float, step: float, maximum: float) -> Iterator[float]:
    """``start``, ``start + step``, ... up to ``maximum``, then ``maximum`` for ever (kombu's fxrange)."""
    current = start
    while True:
        yield min(current, maximum)
        current += step


def retry_over_time(fun: Callable, catch: Any, args: Sequence = (), kwargs: dict | None = None,
                    errback: Callable | None = None, max_retries: int | None = None, interval_start: float = 2,
                    interval_step: float = 2, interval_max: float = 30, callback: Callable | None = None,
                    timeout: float | None = None) -> Any:
    """Call ``fun`` until it stops raising ``catch``; kombu's function of the same name and arguments."""
    kwargs = kwargs or {}
    waits = intervals(interval_start, interval_step, interval_max)
    deadline = None if timeout is None else time.monotonic() + timeout
    for retries in count():
        try:
            return fun(*args, **kwargs)
        except catch as exc:
            if max_retries is not None and retries >= max_retries:
                raise
            if deadline is not None and time.monotonic() > deadline:
                raise
            wait = errback(exc, waits, retries) if errback else next(waits)
            if callback:
                callback()
            time.sleep(wait or 0)


class ManagerMixin:
    """Mixin that adds :class:`Manager` capabilities."""

    app: Any

    def _init_manager(self, block_timeout: float = 30 * 60.0, no_join: bool = False, stdout: TextIO | None = None,
                      stderr: TextIO | None = None) -> None:
        self.stdout = sys.stdout if stdout is None else stdout
        self.stderr = sys.stderr if stderr is None else stderr
        self.connerrors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self.block_timeout = block_timeout
        self.no_join = no_join

    def remark(self, s: str, sep: str = "-") -> None:
        print(f"{sep}{s}", file=self.stdout)

    def warn(self, s: str) -> None:
        self.stderr.write(s + "\n")

    def missing_results(self, r: Sequence) -> list[str]:
        return [res.id for res in r if not res.ready()]

    def wait_for(self, fun: Callable, catch: Any, desc: str = "thing", args: Sequence = (), kwargs: dict | None = None,
                 errback: Callable | None = None, max_retries: int = 10, interval_start: float = 0.1,
                 interval_step: float = 0.5, interval_max: float = 5.0, emit_warning: bool = False,
                 **options: Any) -> Any:
        """Wait for an event: ``fun`` raising ``catch`` means it has not happened yet."""

        def on_error(exc: Exception, waits: Iterator[float], retries: int) -> float:
            interval = next(waits)
            if emit_warning:
                self.warn(E_STILL_WAITING.format(desc, when=humanize_seconds(interval, "in", " "), exc=exc))
            if errback:
                errback(exc, interval, retries)
            return interval

        return self.retry_over_time(fun, catch, args=args, kwargs=kwargs or {}, errback=on_error,
                                    max_retries=max_retries, interval_start=interval_start,
                                    interval_step=interval_step, interval_max=interval_max, **options)

    def ensure_not_for_a_while(self, fun: Callable, catch: Any, desc: str = "thing", max_retries: int = 20,
                               interval_start: float = 0.1, interval_step: float = 0.02, interval_max: float = 1.0,
                               emit_warning: bool = False, **options: Any) -> None:
        """Make sure something does not happen (at least for a while)."""
        try:
            self.wait_for(fun, catch, desc=desc, max_retries=max_retries, interval_start=interval_start,
                          interval_step=interval_step, interval_max=interval_max, emit_warning=emit_warning)
        except catch:
            pass
        else:
            raise AssertionError(f"Should not have happened: {desc}")

    def retry_over_time(self, *args: Any, **kwargs: Any) -> Any:
        return retry_over_time(*args, **kwargs)

    def join(self, r: Any, propagate: bool = False, max_retries: int = 10, **kwargs: Any) -> Any:
        if self.no_join:
            return None
        if not isinstance(r, ResultSet):
            r = ResultSet([r], app=self.app)
        received: list[str] = []

        def on_result(task_id: str, value: Any) -> None:
            received.append(task_id)

        for _ in range(max_retries) if max_retries else count(0):
            received[:] = []
            try:
                return r.get(callback=on_result, propagate=propagate, **kwargs)
            except TimeoutError as exc:
                waiting_for = self.missing_results(r)
                self.remark(f"Still waiting for {len(r) - len(received)}/{len(r)}: [{', '.join(waiting_for)}]: "
                            f"{exc!r}", "!")
            except self.connerrors as exc:
                self.remark(f"join: connection lost: {exc!r}", "!")
        raise AssertionError("Test failed: Missing task results")

    def inspect(self, timeout: float = 3.0) -> Any:
        return self.app.control.inspect(timeout=timeout)

    def query_tasks(self, ids: Sequence[str], timeout: float = 0.5) -> Iterator[tuple[str, dict]]:
        tasks = self.inspect(timeout).query_task(*ids) or {}
        yield from tasks.items()

    def query_task_states(self, ids: Sequence[str], timeout: float = 0.5) -> dict[str, set]:
        found: dict[str, set] = defaultdict(set)
        for _hostname, reply in self.query_tasks(ids, timeout=timeout):
            for task_id, (state, _) in reply.items():
                found[state].add(task_id)
        return found

    def assert_accepted(self, ids: Sequence[str], interval: float = 0.5,
                        desc: str = "waiting for tasks to be accepted", **policy: Any) -> Any:
        return self.assert_task_worker_state(self.is_accepted, ids, interval=interval, desc=desc, **policy)

    def assert_received(self, ids: Sequence[str], interval: float = 0.5,
                        desc: str = "waiting for tasks to be received", **policy: Any) -> Any:
        return self.assert_task_worker_state(self.is_received, ids, interval=interval, desc=desc, **policy)

    def assert_result_tasks_in_progress_or_completed(self, async_results: Sequence, interval: float = 0.5,
                                                     desc: str = "waiting for tasks to be started or completed",
                                                     **policy: Any) -> Any:
        return self.assert_task_state_from_result(self.is_result_task_in_progress, async_results,
                                                  interval=interval, desc=desc, **policy)

    def assert_task_state_from_result(self, fun: Callable, results: Sequence, interval: float = 0.5,
                                      **policy: Any) -> Any:
        return self.wait_for(partial(self.true_or_raise, fun, results, timeout=interval), (Sentinel,), **policy)

    @staticmethod
    def is_result_task_in_progress(results: Sequence, **kwargs: Any) -> bool:
        return all(result.state in (states.STARTED, states.SUCCESS) for result in results)

    def assert_task_worker_state(self, fun: Callable, ids: Sequence[str], interval: float = 0.5,
                                 **policy: Any) -> Any:
        return self.wait_for(partial(self.true_or_raise, fun, ids, timeout=interval), (Sentinel,), **policy)

    def is_received(self, ids: Sequence[str], **kwargs: Any) -> bool:
        return self._ids_matches_state(["reserved", "active", "ready"], ids, **kwargs)

    def is_accepted(self, ids: Sequence[str], **kwargs: Any) -> bool:
        return self._ids_matches_state(["active", "ready"], ids, **kwargs)

    def _ids_matches_state(self, expected_states: Sequence[str], ids: Sequence[str], timeout: float = 0.5) -> bool:
        found = self.query_task_states(ids, timeout=timeout)
        return all(any(t in s for s in [found[k] for k in expected_states]) for t in ids)

    def true_or_raise(self, fun: Callable, *args: Any, **kwargs: Any) -> Any:
        res = fun(*args, **kwargs)
        if not res:
            raise Sentinel()
        return res

    def wait_until_idle(self) -> None:
        """Empty the queue, then wait until no worker runs a task (the next test starts clean)."""
        control = self.app.control
        while control.purge():
            pass
        inspect = control.inspect()
        while sum(len(tasks) for tasks in (inspect.active() or {}).values()):
            time.sleep(0.05)


class Manager(ManagerMixin):
    """Test helpers for task integration tests."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self.app = app
        self._init_manager(**kwargs)
