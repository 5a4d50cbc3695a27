"""The Queues page's data: each queue's lists now and over time, and per task name its throughput and run time.

All of it is read from what the workers keep (:mod:`app.celery_compat.series`): a page costs
three round trips, and the last day's graphs read 96 small hashes, whatever the traffic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from app.celery_compat import series, view
from app.web.charts import Chart, iso, stacked

#: What a queue's "length" is made of, in the order the page shows them.
PARTS = view.QUEUE_PARTS
WINDOWS = {"hour": 3600, "day": 24 * 3600}


@dataclass(frozen=True)
class QueueNow:
    name: str
    lengths: dict[str, int]


@dataclass(frozen=True)
class TaskCharts:
    name: str
    done: int
    failed: int
    mean_runtime: float | None
    throughput: Chart
    runtime: Chart
    #: Both graphs' values, one row per bucket with tasks in it: (start, succeeded, failed, retried, mean run time).
    rows: list[tuple[str, int, int, int, str]]


def queue_names(conn: redis.Redis) -> list[str]:
    return view.rq_queue_names(conn)


def lengths_now(conn: redis.Redis, names: list[str]) -> list[QueueNow]:
    """Every queue's list and registries, counted in one round trip."""
    return [QueueNow(name, parts) for name, parts in view.queue_parts(conn, names).items()]


def length_charts(conn: redis.Redis, names: list[str], window: str, now: float | None = None) -> list[Chart]:
    """Per queue, its waiting and running tasks at each sampled minute of the window."""
    now = time.time() if now is None else now
    samples = series.read_queue_lengths(conn, names, now - WINDOWS[window])
    step = series.RESOLUTIONS[window].step
    charts = []
    for name in names:
        # The last sample of each bucket stands for it: a day's graph keeps 96 bars, not 1,440.
        by_bucket = {series.bucket_start(sample.minute, step): sample for sample in samples[name]}
        starts = _starts(window, now)
        values = [(float(by_bucket[start].queued), float(by_bucket[start].started)) if start in by_bucket
                  else (0.0, 0.0) for start in starts]
        charts.append(stacked(f"length-{name}", f"Queue {name}: tasks waiting and running", starts, values,
                              ("queued", "started"), fmt=lambda value: f"{value:.0f}"))
    return charts


def _starts(window: str, now: float) -> list[int]:
    resolution = series.RESOLUTIONS[window]
    last = series.bucket_start(now, resolution.step)
    return [last - resolution.step * back for back in range(resolution.points - 1, -1, -1)]


def task_charts(conn: redis.Redis, window: str, now: float | None = None) -> list[TaskCharts]:
    """Per task name: tasks ended per bucket (succeeded, failed, retried) and their mean run time."""
    found = []
    for name, points in series.read_series(conn, window, now).items():
        starts = [point.start for point in points]
        done = sum(point.done for point in points)
        seconds = sum(point.seconds for point in points)
        found.append(TaskCharts(
            name=name, done=done, failed=sum(point.failed for point in points),
            mean_runtime=seconds / done if done else None,
            throughput=stacked(f"throughput-{name}", f"{name}: tasks ended", starts,
                               [(point.succeeded, point.failed, point.retried) for point in points],
                               ("succeeded", "failed", "retried"), fmt=lambda value: f"{value:.0f}"),
            runtime=stacked(f"runtime-{name}", f"{name}: mean run time (s)", starts,
                            [(point.mean_runtime or 0.0,) for point in points], ("runtime",),
                            fmt=_seconds),
            rows=[(iso(point.start), point.succeeded, point.failed, point.retried, _seconds(point.mean_runtime))
                  for point in points if point.mean_runtime is not None],
        ))
    return found


def _seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
