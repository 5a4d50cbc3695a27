"""Which Redis commands a task costs end to end, one by one (``INFO commandstats``, Lua-internal included).

Run: ``.venv/bin/python -m bench.commands_per_task [--tasks 2000] [--repeats 3]``. One Redis of our
own and ``worker.py -c 2`` (``bench.noop_tasks``): N no-op tasks sent with ``.delay()`` while the
worker drains them, as ``bench.peers``' drain does; then each command's calls / N, median of the
repeats. The total is ``bench.peers``' "commands per task"; the breakdown says where to cut (send,
claim, finish, heartbeat timer amortised).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

from bench.compat_overhead import run_on_own_redis
from bench.peers import POLL, SYSTEMS, Client, Processes

#: Our own reads while waiting (``Client.finished``), taken out of the counts.
OURS = {"cmdstat_info", "cmdstat_flushdb"}


def calls(conn) -> dict[str, int]:
    return {key: value["calls"] for key, value in conn.info("commandstats").items() if key not in OURS}


def one_run(url: str, tasks: int) -> dict[str, float]:
    system = next(system for system in SYSTEMS if system.kind == "ours")
    client = Client("ours", url)
    client.conn.flushdb()
    with Processes(system, 2, url) as processes:
        processes.wait_ready(client)
        before = calls(client.conn)
        handles = [client.send(i) for i in range(tasks)]
        polls = 0
        while not client.finished(handles):
            polls += 1
            time.sleep(POLL)
        after = calls(client.conn)
    per_task = {key.removeprefix("cmdstat_"): (after[key] - before.get(key, 0)) / tasks for key in after}
    per_task["exists"] -= 2 * polls / tasks  # Client.finished: up to two EXISTS per poll
    return per_task


def report(server, options: argparse.Namespace) -> None:
    runs: dict[str, list[float]] = defaultdict(list)
    for repeat in range(options.repeats):
        found = one_run(server.url, options.tasks)
        for name in set(found) | set(runs):
            runs[name].append(found.get(name, 0.0))
        print(f"run {repeat + 1}: {sum(found.values()):.2f} commands per task", flush=True)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    print(f"\n{options.tasks} no-op tasks, worker.py -c 2, medians of {options.repeats}: "
          f"{sum(medians.values()):.2f} commands per task")
    for name, value in sorted(medians.items(), key=lambda item: -item[1]):
        if value >= 0.005:
            print(f"  {name:<20}{value:>8.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    run_on_own_redis(report, parser.parse_args(argv))


if __name__ == "__main__":
    main()
