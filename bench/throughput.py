"""End to end against the peers: throughput, latency, Redis commands per task, memory.

Run: ``make bench`` (or ``.venv/bin/python -m bench.throughput``). One Redis on a free port,
then, on the same no-op task with its result stored in Redis and repetitions as the outer
loop (so drift on this shared machine hits every system alike):

* throughput: N tasks enqueued in a loop while 2 work processes run, until every result
  exists: ``python worker.py -c 2`` (prefork, the default), ``-P fork``, the stock
  ``rq worker`` x2, ``rq worker -w SimpleWorker`` x2, and Celery ``-P prefork -c 2``;
* Redis commands per task (``INFO commandstats``, Lua-internal calls included);
* latency: submit -> result of sequential tasks through one idle work process, each waited
  for with the system's own API (``AsyncResult.get``, ``Job.latest_result``);
* memory: RSS of a work process every 10,000 tasks over ``--memory-tasks`` tasks.

Medians (min-max) and ratios to Celery measured in the same run. Absolute numbers depend
on the machine: quote ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from rq import Queue, Worker
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer

from bench.compat_overhead import commands_processed, median_range, run_on_own_redis, stop_processes

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def ours(*flags: str) -> list[list[str]]:
    return [[sys.executable, "worker.py", "-A", "bench.noop_tasks", "-l", "WARNING", *flags]]


SYSTEMS = {
    "worker.py -c 2 (prefork)": ("ours", ours("-c", "2")),
    "worker.py -c 2 -P fork": ("ours", ours("-c", "2", "-P", "fork")),
    "rq worker x2 (fork)": ("rq", [[str(BIN / "rq"), "worker", "-q", "--serializer", "json", "rawrq"]] * 2),
    "rq worker -w SimpleWorker x2": ("rq", [[str(BIN / "rq"), "worker", "-q", "--serializer", "json", "-w",
                                             "rq.worker.SimpleWorker", "rawrq"]] * 2),
    "celery -P prefork -c 2": ("celery", [[str(BIN / "celery"), "-A", "bench.celery_tasks", "worker", "-P", "prefork",
                                           "-c", "2", "--loglevel", "WARNING"]]),
}
LATENCY = {
    "worker.py -c 1 (prefork)": ("ours", ours("-c", "1")),
    "rq worker -w SimpleWorker": ("rq", [[str(BIN / "rq"), "worker", "-q", "--serializer", "json", "-w",
                                          "rq.worker.SimpleWorker", "rawrq"]]),
    "celery -P prefork -c 1": ("celery", [[str(BIN / "celery"), "-A", "bench.celery_tasks", "worker", "-P", "prefork",
                                           "-c", "1", "--loglevel", "WARNING"]]),
}


class Workers:
    """Worker processes of one system, started on our Redis and stopped afterwards."""

    def __init__(self, kind: str, commands: list[list[str]], url: str) -> None:
        self.kind, self.url = kind, url
        env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}
        self.processes = []
        for command in commands:
            if kind != "celery":
                command = [*command, "-u", url]
            self.processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL, start_new_session=True))

    def wait_ready(self, conn: redis.Redis, count: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.kind == "celery":
                from bench import celery_tasks

                if len(celery_tasks.app.control.ping(timeout=0.5) or []) >= 1:
                    return
            elif Worker.count(connection=conn) >= count:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} workers did not start")

    def stop(self) -> None:
        stop_processes(self.processes)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def submitter(kind: str, url: str):
    """A function that submits one no-op task and returns a handle, for each system."""
    if kind == "ours":
        from bench import noop_tasks

        noop_tasks.app.conf.broker_url = url
        return noop_tasks.noop.delay
    if kind == "celery":
        from bench import celery_tasks

        return celery_tasks.noop.delay
    from bench.plain_tasks import plain_noop

    queue = Queue("rawrq", connection=redis.Redis.from_url(url), serializer=JSONSerializer)
    return lambda x: queue.enqueue(plain_noop, x)


def all_done(kind: str, conn: redis.Redis, ids: list[str]) -> bool:
    if kind == "rq":
        return FinishedJobRegistry("rawrq", connection=conn).count >= len(ids)
    # Tasks finish roughly in order: wait for the last one cheaply, then check them all once.
    if not conn.exists(f"celery-task-meta-{ids[-1]}"):
        return False
    return conn.exists(*(f"celery-task-meta-{task_id}" for task_id in ids)) >= len(ids)


def run_throughput(label: str, url: str, conn: redis.Redis, tasks: int) -> tuple[float, float]:
    kind, commands = SYSTEMS[label]
    conn.flushdb()
    with Workers(kind, commands, url) as workers:
        workers.wait_ready(conn, 2)
        submit = submitter(kind, url)
        before = commands_processed(conn)
        started = time.perf_counter()
        ids = [submit(i).id for i in range(tasks)]
        while not all_done(kind, conn, ids):
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        # The polling above (one EXISTS or ZCARD every 10 ms) is ours, not the system's.
        polls = elapsed / 0.01
        per_task = (commands_processed(conn) - before - polls) / tasks
        return tasks / elapsed, per_task


def run_latency(label: str, url: str, conn: redis.Redis, count: int) -> float:
    kind, commands = LATENCY[label]
    conn.flushdb()
    with Workers(kind, commands, url) as workers:
        workers.wait_ready(conn, 1)
        submit = submitter(kind, url)
        samples = []
        for i in range(count + 10):
            started = time.perf_counter()
            handle = submit(i)
            if kind == "rq":
                handle.latest_result(timeout=10)
            else:
                handle.get(timeout=10)
            if i >= 10:  # warm-up
                samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)


def run_memory(url: str, conn: redis.Redis, tasks: int) -> list[float]:
    conn.flushdb()
    rss = []
    with Workers("ours", ours("-c", "1"), url) as workers:
        workers.wait_ready(conn, 1)
        child = int(Worker.all(connection=conn)[0].pid)
        submit = submitter("ours", url)
        batch = 10_000
        for _ in range(tasks // batch):
            pipe_ids = [submit(i).id for i in range(batch)]
            while not all_done("ours", conn, pipe_ids[-1:]):
                time.sleep(0.05)
            rss.append(_rss_mb(child))
            conn.delete(*(f"celery-task-meta-{task_id}" for task_id in pipe_ids))
        return rss


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-tasks", type=int, default=200)
    parser.add_argument("--memory-tasks", type=int, default=100_000, help="0 to skip the memory check")
    options = parser.parse_args(argv)
    run_on_own_redis(report, options)


def report(server, options: argparse.Namespace) -> None:
    url = server.url
    conn = redis.Redis.from_url(url)
    print(f"{server.version()} on 127.0.0.1:{server.port}; {os.cpu_count()} cores; {options.tasks} no-op tasks; "
          f"medians (min-max) of {options.repeats} runs; run {uuid.uuid4().hex[:6]}\n")
    rates: dict[str, list[float]] = {label: [] for label in SYSTEMS}
    commands: dict[str, list[float]] = {label: [] for label in SYSTEMS}
    for _ in range(options.repeats):
        for label in SYSTEMS:
            rate, per_task = run_throughput(label, url, conn, options.tasks)
            rates[label].append(rate)
            commands[label].append(per_task)
    celery = statistics.median(rates["celery -P prefork -c 2"])
    print(f"{'throughput (2 work processes)':<32}{'tasks/s':>22}{'x Celery':>10}{'Redis cmds/task':>17}")
    for label in SYSTEMS:
        print(f"{label:<32}{median_range(rates[label]):>22}{statistics.median(rates[label]) / celery:>10.2f}"
              f"{statistics.median(commands[label]):>17.1f}")

    latencies = {label: [run_latency(label, url, conn, options.latency_tasks) for _ in range(options.repeats)]
                 for label in LATENCY}
    print(f"\n{'latency, submit -> result (idle)':<32}{'p50 ms':>22}")
    for label, samples in latencies.items():
        print(f"{label:<32}{median_range(samples):>22}")

    rss = run_memory(url, conn, options.memory_tasks) if options.memory_tasks else []
    if rss:
        print(f"\nmemory of one work process every 10,000 tasks (MB): {', '.join(f'{v:.1f}' for v in rss)}")
    print(json.dumps({"tasks_per_s": rates, "commands_per_task": commands, "latency_p50_ms": latencies,
                      "rss_mb": rss}))


if __name__ == "__main__":
    main()
