"""Chaos benchmark: 10,000 tasks while work processes and whole workers are killed, Redis restarts, a worker freezes.

Run: ``make chaos`` (or ``.venv/bin/python -m bench.chaos``; ``--tasks``, ``--rate``, ``--kills``).
It starts its own Redis (with AOF) and three workers (``-P prefork -c 2``, tests/chaos_tasks.py,
the default heartbeat unless ``--beat-interval``/``--beat-ttl``), submits tasks at ``--rate``
per second (one in ten not safe to repeat), and meanwhile:

* ``kill -9`` of a random work process, ``--kills`` times (its supervisor recovers its task);
* ``kill -9`` of a whole worker, twice (another worker's heartbeat sweep recovers its tasks;
  a replacement is started);
* a Redis restart (SIGTERM, AOF flushed, the same port);
* SIGSTOP of a whole worker for 3 heartbeat TTLs, then SIGCONT (its tasks are handed on; the
  resumed worker must write nothing for them).

Then it waits for every task and prints: lost (no final state), run twice (runs beyond 1 + the
task's redeliveries), re-run after a worker death (at-least-once, allowed), WorkerLostError
(tasks not safe to repeat whose worker died), final states overwritten (a state published after
a final one), and each fault's recovery time: from the fault until no task of the dead (or
frozen) worker is still claimed by it; for the Redis restart, until tasks complete again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from app.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent


class Cluster:
    """Redis and the workers under test, each worker in its own session (a "machine")."""

    def __init__(self, workdir: Path, beat_interval: float, beat_ttl: float) -> None:
        self.workdir = workdir
        self.redis = EmbeddedRedis(workdir / "redis", appendonly=True)
        self.redis.start()
        self.env = {**os.environ, "REDIS_URL": self.redis.url, "PYTHONPATH": str(ROOT),
                    "CHAOS_BEAT_INTERVAL": str(beat_interval), "CHAOS_BEAT_TTL": str(beat_ttl)}
        self.workers: list[subprocess.Popen] = []

    def start_worker(self) -> subprocess.Popen:
        log = (self.workdir / f"worker-{len(self.workers)}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "worker.py", "-A", "tests.chaos_tasks", "-P", "prefork", "-c", "2", "-l", "WARNING",
             "-u", self.redis.url], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        self.workers.append(process)
        return process

    def alive(self) -> list[subprocess.Popen]:
        return [process for process in self.workers if process.poll() is None]

    def stop(self) -> None:
        for process in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        self.redis.stop()


def claims_of(connection: redis.Redis, pids: set[int]) -> set[str]:
    """Started-registry entries of tasks claimed by workers whose process id is in ``pids``."""
    from rq import Worker

    from app.celery_compat import keys

    names = {worker.name.encode() for worker in Worker.all(connection=connection) if worker.pid in pids}
    entries = connection.zrange(keys.started("celery"), 0, -1)
    owners = [connection.hget(keys.job(entry.decode().split(":", 1)[0]), "worker_name") for entry in entries]
    return {entry.decode() for entry, owner in zip(entries, owners, strict=True) if owner in names}


def time_until_released(connection: redis.Redis, entries: set[str], limit: float = 120.0) -> float | None:
    """Seconds until none of ``entries`` is in the started registry any more (None: not within ``limit``)."""
    from app.celery_compat import keys

    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            held = {entry.decode() for entry in connection.zrange(keys.started("celery"), 0, -1)}
        except redis.exceptions.RedisError:
            held = entries
        if not entries & held:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def whole_worker_fault(cluster: Cluster, connection: redis.Redis, freeze: float | None) -> dict:
    """Kill -9 (or, with ``freeze`` seconds, SIGSTOP then SIGCONT) a whole worker; how long its tasks stayed claimed."""
    from tests.support_chaos import children_of

    victim = random.choice(cluster.alive())
    if freeze is None:
        cluster.start_worker()  # the machine's replacement
    time.sleep(2.0)  # the replacement registers; the victim takes tasks meanwhile
    pids = {victim.pid, *children_of(victim.pid)}
    os.killpg(victim.pid, signal.SIGSTOP if freeze else signal.SIGKILL)
    entries = claims_of(connection, pids)  # what it held when it stopped (its registrations outlive it a while)
    released = time_until_released(connection, entries)
    if freeze:
        time.sleep(max(0.0, freeze - (released or freeze)))
        os.killpg(victim.pid, signal.SIGCONT)
    return {"fault": "SIGSTOP whole worker" if freeze else "kill -9 whole worker", "tasks_claimed": len(entries),
            "recovered_after_s": None if released is None else round(released, 1)}


def work_process_fault(cluster: Cluster, connection: redis.Redis) -> dict:
    from tests.support_chaos import children_of

    supervisor = random.choice(cluster.alive())
    victims = children_of(supervisor.pid)
    if not victims:
        return {"fault": "kill -9 work process", "tasks_claimed": 0, "recovered_after_s": None}
    victim = random.choice(victims)
    entries = claims_of(connection, {victim})
    with contextlib.suppress(ProcessLookupError):
        os.kill(victim, signal.SIGKILL)
    released = time_until_released(connection, entries)
    return {"fault": "kill -9 work process", "tasks_claimed": len(entries),
            "recovered_after_s": None if released is None else round(released, 3)}


def redis_restart_fault(cluster: Cluster, connection: redis.Redis) -> dict:
    """Stop Redis (its AOF flushed), start it again on the same port; seconds until tasks complete again."""
    from tests import chaos_tasks

    started = time.monotonic()
    cluster.redis.stop()
    time.sleep(1.0)
    cluster.redis.start()
    before = sum(int(count) for count in connection.hvals(chaos_tasks.DONE))
    while time.monotonic() - started < 120:
        with contextlib.suppress(redis.exceptions.RedisError):
            if sum(int(count) for count in connection.hvals(chaos_tasks.DONE)) > before:
                break
        time.sleep(0.1)
    return {"fault": "Redis restart (AOF)", "recovered_after_s": round(time.monotonic() - started, 1)}


def submit_all(app, count: int, rate: float, ids: list[str], failures: list[str]) -> None:
    """Submit ``count`` tasks at ``rate`` per second; a submit refused while Redis restarts is tried again."""
    from tests import chaos_tasks

    chance = random.Random(18)
    started = time.monotonic()
    for index in range(count):
        time.sleep(max(0.0, started + index / rate - time.monotonic()))
        while True:
            try:
                if index % 10 == 0:
                    result = chaos_tasks.counted_once.delay(0.05)
                else:
                    result = chaos_tasks.counted.delay(chance.uniform(0.01, 0.1), 2)
                ids.append(result.id)
                break
            except redis.exceptions.RedisError as exc:
                failures.append(str(exc))
                time.sleep(0.2)


def verdict(app, connection: redis.Redis, ids: list[str], log, timeout: float) -> dict:
    """Wait for every task's final state, then count what went wrong."""
    from tests import chaos_tasks
    from tests.support_chaos import final_or_none, redelivered

    deadline = time.monotonic() + timeout
    finals: dict[str, str | None] = {}
    while time.monotonic() < deadline:
        finals = {}
        for start in range(0, len(ids), 1000):
            finals.update(final_or_none(app, ids[start:start + 1000]))
        if all(finals.values()):
            break
        time.sleep(1.0)
    runs = {key.decode(): int(value) for key, value in connection.hgetall(chaos_tasks.RUNS).items()}
    redeliveries = {task_id: redelivered(connection, task_id) for task_id in ids if runs.get(task_id, 0) > 1}
    return {
        "tasks": len(ids),
        "lost": sum(status is None for status in finals.values()),
        "run_twice": sum(runs[task_id] > 1 + count for task_id, count in redeliveries.items()),
        "rerun_after_worker_death": sum(runs[task_id] - 1 for task_id in redeliveries),
        "worker_lost_error": sum(status == "FAILURE" for status in finals.values()),
        "final_states_overwritten": len(log.overwritten()),
    }


def run(options: argparse.Namespace) -> dict:
    from tests import chaos_tasks
    from tests.support_chaos import StateLog

    with tempfile.TemporaryDirectory(prefix="chaos-") as workdir:
        cluster = Cluster(Path(workdir), options.beat_interval, options.beat_ttl)
        try:
            app = chaos_tasks.app
            app.conf.broker_url = cluster.redis.url
            connection = redis.Redis.from_url(cluster.redis.url, socket_timeout=5)
            for _ in range(3):
                cluster.start_worker()
            time.sleep(3.0)
            log = StateLog(redis.Redis.from_url(cluster.redis.url))
            ids: list[str] = []
            refused: list[str] = []
            started = time.monotonic()
            submitter = threading.Thread(target=submit_all, args=(app, options.tasks, options.rate, ids, refused))
            submitter.start()
            faults = run_faults(cluster, connection, options)
            submitter.join()
            result = verdict(app, connection, ids, log, timeout=300)
            log.close()
            result.update(elapsed_s=round(time.monotonic() - started, 1), submits_refused=len(refused), faults=faults)
            return result
        finally:
            cluster.stop()


def run_faults(cluster: Cluster, connection: redis.Redis, options: argparse.Namespace) -> list[dict]:
    """The fault schedule, spread over the submission: work process kills, then the bigger faults among them."""
    plan = ["process"] * options.kills
    for position, fault in zip((3, 7, 11, 15), ("whole", "redis", "freeze", "whole"), strict=True):
        plan.insert(min(position, len(plan)), fault)
    spacing = options.tasks / options.rate / (len(plan) + 1)
    faults = []
    for fault in plan:
        time.sleep(spacing)
        try:
            if fault == "process":
                faults.append(work_process_fault(cluster, connection))
            elif fault == "whole":
                faults.append(whole_worker_fault(cluster, connection, None))
            elif fault == "freeze":
                faults.append(whole_worker_fault(cluster, connection, 3 * options.beat_ttl))
            else:
                faults.append(redis_restart_fault(cluster, connection))
        except redis.exceptions.RedisError as exc:
            faults.append({"fault": fault, "error": str(exc)})
        print(json.dumps(faults[-1]), flush=True)
    return faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0, help="submits per second")
    parser.add_argument("--kills", type=int, default=16, help="kill -9 of single work processes")
    parser.add_argument("--beat-interval", type=float, default=2.0)
    parser.add_argument("--beat-ttl", type=float, default=7.0)
    options = parser.parse_args()
    result = run(options)
    faults = result.pop("faults")
    print()
    for key, value in result.items():
        print(f"{key:>26}: {value}")
    for kind in sorted({fault["fault"] for fault in faults}):
        times = [fault["recovered_after_s"] for fault in faults
                 if fault["fault"] == kind and fault.get("recovered_after_s") is not None]
        print(f"{kind:>26}: {len(times)} recoveries, max {max(times, default=0)} s, "
              f"mean {sum(times) / len(times) if times else 0:.2f} s")
    print(json.dumps({**result, "faults": faults}))


if __name__ == "__main__":
    main()
