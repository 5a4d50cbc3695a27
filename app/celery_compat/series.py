"""Time series for the monitor's graphs: tasks done and their run time per time bucket, and queue lengths.

Workers count in memory and flush with their heartbeat (as :mod:`.stats` does), so a task costs no
Redis command of its own: each flush adds, per task name seen, a few increments to the bucket of
each resolution. Every bucket is one hash with a TTL, so the whole costs a bounded amount of
memory whatever the traffic:

* ``hour``: one-minute buckets, kept two hours (the last hour's graph reads 60 hashes);
* ``day``: fifteen-minute buckets, kept 26 hours (the last day's graph reads 96).

Queue lengths are sampled once a minute by whichever worker takes that minute's claim first
(``SET NX``), into one sorted set per queue trimmed to a day.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from . import keys


@dataclass(frozen=True)
class Resolution:
    """Buckets of ``step`` seconds; ``points`` of them make the graph; each is kept ``keep`` seconds."""

    step: int
    points: int
    keep: int


RESOLUTIONS: dict[str, Resolution] = {
    "hour": Resolution(step=60, points=60, keep=2 * 3600),
    "day": Resolution(step=900, points=96, keep=26 * 3600),
}
#: The counters of a bucket, per task name (a field is ``<counter>|<task name>``).
COUNTERS = ("succeeded", "failed", "retried", "seconds")
SAMPLE_STEP = 60
SAMPLES_KEPT = 24 * 3600


def bucket_start(moment: float, step: int) -> int:
    return int(moment // step) * step


class TaskSeries:
    """What one worker process observed since its last flush, by bucket and task name."""

    def __init__(self) -> None:
        # (step, bucket start) -> field -> amount
        self.buckets: defaultdict[tuple[int, int], defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))

    def observe(self, name: str, seconds: float, outcome: str, now: float | None = None) -> None:
        """Count one task that ended with ``outcome`` ("succeeded", "failed", "retried") after ``seconds``."""
        now = time.time() if now is None else now
        for resolution in RESOLUTIONS.values():
            fields = self.buckets[(resolution.step, bucket_start(now, resolution.step))]
            fields[f"{outcome}|{name}"] += 1
            fields[f"seconds|{name}"] += seconds

    def flush(self, pipe: Any) -> None:
        """Queue the increments on ``pipe`` (with each bucket's TTL) and start counting afresh."""
        buckets, self.buckets = self.buckets, defaultdict(lambda: defaultdict(float))
        keep = {resolution.step: resolution.keep for resolution in RESOLUTIONS.values()}
        for (step, start), fields in buckets.items():
            key = keys.series(step, start)
            for field, value in fields.items():
                if field.startswith("seconds|"):
                    pipe.hincrbyfloat(key, field, round(value, 6))
                else:
                    pipe.hincrby(key, field, int(value))
            pipe.expire(key, keep[step])


@dataclass(frozen=True)
class Point:
    """One bucket of one task name: when it starts (epoch seconds) and what ended in it."""

    start: int
    succeeded: int
    failed: int
    retried: int
    seconds: float

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.retried

    @property
    def mean_runtime(self) -> float | None:
        return self.seconds / self.done if self.done else None


def read_series(connection: Any, window: str, now: float | None = None) -> dict[str, list[Point]]:
    """Per task name, the buckets of the last hour or day (``window``), oldest first; one round trip."""
    resolution = RESOLUTIONS[window]
    now = time.time() if now is None else now
    last = bucket_start(now, resolution.step)
    starts = [last - resolution.step * back for back in range(resolution.points - 1, -1, -1)]
    with connection.pipeline(transaction=False) as pipe:
        for start in starts:
            pipe.hgetall(keys.series(resolution.step, start))
        replies = pipe.execute()
    by_name: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for start, fields in zip(starts, replies, strict=True):
        for field, value in fields.items():
            counter, _, name = field.decode().partition("|")
            if counter in COUNTERS and name:
                by_name[name].setdefault(start, {})[counter] = float(value)
    return {name: [_point(start, buckets.get(start, {})) for start in starts]
            for name, buckets in sorted(by_name.items())}


def _point(start: int, counters: dict[str, float]) -> Point:
    return Point(start, int(counters.get("succeeded", 0)), int(counters.get("failed", 0)),
                 int(counters.get("retried", 0)), counters.get("seconds", 0.0))


# -- queue lengths -------------------------------------------------------------------------------
def sample_queues(connection: Any, now: float | None = None) -> bool:
    """Record every queue's length (waiting, running) for this minute, unless another worker did.

    Three round trips, once a minute, by one worker of the whole cluster.
    """
    now = time.time() if now is None else now
    minute = bucket_start(now, SAMPLE_STEP)
    if not connection.set(keys.queue_sample_claim(minute), 1, nx=True, ex=2 * SAMPLE_STEP):
        return False
    names = sorted(keys.queue_name(key.decode()) for key in connection.smembers(keys.QUEUES))
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(keys.queue(name))
            pipe.zcard(keys.started(name))
        lengths = pipe.execute()
    with connection.pipeline(transaction=False) as pipe:
        for index, name in enumerate(names):
            key = keys.queue_lengths(name)
            pipe.zadd(key, {f"{minute}:{lengths[2 * index]}:{lengths[2 * index + 1]}": minute})
            pipe.zremrangebyscore(key, "-inf", minute - SAMPLES_KEPT)
            pipe.expire(key, SAMPLES_KEPT)
        pipe.execute()
    return True


@dataclass(frozen=True)
class Sample:
    """A queue's length at a minute: tasks waiting in its list, and tasks running (its started registry)."""

    minute: int
    queued: int
    started: int


def read_queue_lengths(connection: Any, queue_names: list[str], since: float) -> dict[str, list[Sample]]:
    """Each queue's samples since ``since`` (epoch seconds), oldest first; one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        for name in queue_names:
            pipe.zrangebyscore(keys.queue_lengths(name), since, "+inf")
        replies = pipe.execute()
    found = {}
    for name, members in zip(queue_names, replies, strict=True):
        samples = []
        for member in members:
            minute, queued, started = member.decode().split(":")
            samples.append(Sample(int(minute), int(queued), int(started)))
        found[name] = samples
    return found
