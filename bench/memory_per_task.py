"""Where a finished task's bytes of Redis go: per key, per field, for this project's worker.

Run: ``.venv/bin/python -m bench.memory_per_task [--tasks 2000]``. One Redis of our own and
``worker.py -c 2``: N no-op tasks sent and finished, then ``used_memory`` grown / N, each key
kind's ``MEMORY USAGE`` (a sample task's own keys; shared sorted sets and streams / N), and the
job hash's fields by size, so that what to expire early (issue 19: at most 600 bytes per
finished task kept a day) is a reading, not a guess. ``--job-keep 5`` runs the worker with
``worker_job_keep_seconds = 5`` and measures again once that window has passed: what a finished
task costs for the rest of its result's day.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections import defaultdict

import redis
from rq.queue import Queue
from rq.serializers import JSONSerializer

from bench.compat_overhead import run_on_own_redis
from bench.peers import SYSTEMS, Client, Processes


def report(server, options: argparse.Namespace) -> None:
    ours = next(system for system in SYSTEMS if system.kind == "ours")
    client = Client("ours", server.url)
    conn: redis.Redis = client.conn
    conn.flushdb()
    with Processes(ours, 2, server.url) as processes:
        processes.wait_ready(client)
        before_keys = set(conn.keys("*"))
        before = conn.info("memory")["used_memory"]
        handles = [client.send(i) for i in range(options.tasks)]
        while not client.finished(handles):
            time.sleep(0.05)
        for handle in handles:  # as a client does: get() also ends its result's pub/sub subscription,
            client.get(handle)  # whose channel Redis would otherwise count among the task's bytes
        time.sleep(1)  # the worker's batched bookkeeping (5 s timer) is not per task; let the last writes land
        grown = conn.info("memory")["used_memory"] - before
        print(f"{options.tasks} finished no-op tasks: used_memory grew {grown / options.tasks:,.0f} bytes/task")
        if options.job_keep:
            # Past the job hashes' window; RQ's maintenance (every 10 min) drops the expired
            # finished-registry entries: done here at once, as it would be within its interval.
            time.sleep(options.job_keep + 1)
            for queue in Queue.all(connection=conn, serializer=JSONSerializer):
                queue.finished_job_registry.cleanup()
            grown = conn.info("memory")["used_memory"] - before
            print(f"after the {options.job_keep} s job window (worker_job_keep_seconds): "
                  f"{grown / options.tasks:,.0f} bytes/task")
    by_kind: dict[str, list[int]] = defaultdict(list)
    sample = handles[len(handles) // 2].id
    for key in conn.scan_iter(count=1000):
        if key in before_keys:
            continue
        name = key.decode()
        kind = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", name)
        by_kind[kind].append(conn.memory_usage(key, samples=0) or 0)
    print(f"\n{'key (one per task unless shared)':<48}{'keys':>7}{'bytes/task':>12}  type, TTL of a sample")
    for kind, sizes in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        example = kind.replace("<id>", sample)
        print(f"{kind:<48}{len(sizes):>7}{sum(sizes) / options.tasks:>12,.0f}  "
              f"{conn.type(example).decode()}, TTL {conn.ttl(example)}")
    fields = conn.hgetall(f"rq:job:{sample}")
    print(f"\njob hash rq:job:<id> of a finished task, {len(fields)} fields (name + value bytes):")
    for field, value in sorted(fields.items(), key=lambda item: -len(item[0]) - len(item[1])):
        print(f"  {field.decode():<28}{len(field) + len(value):>6}  {value[:60]!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--job-keep", type=int, default=0, metavar="SECONDS",
                        help="worker_job_keep_seconds for the worker; bytes are measured again once it has passed")
    options = parser.parse_args(argv)
    if options.job_keep:
        os.environ["BENCH_JOB_KEEP_SECONDS"] = str(options.job_keep)
    run_on_own_redis(report, options)


if __name__ == "__main__":
    main()
