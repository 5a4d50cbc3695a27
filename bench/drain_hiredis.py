"""Worker drain with and without hiredis, interleaved: does the C reply parser pay?

Run: ``.venv/bin/python -m bench.drain_hiredis [--rounds 5]``. One Redis of our own; each round
drains 2,000 no-op tasks through ``worker.py -c 2`` twice, once with hiredis hidden from the
workers (a module on their PYTHONPATH that raises ImportError, so redis-py falls back to its
pure-Python parser) and once with it. Interleaving makes drift on a shared machine hit both.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

import redis

import bench.throughput as throughput
from bench.compat_overhead import median_range, run_on_own_redis

LABEL = "worker.py -c 2 (prefork)"


def hiding_popen(shim: Path, hide: dict[str, bool]):
    """``subprocess.Popen`` for the bench's workers, with hiredis hidden while ``hide['on']``."""
    popen = subprocess.Popen

    def start(command, **kwargs):
        if hide["on"]:
            env = kwargs["env"]
            kwargs["env"] = {**env, "PYTHONPATH": f"{shim}:{env.get('PYTHONPATH', '')}"}
        return popen(command, **kwargs)

    return start


def report(server, options: argparse.Namespace) -> None:
    conn = redis.Redis.from_url(server.url)
    rates: dict[str, list[float]] = {"without hiredis": [], "with hiredis": []}
    hide = {"on": False}
    with tempfile.TemporaryDirectory() as shim:
        Path(shim, "hiredis.py").write_text('raise ImportError("hidden by bench.drain_hiredis")\n')
        throughput.subprocess.Popen = hiding_popen(Path(shim), hide)
        for _ in range(options.rounds):
            for variant in rates:
                hide["on"] = variant == "without hiredis"
                rates[variant].append(throughput.run_throughput(LABEL, server.url, conn, options.tasks)[0])
    print(f"drain, {options.tasks} no-op tasks, {LABEL}, medians (min-max) of {options.rounds}")
    for variant, samples in rates.items():
        print(f"  {variant:<18}{median_range(samples):>24} tasks/s")
    ratio = statistics.median(rates["with hiredis"]) / statistics.median(rates["without hiredis"])
    print(f"  with / without: {ratio:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    run_on_own_redis(report, parser.parse_args(argv))


if __name__ == "__main__":
    main()
