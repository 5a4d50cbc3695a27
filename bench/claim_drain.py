"""The worker's own cost per task: a queue of no-op tasks drained by ``worker.py -c 2``, A/B between trees.

Run: ``.venv/bin/python -m bench.claim_drain [--tasks 2000] [--rounds 5] [--tree before=/path/to/other/checkout]``
(this checkout is ``after``; with no ``--tree``, only it runs). One Redis of our own; each round,
for each tree in turn (so drift on this shared machine hits both alike): start ``python worker.py
-c 2`` from that tree, wait until both work processes are registered, stop them (SIGSTOP), send
the tasks (so the sender's cost is not in the figures), let them go and time the drain until every
result exists. Prints tasks/s (wall) and the work processes' CPU per task (user + system from
``/proc``, which a busy neighbour on the machine does not inflate the way it stretches wall time).

Profile the work process: ``.venv/bin/python -m bench.claim_drain --profile out.prof`` drains once
through ``-P solo --burst`` under cProfile (``python -m pstats out.prof``).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis
from rq import Worker

from bench.compat_overhead import median_range, run_on_own_redis, stop_processes, wait_for_workers

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_worker(tree: Path, url: str, *flags: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    command = [sys.executable, *prefix, "worker.py", "-A", "bench.noop_tasks", "-l", "WARNING", "-u", url, *flags]
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(tree)}
    return subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def send(url: str, count: int) -> list[str]:
    from bench import noop_tasks

    noop_tasks.app.conf.broker_url = url
    return [noop_tasks.noop.delay(i).id for i in range(count)]


def wait_done(conn: redis.Redis, ids: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not conn.exists(f"celery-task-meta-{ids[-1]}"):
        if time.monotonic() > deadline:
            raise RuntimeError("the drain did not finish")
        time.sleep(0.005)
    while conn.exists(*(f"celery-task-meta-{task_id}" for task_id in ids)) < len(ids):
        time.sleep(0.005)


def drain_once(tree: Path, url: str, conn: redis.Redis, tasks: int) -> tuple[float, float]:
    """(tasks/s, work processes' CPU ms per task) for one drain through ``worker.py -c 2`` of ``tree``."""
    conn.flushdb()
    process = start_worker(tree, url, "-c", "2")
    try:
        wait_for_workers(conn, 2, 60, f"the workers of {tree}")
        time.sleep(0.3)  # past their first beat and maintenance
        pids = [int(worker.pid) for worker in Worker.all(connection=conn)]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            ids = send(url, tasks)
            cpu = sum(cpu_seconds(pid) for pid in pids)
        finally:
            started = time.perf_counter()
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        wait_done(conn, ids)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu
        return tasks / elapsed, cpu / tasks * 1000
    finally:
        stop_processes([process])


def report(server, options: argparse.Namespace) -> None:
    conn = redis.Redis.from_url(server.url)
    trees = dict(tree.split("=", 1) for tree in options.tree)
    trees["after"] = str(ROOT)
    rates: dict[str, list[float]] = {name: [] for name in trees}
    cpus: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(options.rounds):
        for name, tree in trees.items():
            rate, cpu = drain_once(Path(tree), server.url, conn, options.tasks)
            rates[name].append(rate)
            cpus[name].append(cpu)
            print(f"  {name}: {rate:,.0f} tasks/s, {cpu:.3f} ms CPU/task", flush=True)
    print(f"drain of {options.tasks} no-op tasks by worker.py -c 2, medians (min-max) of {options.rounds}")
    for name in trees:
        cpu = f"{statistics.median(cpus[name]):.3f} ({min(cpus[name]):.3f}-{max(cpus[name]):.3f})"
        print(f"  {name:<8}{median_range(rates[name]):>26} tasks/s {cpu:>22} ms CPU/task")
    if len(trees) > 1:
        first = next(iter(trees))
        print(f"  after/{first}: {statistics.median(rates['after']) / statistics.median(rates[first]):.2f}x tasks/s,"
              f" {statistics.median(cpus['after']) / statistics.median(cpus[first]):.2f}x CPU/task")


def profile(server, options: argparse.Namespace) -> None:
    conn = redis.Redis.from_url(server.url)
    conn.flushdb()
    send(server.url, options.tasks)
    process = start_worker(ROOT, server.url, "-P", "solo", "--burst", prefix=("-m", "cProfile", "-o", options.profile))
    process.wait(timeout=600)
    print(f"profile of {options.tasks} tasks through -P solo --burst in {options.profile}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of another checkout to compare")
    parser.add_argument("--profile", help="write a cProfile of one -P solo drain to this file instead")
    options = parser.parse_args(argv)
    run_on_own_redis(profile if options.profile else report, options)


if __name__ == "__main__":
    main()
