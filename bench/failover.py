"""Failover benchmark: kill -9 the Redis master under load, with and without ``wait_for_replicas``.

Run: ``make failover`` (or ``.venv/bin/python -m bench.failover``; ``--tasks``, ``--rate``,
``--sends``, ``--repeat``, ``--cut``). For each mode (no WAIT, then ``wait_for_replicas=1``,
``wait_timeout=0.5``) it starts a fresh cluster of its own on loopback (a master, a replica and
three sentinels: tests/support_sentinel.py) and a worker (``-P prefork -c 2``,
tests/failover_tasks.py, through Sentinel), then:

* the cost of WAIT: ``.delay()`` per second from one client on the healthy cluster, no worker
  consuming, ``--sends`` sends per mode, alternated ``--repeat`` times (median, min-max);
* the failover, twice per mode: tasks of 20 ms sent at ``--rate`` per second; after ``--tasks`` / 4
  sends the master is killed with -9, at once, then again (a new cluster) ``--cut`` seconds after
  its replication link went down (as a network cut would: what it acknowledged meanwhile never
  reaches the replica that takes over); once Sentinel has promoted the replica, the old master is started
  again (Sentinel makes it a replica of the new one); the load stops after ``--tasks`` sends, or
  later if the old master took longer to come back. It prints the sends refused during
  the failover (an error: the caller knows), sends not confirmed by a replica (NotReplicatedError),
  acknowledged tasks lost (``.delay()`` returned, yet no final state within 30 s), tasks run twice
  (the side-effect counter, in a Redis outside the cluster), Sentinel's promotion time, and the
  time to resume (from the kill until the first task written after it began to run).

Absolute numbers are from a shared 2-core machine with everything on loopback: replication is
near-instant here, so a no-WAIT loss is rare; across a network the unreplicated window is wider.
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
from pathlib import Path

import redis

from app.embedded_redis import EmbeddedRedis
from tests import failover_tasks
from tests.support import wait_until
from tests.support_sentinel import Load, SentinelCluster, failover_figures

ROOT = Path(__file__).resolve().parent.parent
BINARY = shutil.which("redis-server") or "/usr/bin/redis-server"
MODES = {"no WAIT": {}, "WAIT 1 replica, 0.5 s": {"wait_for_replicas": 1, "wait_timeout": 0.5}}


def configure(cluster: SentinelCluster, transport: dict) -> None:
    app = failover_tasks.app
    app.conf.broker_url = cluster.url
    app.conf.broker_transport_options = {"master_name": "mymaster", "socket_timeout": 2.0, **transport}
    app._connection = None


def start_worker(workdir: Path, cluster: SentinelCluster, counter_url: str) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(PYTHONPATH=str(ROOT), FAILOVER_BROKER_URL=cluster.url, FAILOVER_COUNTER_URL=counter_url)
    process = subprocess.Popen(
        [sys.executable, "worker.py", "-A", "tests.failover_tasks", "-P", "prefork", "-c", "2", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=(workdir / "worker.log").open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True)
    from rq import Worker

    if not wait_until(lambda: Worker.count(connection=failover_tasks.app.connection) >= 2, timeout=30):
        raise RuntimeError(f"the worker did not start: see {workdir / 'worker.log'}")
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def send_rate(sends: int) -> float:
    """``.delay()`` per second from this thread (the worker is stopped meanwhile: client cost only)."""
    started = time.perf_counter()
    for _ in range(sends):
        failover_tasks.counted.delay(0)
    return sends / (time.perf_counter() - started)


def measure_cost(workdir: Path, sends: int, repeat: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    with SentinelCluster(workdir / "cost", binary=BINARY) as cluster:
        for _ in range(repeat):
            for mode, transport in MODES.items():
                configure(cluster, transport)
                send_rate(50)  # connections made, scripts cached
                rates[mode].append(send_rate(sends))
                failover_tasks.app.close()
    return rates


def measure_failover(workdir: Path, transport: dict, tasks: int, rate: float, cut: float) -> dict:
    counter = EmbeddedRedis(workdir / "counter", binary=BINARY)
    counter.start()
    try:
        with SentinelCluster(workdir / "cluster", binary=BINARY) as cluster:
            configure(cluster, transport)
            worker = start_worker(workdir, cluster, counter.url)
            try:
                return run_failover(cluster, counter, tasks, rate, cut)
            finally:
                stop(worker)
                failover_tasks.app.close()
    finally:
        counter.stop()


def run_failover(cluster: SentinelCluster, counter: EmbeddedRedis, tasks: int, rate: float, cut: float) -> dict:
    app = failover_tasks.app
    load = Load(failover_tasks.counted, rate).start()
    try:
        wait_until(lambda: len(load.outcome) >= tasks // 4, timeout=600)
        if cut:
            cluster.cut_replication()
            time.sleep(cut)
        old = cluster.kill_master()
        killed_at = time.time()  # after the kill: a send begun later can only reach the new master
        cluster.wait_for_failover(old)
        promoted_s = time.time() - killed_at
        cluster.rejoin(old)
        wait_until(lambda: len(load.outcome) >= tasks, timeout=600)
    finally:
        load.stop()
    acked = load.ids("acked")
    wait_until(lambda: all(meta["status"] in ("SUCCESS", "FAILURE") for meta in app.backend.get_many_meta(acked)),
               timeout=30, interval=0.5)
    figures = failover_figures(load, app, redis.Redis.from_url(counter.url), killed_at)
    figures.pop("lost_ids")
    figures.pop("twice_first_started")
    figures["promoted_s"] = round(promoted_s, 2)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cut", type=float, default=1.0, help="seconds the replication link is down before the kill")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="failover-") as tmp:
        workdir = Path(tmp)
        rates = measure_cost(workdir, options.sends, options.repeat)
        results = {}
        for scenario, cut in (("killed", 0.0), (f"killed {options.cut:g} s after link down", options.cut)):
            for mode, transport in MODES.items():
                workdir_run = workdir / f"run-{len(results)}"
                results[f"{scenario}, {mode}"] = measure_failover(workdir_run, transport, options.tasks,
                                                                  options.rate, cut)
    report(rates, results, options)


def report(rates: dict[str, list[float]], results: dict[str, dict], options: argparse.Namespace) -> None:
    base = statistics.median(rates["no WAIT"])
    print(f"\n.delay() per second, one client, {options.sends} sends x {options.repeat} (median, min-max):")
    for mode, values in rates.items():
        median = statistics.median(values)
        print(f"  {mode:24} {median:7.0f}/s ({min(values):.0f}-{max(values):.0f}), {median / base:.2f}x")
    print(f"\nmaster killed -9 after {options.tasks // 4} of {options.tasks} tasks sent at {options.rate:g}/s:")
    columns = ("sent", "acked", "failed", "not_replicated", "lost", "run_twice", "promoted_s", "resume_s")
    print(f"  {'':55} " + " ".join(f"{column:>14}" for column in columns))
    for name, figures in results.items():
        print(f"  {name:55} " + " ".join(f"{figures[column]!s:>14}" for column in columns))
    print(json.dumps({"bench": "failover", "rates": rates, "results": results}))


if __name__ == "__main__":
    main()
