"""The client path users feel: ``.delay()`` N tasks, then ``.get()`` each, against Celery.

Run: ``.venv/bin/python -m bench.client_flow`` (part of ``make bench``). One Redis of our own;
the same script drives both systems, only the task module differs (``bench.noop_tasks`` is
``bench.celery_tasks`` with the import renamed). Repetitions are the outer loop so that drift
on this shared machine hits both alike; medians (min-max) and the ratio come from one run:

* realistic flow: N ``.delay()`` then ``.get()`` on each, 2 work processes
  (``worker.py -c 2`` vs ``celery worker -P prefork -c 2``);
* ``.get()`` on a finished task, in microseconds;
* ``.delay(x).get()`` p50 on an idle single work process;
* new TCP connections per task during the realistic flow (``INFO stats``
  ``total_connections_received`` before and after: 0 means the client keeps its connections).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid

import redis

from bench.compat_overhead import median_range, run_on_own_redis
from bench.throughput import BIN, Workers, ours, submitter

SYSTEMS = {
    "ours": ("ours", ours("-c", "2")),
    "celery": ("celery", [[str(BIN / "celery"), "-A", "bench.celery_tasks", "worker", "-P", "prefork", "-c", "2",
                           "--loglevel", "WARNING"]]),
}
IDLE = {
    "ours": ("ours", ours("-c", "1")),
    "celery": ("celery", [[str(BIN / "celery"), "-A", "bench.celery_tasks", "worker", "-P", "prefork", "-c", "1",
                           "--loglevel", "WARNING"]]),
}


def connections_received(conn: redis.Redis) -> int:
    return int(conn.info("stats")["total_connections_received"])


def run_flow(system: str, url: str, conn: redis.Redis, tasks: int) -> dict:
    """Tasks/s of delay-all-then-get-each, new connections per task, and get() on finished tasks."""
    kind, commands = SYSTEMS[system]
    conn.flushdb()
    with Workers(kind, commands, url) as workers:
        workers.wait_ready(conn, 2)
        delay = submitter(kind, url)
        delay(-1).get(timeout=30)  # the client's own connections are opened once, before timing
        before = connections_received(conn)
        started = time.perf_counter()
        results = [delay(i) for i in range(tasks)]
        for result in results:
            result.get(timeout=60)
        elapsed = time.perf_counter() - started
        new_connections = connections_received(conn) - before
        # get() again on fresh handles of the same, finished tasks: the cost of reading a result.
        fresh = [type(r)(r.id) for r in results[:500]]
        started = time.perf_counter()
        for result in fresh:
            result.get(timeout=10)
        get_us = (time.perf_counter() - started) / len(fresh) * 1e6
        return {"rate": tasks / elapsed, "connections": new_connections / tasks, "get_us": get_us}


def run_latency(system: str, url: str, conn: redis.Redis, count: int) -> float:
    kind, commands = IDLE[system]
    conn.flushdb()
    with Workers(kind, commands, url) as workers:
        workers.wait_ready(conn, 1)
        delay = submitter(kind, url)
        samples = []
        for i in range(count + 10):
            started = time.perf_counter()
            delay(i).get(timeout=10)
            if i >= 10:  # warm-up
                samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-tasks", type=int, default=200)
    parser.add_argument("--systems", default="ours,celery", help="comma-separated: ours, celery")
    options = parser.parse_args(argv)
    run_on_own_redis(report, options)


def report(server, options: argparse.Namespace) -> None:
    url = server.url
    conn = redis.Redis.from_url(url)
    systems = options.systems.split(",")
    print(f"{server.version()} on 127.0.0.1:{server.port}; {os.cpu_count()} cores; {options.tasks} no-op tasks; "
          f"medians (min-max) of {options.repeats} runs; run {uuid.uuid4().hex[:6]}\n")
    flows: dict[str, list[dict]] = {system: [] for system in systems}
    latencies: dict[str, list[float]] = {system: [] for system in systems}
    for _ in range(options.repeats):
        for system in systems:
            flows[system].append(run_flow(system, url, conn, options.tasks))
            latencies[system].append(run_latency(system, url, conn, options.latency_tasks))
    rates = {system: [f["rate"] for f in samples] for system, samples in flows.items()}
    celery = statistics.median(rates["celery"]) if "celery" in rates else None
    print(f"{'delay N then get each (2 procs)':<34}{'tasks/s':>22}{'x Celery':>10}{'new conns/task':>16}"
          f"{'get() finished, us':>22}{'delay().get() p50 ms':>24}")
    for system, samples in flows.items():
        ratio = f"{statistics.median(rates[system]) / celery:.2f}" if celery else "-"
        print(f"{system:<34}{median_range(rates[system]):>22}{ratio:>10}"
              f"{statistics.median(f['connections'] for f in samples):>16.3f}"
              f"{median_range([f['get_us'] for f in samples]):>22}{median_range(latencies[system]):>24}")
    print(json.dumps({"flows": flows, "latency_p50_ms": latencies}))


if __name__ == "__main__":
    main()
