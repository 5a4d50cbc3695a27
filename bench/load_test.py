"""Load test: N ping tasks through the HTTP API from several clients, 2 workers, every one exactly once.

Run: ``.venv/bin/python -m bench.load_test`` (10,000 tasks, 8 clients; ``--tasks``, ``--clients``).
It starts its own Redis, the web app under gunicorn and ``python worker.py -c 2``, then posts
``POST /api/tasks/ping`` from concurrent clients and waits until every task ran. The ping task
records its token in a Redis set (distinct runs) and a counter (all runs), so:

* lost = submitted - distinct runs, duplicated = all runs - distinct runs, both must be 0;
* every submitted id must read SUCCESS.

It prints submits/s, completions/s and those counts (and a JSON line). It is a benchmark, not a
timed test: ``tests/test_load.py`` runs a small version that checks only the counts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

from app.embedded_redis import EmbeddedRedis, free_port
from app.tasks.ping import count_key, runs_key
from bench.compat_overhead import stop_processes

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(log, "ab"),  # noqa: SIM115 - closed at exit
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_http(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the web app did not start")


def _client(port: int, tokens: list[str], ids: list[str], errors: list[str], latencies: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for token in tokens:
        body = json.dumps({"token": token})
        sent = time.perf_counter()
        for attempt in range(3):
            try:
                connection.request("POST", "/api/tasks/ping", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                break
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if attempt == 2:
                    raise
        latencies.append(time.perf_counter() - sent)
        if response.status == 202:
            ids.append(json.loads(payload)["id"])
        else:
            errors.append(f"{response.status}: {payload[:200]!r}")


def run(tasks: int = 10_000, clients: int = 8, workdir: str | None = None, timeout: float = 900) -> dict:
    """Run the load test; return its figures. Raises RuntimeError if a part does not start."""
    workdir = workdir or tempfile.mkdtemp(prefix="load-")
    server = EmbeddedRedis(Path(workdir) / "redis")
    server.start()
    port = free_port()
    env = {**os.environ, "REDIS_URL": server.url, "PYTHONPATH": str(ROOT), "APP_ENV": "development"}
    processes = []
    try:
        processes.append(_start([str(BIN / "gunicorn"), "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}",
                                 "app:create_app()"], env, Path(workdir) / "web.log"))
        processes.append(_start([sys.executable, "worker.py", "-c", "2", "-l", "WARNING"], env,
                                Path(workdir) / "worker.log"))
        _wait_http(port, time.monotonic() + 60)
        batch = uuid.uuid4().hex[:8]
        tokens = [f"{batch}:{i}" for i in range(tasks)]
        ids: list[str] = []
        errors: list[str] = []
        latencies: list[float] = []
        threads = [threading.Thread(target=_client, args=(port, tokens[i::clients], ids, errors, latencies))
                   for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        submitted_in = time.perf_counter() - started
        conn = redis.Redis.from_url(server.url)
        deadline = time.monotonic() + timeout
        while int(conn.get(count_key(batch)) or 0) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
        completed_in = time.perf_counter() - started
        time.sleep(1)  # let a late duplicate, if any, show up in the counter
        distinct, total = conn.scard(runs_key(batch)), int(conn.get(count_key(batch)) or 0)
        states = _states(conn, ids)
        return {
            "submitted": len(ids), "refused": len(errors), "first_errors": errors[:3],
            "submits_per_s": len(ids) / submitted_in, "completions_per_s": total / completed_in,
            "submit_p50_ms": statistics.median(latencies) * 1000,
            "submit_p99_ms": sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000,
            "distinct_runs": distinct, "all_runs": total,
            "lost": len(ids) - distinct, "duplicated": total - distinct,
            "not_success": sum(count for state, count in states.items() if state != "SUCCESS"), "states": states,
        }
    finally:
        stop_processes(processes)
        server.stop()


def _states(conn: redis.Redis, ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for start in range(0, len(ids), 1000):
        for raw in conn.mget([f"celery-task-meta-{task_id}" for task_id in ids[start:start + 1000]]):
            state = json.loads(raw)["status"] if raw else "PENDING"
            counts[state] = counts.get(state, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    options = parser.parse_args(argv)
    result = run(options.tasks, options.clients)
    print(f"{result['submitted']} tasks through the API from {options.clients} clients, 2 workers")
    print(f"submits/s {result['submits_per_s']:,.0f}   completions/s {result['completions_per_s']:,.0f}   "
          f"POST p50 {result['submit_p50_ms']:.1f} ms, p99 {result['submit_p99_ms']:.1f} ms")
    print(f"lost {result['lost']}   duplicated {result['duplicated']}   not SUCCESS {result['not_success']}   "
          f"refused {result['refused']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
