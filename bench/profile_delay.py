"""``.delay()`` from one client: rate, Redis commands per send, and where the client's time goes.

Run: ``.venv/bin/python -m bench.profile_delay [--count 20000] [--profile]``. One Redis of our
own, no worker (tasks stay queued): N ``noop.delay(i)`` in a plain loop, best of 3 rates, then
with ``--profile`` one more loop under cProfile, its top functions by own time printed.
Target (issue 19): at least 5,000 sends/s.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import redis

from bench.compat_overhead import commands_processed, median_range, run_on_own_redis


def send_rate(count: int) -> tuple[float, float]:
    """Sends per second (wall clock) and the client's CPU microseconds per send."""
    from bench import noop_tasks

    started, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        noop_tasks.noop.delay(i)
    return count / (time.perf_counter() - started), (time.process_time() - cpu) / count * 1e6


def report(server, options: argparse.Namespace) -> None:
    from bench import noop_tasks

    noop_tasks.app.conf.broker_url = server.url
    conn = redis.Redis.from_url(server.url)
    send_rate(100)  # connect and load the script once, before timing
    rates, cpus = [], []
    for _ in range(options.repeats):
        conn.flushdb()
        before = commands_processed(conn)
        rate, cpu = send_rate(options.count)
        rates.append(rate)
        cpus.append(cpu)
        commands = (commands_processed(conn) - before) / options.count
    # The wall-clock rate moves with the machine's load; the client CPU per send much less.
    print(f".delay() from one client, {options.count} sends: {median_range(rates)} /s, client CPU "
          f"{median_range(cpus)} us/send, {commands:.1f} Redis cmds/send (Lua-internal included)")
    if options.profile:
        profiler = cProfile.Profile()
        profiler.runcall(send_rate, options.count)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(options.top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    run_on_own_redis(report, parser.parse_args(argv))


if __name__ == "__main__":
    main()
