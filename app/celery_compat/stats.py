"""Task counters and run-time histograms, kept by the workers in one Redis hash for metrics.

Workers add up in memory and flush every few seconds with their heartbeat, so the figures
cost nothing per task; readers (``/metrics``, ``/healthz``) read one hash, never scan.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from typing import Any

from .keys import STATS_KEY as STATS_KEY

#: Upper bounds (seconds) of the run-time histogram's buckets; +Inf is implied.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
OUTCOMES = ("succeeded", "failed", "retried")
#: A worker node's task counts outlive a quiet day, not a node gone for good.
NODE_TOTALS_TTL = 7 * 86400


class TaskStats:
    """What one worker process observed since its last flush."""

    def __init__(self) -> None:
        self.fields: defaultdict[str, float] = defaultdict(float)
        self.last_dequeued_at: float | None = None

    def observe(self, name: str, seconds: float, outcome: str) -> None:
        self.last_dequeued_at = time.time()
        index = bisect.bisect_left(BUCKETS, seconds)
        bound = f"{BUCKETS[index]:g}" if index < len(BUCKETS) else "+Inf"
        fields = self.fields
        fields[f"bucket|{name}|{bound}"] += 1
        fields[f"sum|{name}"] += seconds
        fields[f"count|{name}"] += 1
        fields[f"{outcome}|{name}"] += 1

    def flush(self, pipe: Any, node_totals: str | None = None) -> None:
        """Queue the increments on ``pipe`` and start counting afresh.

        With ``node_totals`` (the key of a worker node's task counts), each task name's count is
        also added there: a prefork node's work processes count, its supervisor answers ``stats()``.
        """
        fields, self.fields = self.fields, defaultdict(float)
        for field, value in fields.items():
            if field.startswith("sum|"):
                pipe.hincrbyfloat(STATS_KEY, field, value)
            else:
                pipe.hincrby(STATS_KEY, field, int(value))
                if node_totals and field.startswith("count|"):
                    pipe.hincrby(node_totals, field.removeprefix("count|"), int(value))
        if node_totals and fields:
            pipe.expire(node_totals, NODE_TOTALS_TTL)
        if self.last_dequeued_at is not None:
            pipe.hset(STATS_KEY, "last_dequeued_at", self.last_dequeued_at)
            self.last_dequeued_at = None


def read_stats(connection: Any) -> dict[str, Any]:
    """Per task name: succeeded, failed, retried, sum, count, buckets {le: n}; and last_dequeued_at.

    Bucket counts are cumulative, as Prometheus wants them.
    """
    raw = {key.decode(): float(value) for key, value in connection.hgetall(STATS_KEY).items()}
    tasks: dict[str, dict[str, Any]] = {}
    for field, value in raw.items():
        kind, _, rest = field.partition("|")
        if not rest:
            continue
        if kind == "bucket":
            name, _, bound = rest.rpartition("|")
            tasks.setdefault(name, _empty())["buckets"][bound] += value
        else:
            tasks.setdefault(rest, _empty())[kind] = value
    for entry in tasks.values():
        running = 0.0
        cumulative = {}
        for bound in [f"{b:g}" for b in BUCKETS] + ["+Inf"]:
            running += entry["buckets"].get(bound, 0.0)
            cumulative[bound] = running
        entry["buckets"] = cumulative
    return {"tasks": tasks, "last_dequeued_at": raw.get("last_dequeued_at")}


def _empty() -> dict[str, Any]:
    return {"succeeded": 0.0, "failed": 0.0, "retried": 0.0, "sum": 0.0, "count": 0.0, "buckets": defaultdict(float)}
