"""What the Celery adapter costs on top of raw RQ, measured side by side on one Redis.

Run: ``make bench`` (or ``.venv/bin/python -m bench.compat_overhead``). It starts its own Redis
on a free port, then prints medians (min-max) and ratios of:

1. client cost of ``task.delay()`` vs ``Queue.enqueue`` (target: at most 1.15x),
2. ``AsyncResult(id).state`` vs ``Job.fetch(id).get_status()`` and Redis commands per read
   (target: one round trip),
3. end-to-end time for N no-op tasks through ``python worker.py`` vs the stock ``rq worker``.

The machine is shared and noisy: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer

from app.celery_compat.result import AsyncResult
from app.embedded_redis import EmbeddedRedis
from bench.plain_tasks import plain_noop

ROOT = Path(__file__).resolve().parent.parent


def start_redis(directory: str) -> EmbeddedRedis:
    binary = shutil.which("redis-server")
    server = EmbeddedRedis(directory, binary=binary) if binary else EmbeddedRedis(directory)
    server.start()
    return server


def run_on_own_redis(report: Callable[[EmbeddedRedis, argparse.Namespace], None],
                     options: argparse.Namespace) -> None:
    """Start a Redis of our own in a temporary directory, point REDIS_URL at it, report, stop it."""
    with tempfile.TemporaryDirectory() as directory:
        server = start_redis(directory)
        os.environ["REDIS_URL"] = server.url
        try:
            report(server, options)
        finally:
            server.stop()


def stop_processes(processes: list[subprocess.Popen], timeout: float = 30) -> None:
    """Terminate the processes a bench started, then kill the process group of any still running."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


def wait_for_workers(conn: redis.Redis, count: int, timeout: float, label: str) -> None:
    """Return once ``count`` RQ workers are registered; RuntimeError naming ``label`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while Worker.count(connection=conn) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: workers did not start")
        time.sleep(0.05)


def commands_processed(conn: redis.Redis) -> int:
    stats = conn.info("commandstats")
    return sum(value["calls"] for key, value in stats.items() if key not in ("cmdstat_info", "cmdstat_flushdb"))


def median_range(samples: list[float]) -> str:
    return f"{statistics.median(samples):,.1f} ({min(samples):,.1f}-{max(samples):,.1f})"


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_enqueue(conn: redis.Redis, count: int, repeats: int) -> dict:
    from bench import noop_tasks

    queue = Queue("rawrq", connection=conn, serializer=JSONSerializer)
    results: dict[str, list[float]] = {"delay": [], "enqueue": []}
    commands: dict[str, float] = {}
    for _ in range(repeats):  # repetitions outermost, so drift hits both alike
        for name, action in (("enqueue", lambda i: queue.enqueue(plain_noop, i)),
                             ("delay", lambda i: noop_tasks.noop.delay(i))):
            conn.flushdb()
            before = commands_processed(conn)
            seconds = timed(lambda action=action: [action(i) for i in range(count)])
            commands[name] = (commands_processed(conn) - before) / count
            results[name].append(seconds / count * 1e6)
    return {"us": results, "commands": commands}


def bench_state(conn: redis.Redis, count: int, repeats: int) -> dict:
    from bench import noop_tasks

    conn.flushdb()
    ids = [noop_tasks.noop.delay(i).id for i in range(count)]
    results: dict[str, list[float]] = {"AsyncResult.state": [], "Job.fetch.get_status": []}
    commands: dict[str, float] = {}
    readers = {
        "AsyncResult.state": lambda task_id: AsyncResult(task_id, app=noop_tasks.app).state,
        "Job.fetch.get_status": lambda task_id: Job.fetch(task_id, connection=conn,
                                                          serializer=JSONSerializer).get_status(),
    }
    for _ in range(repeats):
        for name, read in readers.items():
            before = commands_processed(conn)
            seconds = timed(lambda read=read: [read(task_id) for task_id in ids])
            commands[name] = (commands_processed(conn) - before) / count
            results[name].append(seconds / count * 1e6)
    return {"us": results, "commands": commands}


WORKERS = {
    "worker.py -c 2 -P fork": [[sys.executable, "worker.py", "-A", "bench.noop_tasks", "-c", "2", "-P", "fork",
                                "rawrq", "celery"]],
    "worker.py -c 2 (prefork)": [[sys.executable, "worker.py", "-A", "bench.noop_tasks", "-c", "2",
                                  "rawrq", "celery"]],
    "rq worker x2 (fork)": [["rq", "worker", "--serializer", "json", "rawrq", "celery"]] * 2,
    "rq worker -w SimpleWorker x2": [["rq", "worker", "--serializer", "json", "-w", "rq.worker.SimpleWorker",
                                      "rawrq", "celery"]] * 2,
}


def run_end_to_end(conn: redis.Redis, url: str, label: str, count: int) -> float:
    from bench import noop_tasks

    conn.flushdb()
    env = {**os.environ, "REDIS_URL": url, "RQ_REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    bin_dir = Path(sys.executable).parent
    processes = []
    for command in WORKERS[label]:
        command = [str(bin_dir / command[0])] + command[1:] if command[0] == "rq" else command
        if command[0].endswith("rq"):
            command = command[:2] + ["-u", url] + command[2:]
        else:
            command = command + ["-u", url]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
    try:
        wait_for_workers(conn, 2, 30, label)
        uses_adapter = label.startswith("worker.py")
        queue = Queue("rawrq", connection=conn, serializer=JSONSerializer)
        started = time.perf_counter()
        for i in range(count):
            if uses_adapter:
                noop_tasks.noop.delay(i)
            else:
                queue.enqueue(plain_noop, i)
        registry = FinishedJobRegistry("celery" if uses_adapter else "rawrq", connection=conn)
        while registry.count < count:
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def bench_end_to_end(conn: redis.Redis, url: str, count: int, repeats: int) -> dict:
    results: dict[str, list[float]] = {label: [] for label in WORKERS}
    for _ in range(repeats):
        for label in WORKERS:
            results[label].append(count / run_end_to_end(conn, url, label, count))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="calls per client measurement")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per end-to-end run")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args(argv)
    run_on_own_redis(report, options)


def report(server: EmbeddedRedis, options: argparse.Namespace) -> None:
    from bench import noop_tasks

    noop_tasks.app.conf.broker_url = server.url
    conn = redis.Redis.from_url(server.url)
    print(f"Redis: {server.version()} on port {server.port}; {os.cpu_count()} cores; "
          f"medians (min-max) of {options.repeats} runs\n")

    enqueue = bench_enqueue(conn, options.count, options.repeats)
    delay, raw = statistics.median(enqueue["us"]["delay"]), statistics.median(enqueue["us"]["enqueue"])
    print(f"1. Client cost per call ({options.count} calls)")
    for name, label in (("enqueue", "Queue.enqueue"), ("delay", "task.delay()")):
        print(f"   {label:<21}{median_range(enqueue['us'][name])} us  {enqueue['commands'][name]:.1f} cmds")
    print(f"   ratio delay/enqueue  {delay / raw:.2f}x (target <= 1.15x)\n")

    state = bench_state(conn, options.count, options.repeats)
    ours, theirs = (statistics.median(state["us"][k]) for k in ("AsyncResult.state", "Job.fetch.get_status"))
    print("2. Reading a task's state")
    for name in state["us"]:
        print(f"   {name:<22}{median_range(state['us'][name])} us  {state['commands'][name]:.1f} cmds")
    print(f"   ratio                {ours / theirs:.2f}x\n")

    end_to_end = bench_end_to_end(conn, server.url, options.tasks, options.repeats)
    baseline = statistics.median(end_to_end["rq worker x2 (fork)"])
    print(f"3. End to end, {options.tasks} no-op tasks, tasks/s")
    for label, samples in end_to_end.items():
        print(f"   {label:<30}{median_range(samples)}  {statistics.median(samples) / baseline:.2f}x stock rq worker")
    print(json.dumps({"enqueue_us": enqueue["us"], "enqueue_cmds": enqueue["commands"], "state_us": state["us"],
                      "state_cmds": state["commands"], "end_to_end_tasks_per_s": end_to_end}))


if __name__ == "__main__":
    main()
