"""The task list with 100,000 tasks present: median time and Redis commands per request.

Run: ``.venv/bin/python -m bench.task_list [--tasks 100000] [--repeats 20]``. It starts a Redis of
its own, indexes the tasks as ``send_task`` does (names and queues alternating, 1 % failed, three
running), gives each a result document and an RQ job status, then asks ``GET /api/tasks`` through
the app (Flask's test client: no network, the app's own code and Redis client) for each filter.
The target is a median under 100 ms for each line. Absolute times depend on this machine (shared,
two cores): read the commands per request as the cost that does not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import redis

from app.celery_compat import keys
from app.celery_compat.app.base import index_task
from bench.compat_overhead import commands_processed, run_on_own_redis

START = 1_700_000_000.0
NAMES = ("proj.tasks.charge", "proj.tasks.refund", "proj.tasks.report", "proj.tasks.mail")
QUEUES = ("celery", "priority")


def state_of(i: int) -> tuple[str, str]:
    """(Celery state, RQ status) of task ``i``: three running at the very start, 1 % failed, the rest done."""
    if i in (0, 1, 2):
        return "PROGRESS", "started"
    return ("FAILURE", "failed") if i % 100 == 7 else ("SUCCESS", "finished")


def fill(conn: redis.Redis, count: int) -> None:
    for first in range(0, count, 5_000):
        pipe = conn.pipeline(transaction=False)
        for i in range(first, min(first + 5_000, count)):
            task_id = f"task-{i}"
            state, status = state_of(i)
            index_task(pipe, task_id, NAMES[i % len(NAMES)], QUEUES[i % len(QUEUES)], f"order={i}, amount={i % 97}",
                       keep_seconds=10**9, max_tasks=count, now=START + i)
            result = {"current": 1, "total": 4} if state == "PROGRESS" else {"ok": i}
            pipe.set(keys.meta(task_id), json.dumps({"status": state, "result": result, "traceback": None,
                                                     "date_done": None, "task_id": task_id}))
            pipe.hset(keys.job(task_id), mapping={"status": status, "worker_name": "worker-0.1@bench",
                                                  "started_at": "2023-11-14T22:13:20.000000Z"})
        pipe.execute()


def queries(count: int) -> dict[str, str]:
    middle = START + count // 2
    return {
        "first page": "limit=25",
        "deep page (cursor)": f"limit=25&cursor={middle!r}",
        "newer page (after)": f"limit=25&after={middle!r}",
        "name": f"name={NAMES[1]}",
        "queue": "queue=priority",
        "name and queue": f"name={NAMES[1]}&queue=priority",
        "state FAILURE (1 %)": "state=FAILURE",
        "state PROGRESS (3 oldest)": "state=PROGRESS",
        "argument text": "q=order=99990",
        "id": f"id=task-{count // 3}",
        # An hour in the middle (3,600 tasks), alone and with filters that go through the scan.
        "range (an hour)": f"since={middle!r}&until={middle + 3600!r}",
        "range, older page": f"since={middle!r}&until={middle + 3600!r}&cursor={middle + 1800!r}",
        "range + state PROGRESS (none)": f"since={middle!r}&until={middle + 3600!r}&state=PROGRESS",
        "range + argument text": f"since={middle!r}&until={middle + 3600!r}&q=amount=96",
    }


def report(server, options: argparse.Namespace) -> None:
    from app import create_app

    conn = redis.Redis.from_url(server.url)
    fill(conn, options.tasks)
    client = create_app({"REDIS_URL": server.url, "TESTING": True}).test_client()
    results = {}
    print(f"GET /api/tasks with {options.tasks:,} tasks indexed: median ms (min-max), Redis commands, rows")
    for label, query in queries(options.tasks).items():
        samples, commands, rows = [], 0, 0
        for _ in range(options.repeats):
            before = commands_processed(conn)
            started = time.perf_counter()
            response = client.get(f"/api/tasks?{query}")
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.json
            commands = commands_processed(conn) - before - 1  # less our own INFO
            rows = len(response.json["tasks"])
        median = statistics.median(samples)
        results[label] = {"median_ms": round(median, 1), "commands": commands, "rows": rows}
        print(f"  {label:<28} {median:7.1f} ({min(samples):.1f}-{max(samples):.1f})  {commands:5d}  {rows:3d}"
              f"  {'ok' if median < 100 else 'OVER 100 ms'}")
    print(json.dumps({"bench": "task_list", "tasks": options.tasks, "results": results}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    run_on_own_redis(report, parser.parse_args())


if __name__ == "__main__":
    main()
