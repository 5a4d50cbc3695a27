"""Issue 19's table in one run: this project against stock RQ, Celery (and Huey when installed).

Run: ``make bench`` (or ``.venv/bin/python -m bench.peers``); ``BENCH_QUICK=1`` (or ``--quick``)
for a smoke check of a few hundred tasks. One Redis of our own on a free port; the same no-op
task with its result stored in Redis; repetitions are the outer loop, so drift on this shared
machine hits every system alike. For each system:

* drain: N tasks sent in a loop while 2 work processes run, until every result exists (tasks/s);
* Redis commands per task in that run (``INFO commandstats``, Lua-internal calls included, the
  bench's own polling taken out) and bytes of Redis per finished task (``used_memory`` after
  minus before, / N: job, result and registry entries as each system keeps them);
* the realistic flow: N ``.delay()`` then ``.get()`` on each, 2 work processes (tasks/s);
* latency: ``.delay(x).get()`` p50 through one idle work process (ms);
* enqueue: N sends from one client with no worker (sends/s).

Each system uses its own API: ``task.delay``/``AsyncResult.get`` here and in Celery,
``Queue.enqueue``/``Job.latest_result`` for RQ (``SimpleWorker``, its fastest stock worker, x2),
``task()``/``Result.get(blocking=True)`` for Huey (``-k process -w 2``). Medians (min-max) of
the repetitions and ratios to Celery measured in the same run; absolute numbers move with the
machine's load, quote the ratios. A JSON line at the end carries every sample.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rq import Queue, Worker
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer

from bench.compat_overhead import commands_processed, median_range, run_on_own_redis, stop_processes

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POLL = 0.01


@dataclass(frozen=True)
class System:
    """How to start one system's work processes and drive it from a client."""

    label: str
    kind: str  # ours, rq, celery, huey

    def command(self, processes: int, url: str) -> list[list[str]]:
        if self.kind == "ours":
            return [[sys.executable, "worker.py", "-A", "bench.noop_tasks", "-l", "WARNING", "-c", str(processes),
                     "-u", url]]
        if self.kind == "rq":
            return [[str(BIN / "rq"), "worker", "-q", "--serializer", "json", "-w", "rq.worker.SimpleWorker",
                     "-u", url, "rawrq"]] * processes
        if self.kind == "celery":
            return [[str(BIN / "celery"), "-A", "bench.celery_tasks", "worker", "-P", "prefork", "-c",
                     str(processes), "--loglevel", "WARNING"]]
        return [[sys.executable, "-m", "huey.bin.huey_consumer", "bench.huey_tasks.huey", "-q", "-k", "process",
                 "-w", str(processes)]]


SYSTEMS = [System("this project (worker.py)", "ours"), System("RQ 3.0 (SimpleWorker)", "rq"),
           System("Celery 5.7 (prefork)", "celery"), System("Huey 3.5 (process)", "huey")]


def available() -> list[System]:
    """The systems whose packages import here: Huey only when installed as a benchmark extra."""
    return [system for system in SYSTEMS if system.kind != "huey" or importlib.util.find_spec("huey")]


class Client:
    """One system's client side: send a task, wait for one, tell when N results exist."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.conn = kind, redis.Redis.from_url(url)
        if kind == "ours":
            from bench import noop_tasks

            noop_tasks.app.conf.broker_url = url
            self.send: Callable[[int], Any] = noop_tasks.noop.delay
        elif kind == "celery":
            from bench import celery_tasks

            self.send = celery_tasks.noop.delay
        elif kind == "rq":
            from bench.plain_tasks import plain_noop

            queue = Queue("rawrq", connection=self.conn, serializer=JSONSerializer)
            self.send = lambda x: queue.enqueue(plain_noop, x)
        else:
            from bench import huey_tasks

            self.send = huey_tasks.noop

    def get(self, handle: Any, timeout: float = 60) -> Any:
        if self.kind == "rq":
            return handle.latest_result(timeout=timeout)
        if self.kind == "huey":
            return handle.get(blocking=True, timeout=timeout)
        return handle.get(timeout=timeout)

    def finished(self, handles: list) -> bool:
        """Whether every handle's result exists (one or two cheap reads per poll)."""
        if self.kind == "rq":
            return FinishedJobRegistry("rawrq", connection=self.conn).count >= len(handles)
        if self.kind == "huey":
            return self.conn.hlen("huey.results.bench") >= len(handles)
        if not self.conn.exists(f"celery-task-meta-{handles[-1].id}"):
            return False  # tasks finish about in order: wait for the last one cheaply
        return self.conn.exists(*(f"celery-task-meta-{h.id}" for h in handles)) >= len(handles)


class Processes:
    """A system's work processes on our Redis, ready when they answer, stopped at the end."""

    def __init__(self, system: System, count: int, url: str) -> None:
        env = {**os.environ, "REDIS_URL": url,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.system, self.count = system, count
        self.processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True)
                          for command in system.command(count, url)]

    def __enter__(self) -> Processes:
        return self

    def wait_ready(self, client: Client) -> None:
        deadline = time.monotonic() + 90
        if self.system.kind == "huey":  # no worker registry: a task round trip proves the consumer runs
            client.get(client.send(-1), timeout=90)
            return
        while time.monotonic() < deadline:
            if self.system.kind == "celery":
                from bench import celery_tasks

                if celery_tasks.app.control.ping(timeout=0.5):
                    return
            elif Worker.count(connection=client.conn) >= (self.count if self.system.kind == "rq" else 1):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.system.label}: work processes did not start")

    def __exit__(self, *exc: object) -> None:
        stop_processes(self.processes)


def drain(system: System, url: str, tasks: int) -> dict[str, float]:
    """Tasks/s sending in a loop while 2 processes run; Redis commands and bytes per finished task."""
    client = Client(system.kind, url)
    client.conn.flushdb()
    with Processes(system, 2, url) as processes:
        processes.wait_ready(client)
        if system.kind == "huey":
            client.conn.delete("huey.results.bench")
        memory, commands = client.conn.info("memory")["used_memory"], commands_processed(client.conn)
        started = time.perf_counter()
        handles = [client.send(i) for i in range(tasks)]
        polls = 0
        while not client.finished(handles):
            polls += 1
            time.sleep(POLL)
        elapsed = time.perf_counter() - started
        # Each poll costs one or two commands of ours (EXISTS / ZCARD / HLEN), not the system's.
        used = commands_processed(client.conn) - commands - polls * (2 if system.kind in ("ours", "celery") else 1)
        grown = client.conn.info("memory")["used_memory"] - memory
    return {"rate": tasks / elapsed, "commands": used / tasks, "bytes": grown / tasks}


def flow(system: System, url: str, tasks: int) -> float:
    """Tasks/s of N sends then a get on each, with 2 work processes."""
    client = Client(system.kind, url)
    client.conn.flushdb()
    with Processes(system, 2, url) as processes:
        processes.wait_ready(client)
        client.get(client.send(-1))  # the client's connections are opened before timing
        started = time.perf_counter()
        handles = [client.send(i) for i in range(tasks)]
        for handle in handles:
            client.get(handle)
        return tasks / (time.perf_counter() - started)


def latency(system: System, url: str, count: int) -> float:
    """p50 ms of send-then-get through one idle work process."""
    client = Client(system.kind, url)
    client.conn.flushdb()
    with Processes(system, 1, url) as processes:
        processes.wait_ready(client)
        samples = []
        for i in range(count + 10):
            started = time.perf_counter()
            client.get(client.send(i))
            if i >= 10:  # warm-up
                samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)


def enqueue(system: System, url: str, tasks: int) -> float:
    """Sends/s from one client in a plain loop, no worker running."""
    client = Client(system.kind, url)
    client.conn.flushdb()
    client.send(-1)  # connect first
    started = time.perf_counter()
    for i in range(tasks):
        client.send(i)
    return tasks / (time.perf_counter() - started)


def measure(systems: list[System], url: str, options: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {
        s.label: {"drain": [], "commands": [], "bytes": [], "flow": [], "latency": [], "enqueue": []} for s in systems}
    for repeat in range(options.repeats):
        for system in systems:
            print(f"  run {repeat + 1}/{options.repeats}: {system.label}", file=sys.stderr, flush=True)
            found = samples[system.label]
            drained = drain(system, url, options.tasks)
            for key in ("commands", "bytes"):
                found[key].append(drained[key])
            found["drain"].append(drained["rate"])
            found["flow"].append(flow(system, url, options.tasks))
            found["latency"].append(latency(system, url, options.latency_tasks))
            found["enqueue"].append(enqueue(system, url, options.tasks))
    return samples


COLUMNS = [("drain", "drain tasks/s", True), ("flow", "delay N, get each /s", True),
           ("latency", "delay().get() p50 ms", False), ("enqueue", "enqueue /s", True),
           ("commands", "Redis cmds/task", False), ("bytes", "bytes/task", False)]


def print_table(samples: dict[str, dict[str, list[float]]]) -> None:
    """One row per system and measure: median (min-max), and the ratio to Celery (x Celery)."""
    celery = samples.get("Celery 5.7 (prefork)")
    for key, title, higher_is_better in COLUMNS:
        print(f"\n{title}{'' if higher_is_better else ' (lower is better)'}")
        for label, found in samples.items():
            ratio = ""
            if celery and statistics.median(celery[key]):
                ratio = f"{statistics.median(found[key]) / statistics.median(celery[key]):.2f}x Celery"
            print(f"  {label:<28}{median_range(found[key]):>28}  {ratio}")


def report(server, options: argparse.Namespace) -> None:
    systems = [s for s in available() if not options.systems or s.kind in options.systems.split(",")]
    print(f"{server.version()} on 127.0.0.1:{server.port}; {os.cpu_count()} cores; N = {options.tasks} no-op tasks; "
          f"latency over {options.latency_tasks}; medians (min-max) of {options.repeats}; run {uuid.uuid4().hex[:6]}; "
          f"{', '.join(s.label for s in systems)}")
    samples = measure(systems, server.url, options)
    print_table(samples)
    print(json.dumps({"tasks": options.tasks, "repeats": options.repeats, "samples": samples}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")),
                        help="a smoke check: 300 tasks, 1 repetition (also BENCH_QUICK=1)")
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--latency-tasks", type=int)
    parser.add_argument("--systems", default="", help="comma-separated kinds: ours, rq, celery, huey (default all)")
    options = parser.parse_args(argv)
    quick = options.quick
    options.tasks = options.tasks or (300 if quick else 2000)
    options.repeats = options.repeats or (1 if quick else 3)
    options.latency_tasks = options.latency_tasks or (30 if quick else 200)
    run_on_own_redis(report, options)


if __name__ == "__main__":
    main()
