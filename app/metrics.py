"""What ``/metrics`` reports, in Prometheus' text format.

Every figure comes from a fixed number of cheap reads (queue lengths, registry sizes, one
stats hash kept by the workers), so scraping stays fast with 100,000 tasks in Redis.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from rq import Worker

from app.celery_compat import view
from app.celery_compat.app.amqp import Priorities
from app.celery_compat.stats import read_stats


class RedisCollector:
    """A Prometheus collector reading the queues and the workers' stats from Redis at scrape time."""

    def __init__(self, connection: Any, priorities: Priorities | None = None) -> None:
        self.connection = connection
        self.priorities = priorities or Priorities()

    def _counts(self) -> dict[str, list[int]]:
        """Per queue: its length and registry sizes, summed over its priority lists (RQ queues of their own)."""
        lists = view.queue_parts(self.connection, view.rq_queue_names(self.connection))
        by_queue: dict[str, list[int]] = {}
        for name, parts in lists.items():
            total = by_queue.setdefault(self.priorities.queue_of(name), [0] * len(view.QUEUE_PARTS))
            total[:] = [a + b for a, b in zip(total, parts.values(), strict=True)]
        return dict(sorted(by_queue.items()))

    def collect(self) -> Iterator[Any]:
        length = GaugeMetricFamily("jobs_queue_length", "Tasks waiting in a queue.", labels=["queue"])
        by_state = GaugeMetricFamily("jobs_tasks", "Tasks in each state, per queue.", labels=["queue", "state"])
        for name, row in self._counts().items():
            length.add_metric([name], row[0])
            by_state.add_metric([name, "queued"], row[0])
            for state, count in zip(view.QUEUE_PARTS[1:], row[1:], strict=True):
                by_state.add_metric([name, state], count)
        yield length
        yield by_state
        yield GaugeMetricFamily("jobs_workers", "Workers registered in Redis.",
                                value=Worker.count(connection=self.connection))
        yield from self._task_metrics(read_stats(self.connection))

    def _task_metrics(self, stats: dict[str, Any]) -> Iterator[Any]:
        outcomes = CounterMetricFamily("jobs_tasks_completed", "Task runs by outcome.", labels=["task", "outcome"])
        runtime = HistogramMetricFamily("jobs_task_runtime_seconds", "Run time of tasks.", labels=["task"])
        for name, entry in sorted(stats["tasks"].items()):
            for outcome in ("succeeded", "failed", "retried"):
                outcomes.add_metric([name, outcome], entry[outcome])
            runtime.add_metric([name], list(entry["buckets"].items()), sum_value=entry["sum"])
        yield outcomes
        yield runtime
        if stats["last_dequeued_at"] is not None:
            yield GaugeMetricFamily("jobs_seconds_since_last_dequeue", "Seconds since a worker last took a task.",
                                    value=max(0.0, time.time() - stats["last_dequeued_at"]))


def render(connection: Any, priorities: Priorities | None = None) -> bytes:
    """The metrics page for ``connection``'s Redis (``priorities``: how its queues' lists are named)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(connection, priorities))
    return generate_latest(registry)
