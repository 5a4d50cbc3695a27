"""``make conformance``: Celery 5.7's own integration tests, run against the adapter on a private Redis.

    python -m conformance.run [FILE ...]             # against app.celery_compat (default: the six files)
    python -m conformance.run --baseline [FILE ...]  # against real Celery 5.7.0: records its pass list

Steps: ``pip download`` the ``celery==5.7.0`` sdist into ``var/conformance/cache`` (once; Celery's
code is never part of this repository), extract its ``t/`` folder, rewrite its ``celery`` imports
to ``app.celery_compat`` (``rewrite.py``; not for the baseline), start a Redis on a free port,
and run each file in its own pytest process with a Redis broker and result backend. Prints per
file collected / passed / failed / skipped and the tests that pass on Celery but fail here, and
writes ``var/conformance/report-<mode>.json``. The baseline run writes
``conformance/celery-5.7.0-passes.txt`` (test id and its duration on Celery).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .plugin import read_list

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "conformance"
VAR = ROOT / "var" / "conformance"
CELERY = "celery==5.7.0"
SDIST = "celery-5.7.0"
FILES = ("test_tasks.py", "test_canvas.py", "test_inspect.py", "test_redis_backend.py", "test_worker.py",
         "test_beat.py")
BASELINE = HERE / "celery-5.7.0-passes.txt"
DESELECT = HERE / "deselect.txt"
PYTEST_INI = """[pytest]
addopts = -p no:valkey -p no:cacheprovider
python_classes = test_*
xfail_strict = true
markers =
    flaky
    timeout
    amqp
"""
#: A whole file gives up after this long (a hung session worker must not hang the run).
FILE_DEADLINE = 45 * 60


def fetch_sdist() -> Path:
    """The sdist in the cache, downloaded with pip the first time."""
    cache = VAR / "cache"
    found = sorted(cache.glob(f"{SDIST}.tar.gz"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                    "--no-binary", ":all:", CELERY, "-d", str(cache)], check=True)
    return next(cache.glob(f"{SDIST}.tar.gz"))


def prepare_suite(mode: str) -> Path:
    """A fresh copy of the sdist's ``t/`` under ``var/conformance/suite-<mode>``, rewritten for the adapter."""
    suite = VAR / f"suite-{mode}"
    shutil.rmtree(suite, ignore_errors=True)
    suite.mkdir(parents=True)
    prefix = f"{SDIST}/t/"
    with tarfile.open(fetch_sdist()) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix) and m.isfile()
                   and (m.name.count("/") == 2 or m.name.startswith(prefix + "integration/"))]
        for member in members:
            member.name = member.name[len(SDIST) + 1:]
            archive.extract(member, suite, filter="data")
    # Celery's own pytest settings (its pyproject.toml), in the suite folder so pytest takes it as its root.
    (suite / "pytest.ini").write_text(PYTEST_INI)
    if mode == "compat":
        from .rewrite import rewrite_tree

        reports = rewrite_tree(suite / "t")
        lines = [f"{r.path}: placeholders for {p}" for r in reports for p in r.placeholders]
        (VAR / "placeholders-compat.txt").write_text("\n".join(lines) + "\n")
    return suite


def start_redis() -> Any:
    """A private Redis on a free port (never 6379), found as the project's tests find theirs."""
    sys.path.insert(0, str(ROOT))
    from app.embedded_redis import EmbeddedRedis
    from tests.conftest import find_server_binary

    directory = VAR / f"redis-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    server = EmbeddedRedis(directory, binary=find_server_binary())
    server.start()
    return server


def run_file(name: str, mode: str, suite: Path, redis_url: str, port: int, options: argparse.Namespace,
             only: list[str] | None = None) -> Path:
    """Run one test file (or only the given test ids of it) in its own pytest process; return its results."""
    stem = name.removesuffix(".py") + ("-some" if only else "")
    results = VAR / f"results-{mode}-{stem}.jsonl"
    results.unlink(missing_ok=True)
    log = VAR / f"log-{mode}-{stem}.txt"
    plugin = "celery.contrib.pytest" if mode == "celery" else "app.celery_compat.contrib.pytest"
    env = {**os.environ, "TEST_BROKER": redis_url, "TEST_BACKEND": redis_url, "REDIS_HOST": "127.0.0.1",
           "REDIS_PORT": str(port), "PYTHONPATH": os.pathsep.join([str(suite), str(ROOT)]),
           "CONFORMANCE_RESULTS": str(results), "CONFORMANCE_DESELECT": str(DESELECT),
           "CONFORMANCE_TIMEOUT": str(options.timeout)}
    if mode == "compat" and BASELINE.exists():
        env["CONFORMANCE_BASELINE"] = str(BASELINE)
    targets = [f"t/integration/{nodeid}" for nodeid in only] if only else [f"t/integration/{name}"]
    command = [sys.executable, "-m", "pytest", *targets, "-p", plugin, "-p", "conformance.plugin",
               "-p", "no:timeout", "-q", "-rN", "--tb=short"]
    started = time.monotonic()
    with log.open("wb") as out:
        try:
            subprocess.run(command, cwd=suite, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=FILE_DEADLINE)
        except subprocess.TimeoutExpired:
            out.write(f"\nconformance: {name} stopped after {FILE_DEADLINE} s\n".encode())
    what = f"{name}, {len(only)} chosen tests" if only else name
    print(f"  {what}: {time.monotonic() - started:.0f} s (log: {log.relative_to(ROOT)})", flush=True)
    return results


#: pytest names a parameter after its ``__name__``; the adapter's task objects have none, so its ids
#: differ from Celery's: the same test, the same parameter (``[errback_old_style, errback_new_style]``).
ID_ALIASES = {"[errback_task0]": "[errback_old_style]", "[errback_task1]": "[errback_new_style]"}


def celery_id(nodeid: str) -> str:
    for alias, name in ID_ALIASES.items():
        if nodeid.endswith(alias):
            return nodeid[:-len(alias)] + name
    return nodeid


def load_results(path: Path) -> tuple[dict[str, dict], list[dict]]:
    """The tests' records, and the file's problems: collection errors, tests that never ran."""
    tests, errors, collected = {}, [], 0
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["kind"] == "collect_error":
                errors.append(record)
            elif record["kind"] == "collected":
                collected = record["count"]
            else:
                tests[celery_id(record["nodeid"])] = record
    if collected > len(tests):
        errors.append({"nodeid": path.name, "error": f"{collected - len(tests)} of {collected} collected tests "
                       "never ran (pytest stopped early: see the log)"})
    return tests, errors


def summarize(name: str, tests: dict[str, dict], errors: list[dict], baseline: dict[str, str] | None,
              subset: bool = False) -> dict:
    outcomes = [record["outcome"] for record in tests.values()]
    summary: dict[str, Any] = {
        "file": name, "collected": len(tests), "passed": outcomes.count("passed"),
        "failed": outcomes.count("failed"), "skipped": outcomes.count("skipped"),
        "call_passed_teardown_failed": sum(1 for r in tests.values() if r["outcome"] == "failed"
                                           and r["phases"].get("call") == "passed"),
        "teardown_errors": dict(Counter(r.get("errors", {}).get("teardown") for r in tests.values()
                                        if r.get("errors", {}).get("teardown")).most_common()),
        "collection_errors": errors,
    }
    if baseline is not None:
        on_celery = {nodeid for nodeid in baseline
                     if nodeid.startswith(name + "::") and (not subset or nodeid in tests)}
        lost = sorted(nodeid for nodeid in on_celery if tests.get(nodeid, {}).get("outcome") != "passed")
        summary.update({
            "pass_on_celery": len(on_celery),
            "pass_on_celery_and_here": len(on_celery) - len(lost),
            # Of those, how many passed at least their test body here (a failure at teardown only).
            "pass_on_celery_body_passes_here": sum(1 for n in on_celery if tests.get(n, {}).get("phases", {}).get(
                "call") in ("passed", "xpassed")),
            "pass_on_celery_fail_here": [{"test": nodeid, "error": tests.get(nodeid, {}).get("error", "not run")}
                                         for nodeid in lost],
            "pass_here_only": sorted(n for n, r in tests.items() if r["outcome"] == "passed" and n not in on_celery),
        })
    return summary


_VARYING = [(re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27,}"), "<id>"), (re.compile(r"gen\d+(-\d+)?@\S+"), "<node>"),
            (re.compile(r"\d+(\.\d+)?"), "N")]


def error_kind(error: str) -> str:
    """A failure's first error line without what varies from run to run (ids, numbers, node names)."""
    for pattern, replacement in _VARYING:
        error = pattern.sub(replacement, error)
    return error[:160]


def failure_groups(summaries: list[dict]) -> list[tuple[str, int]]:
    """Tests that pass on Celery and fail here, counted by the kind of their first error."""
    kinds = Counter(error_kind(lost["error"]) for s in summaries for lost in s.get("pass_on_celery_fail_here", ()))
    return kinds.most_common()


def print_summary(summaries: list[dict], show_failures: bool) -> None:
    has_baseline = summaries and "pass_on_celery" in summaries[0]
    header = f"{'file':24} {'collected':>9} {'passed':>7} {'failed':>7} {'skipped':>7}"
    if has_baseline:
        header += f" {'pass on Celery':>15} {'also here':>10} {'Celery only':>12} {'body passes here':>17}"
    print("\n" + header)
    for s in summaries:
        row = f"{s['file']:24} {s['collected']:>9} {s['passed']:>7} {s['failed']:>7} {s['skipped']:>7}"
        if has_baseline:
            row += f" {s['pass_on_celery']:>15} {s['pass_on_celery_and_here']:>10} " \
                   f"{len(s['pass_on_celery_fail_here']):>12} {s['pass_on_celery_body_passes_here']:>17}"
        print(row)
        for error in s["collection_errors"]:
            print(f"    collection error {error['nodeid']}: {error['error']}")
        for error, times in s["teardown_errors"].items():
            print(f"    {times} tests fail at teardown: {error}")
        if s["call_passed_teardown_failed"]:
            print(f"    of which {s['call_passed_teardown_failed']} passed their test body (call phase)")
    _print_total(summaries, has_baseline)
    if has_baseline:
        print("\nPasses on Celery, fails here, by first error:")
        for kind, times in failure_groups(summaries)[:25]:
            print(f"  {times:4}  {kind}")
    if has_baseline and show_failures:
        for s in summaries:
            if s["pass_on_celery_fail_here"]:
                print(f"\n{s['file']}: passes on Celery, fails here ({len(s['pass_on_celery_fail_here'])})")
                for lost in s["pass_on_celery_fail_here"]:
                    print(f"  {lost['test']}\n      {lost['error']}")


def _print_total(summaries: list[dict], has_baseline: bool) -> None:
    def total(key: str) -> int:
        return sum(len(s[key]) if isinstance(s[key], list) else s[key] for s in summaries)

    row = f"{'total':24} {total('collected'):>9} {total('passed'):>7} {total('failed'):>7} {total('skipped'):>7}"
    if has_baseline:
        row += f" {total('pass_on_celery'):>15} {total('pass_on_celery_and_here'):>10} " \
               f"{total('pass_on_celery_fail_here'):>12} {total('pass_on_celery_body_passes_here'):>17}"
    print(row)


def write_baseline(summaries_tests: dict[str, dict[str, dict]]) -> None:
    """Replace the entries of the files just run in the pass list; keep the others."""
    kept = read_list(BASELINE) if BASELINE.exists() else {}
    kept = {k: v for k, v in kept.items() if k.split("::")[0] not in summaries_tests}
    for tests in summaries_tests.values():
        kept.update({n: f"{r['duration']:.2f}" for n, r in tests.items() if r["outcome"] == "passed"})
    lines = ["# Tests of Celery 5.7.0's t/integration that pass on real Celery 5.7.0 with a Redis broker and",
             "# result backend (python -m conformance.run --baseline), and each one's duration in seconds.",
             "# Written by the baseline run; the adapter's run compares against it.",
             *(f"{nodeid}\t{duration}" for nodeid, duration in sorted(kept.items()))]
    BASELINE.write_text("\n".join(lines) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m conformance.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*",
                        help=f"test files or test ids (default: {' '.join(FILES)})")
    parser.add_argument("--baseline", action="store_true", help="run against real Celery and record its passes")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per test (default: 10 here, stretched for tests slow on Celery; 120 baseline)")
    parser.add_argument("--rerun", action=argparse.BooleanOptionalAction, default=None,
                        help="run each file's failed tests once more; one pass counts (default: on for --baseline)")
    parser.add_argument("--quiet", action="store_true", help="do not list the failing tests")
    options = parser.parse_args(argv)
    # "test_canvas.py::test_chord" runs only those tests of the file (pytest's test ids).
    options.only = {}
    for spec in options.files:
        name, _, test = spec.partition("::")
        name = name if name.endswith(".py") else name + ".py"
        options.only.setdefault(name, [])
        if test:
            options.only[name].append(spec if spec.startswith(name) else f"{name}::{test}")
    options.files = list(options.only) or list(FILES)
    if options.rerun is None:
        options.rerun = options.baseline
    if options.timeout is None:
        options.timeout = 120.0 if options.baseline else 10.0
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    mode = "celery" if options.baseline else "compat"
    suite = prepare_suite(mode)
    server = start_redis()
    print(f"conformance: {mode} run of {', '.join(options.files)} on Redis {server.url}", flush=True)
    baseline = read_list(BASELINE) if BASELINE.exists() and not options.baseline else None
    summaries, all_tests = [], {}
    try:
        for name in options.files:
            _flush(server.url)  # each file starts on an empty Redis
            only = options.only.get(name) or None
            tests, errors = load_results(run_file(name, mode, suite, server.url, server.port, options, only))
            failed = [nodeid for nodeid, record in tests.items() if record["outcome"] == "failed"]
            if options.rerun and failed and not errors:
                _flush(server.url)
                print(f"  {name}: running its {len(failed)} failed tests once more", flush=True)
                again, _ = load_results(run_file(name, mode, suite, server.url, server.port, options, failed))
                tests.update({nodeid: {**record, "rerun": True} for nodeid, record in again.items()})
            all_tests[name] = tests
            summaries.append(summarize(name, tests, errors, baseline, subset=bool(only)))
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)
    print_summary(summaries, show_failures=not options.quiet)
    report = VAR / f"report-{mode}.json"
    report.write_text(json.dumps({"mode": mode, "celery": CELERY, "timeout": options.timeout,
                                  "files": summaries, "failure_groups": failure_groups(summaries),
                                  "tests": all_tests}, indent=1))
    print(f"\nJSON report: {report.relative_to(ROOT)}")
    if options.baseline:
        write_baseline(all_tests)
        print(f"Celery's pass list: {BASELINE.relative_to(ROOT)}")
    return 0


def _flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushall()


if __name__ == "__main__":
    sys.exit(main())
