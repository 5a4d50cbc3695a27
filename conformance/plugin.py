"""The pytest plugin of a conformance run (``-p conformance.plugin``), the same for Celery and the adapter.

It reads its settings from the environment the runner sets:

* ``CONFORMANCE_RESULTS``: a JSON-lines file; one line per test (outcome per phase, first error line,
  duration) and one per collection error;
* ``CONFORMANCE_DESELECT``: the deselect list (``conformance/deselect.txt``);
* ``CONFORMANCE_TIMEOUT`` (seconds) and ``CONFORMANCE_BASELINE``: each test's time limit is
  ``CONFORMANCE_TIMEOUT``, or, for a test with a duration on Celery in the baseline file,
  ``max(CONFORMANCE_TIMEOUT, 3 x that duration + 5 s)``, enforced by ``clock.py`` (the runner turns
  pytest-timeout and the suite's own ``@flaky`` limit of 300 s off): a test that waits for a result
  that never comes fails in seconds. The first test of a file also starts the session worker, so
  it gets ``CONFORMANCE_FIRST_EXTRA`` more.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from . import placeholders
from .clock import TestClock


def read_list(path: str | os.PathLike[str]) -> dict[str, str]:
    """``nodeid<TAB>value`` lines (``#`` comments and blank lines skipped) as a dict."""
    entries = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        nodeid, _, value = line.partition("\t")
        entries[nodeid.strip()] = value.strip()
    return entries


def read_deselect(path: str | os.PathLike[str]) -> dict[str, str]:
    """The deselect list: ``nodeid  # reason`` per line."""
    entries = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        nodeid, _, reason = line.partition("#")
        entries[nodeid.strip()] = reason.strip()
    return entries


def short_id(nodeid: str) -> str:
    """``t/integration/test_tasks.py::x`` -> ``test_tasks.py::x``, the form the lists use."""
    return nodeid.split("t/integration/", 1)[-1]


def first_error_line(report: pytest.TestReport | pytest.CollectReport) -> str:
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, "Skipped: why")
        return str(report.longrepr[-1])[:300]
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = [line for line in text.splitlines() if line.strip()]
    if crash is None and lines:
        return lines[-1][:300]  # a plain traceback string ends with the exception
    return (lines[0] if lines else "")[:300]


class ConformancePlugin:
    def __init__(self) -> None:
        self.results = Path(os.environ["CONFORMANCE_RESULTS"])
        self.deselect = read_deselect(os.environ["CONFORMANCE_DESELECT"]) if os.environ.get(
            "CONFORMANCE_DESELECT") else {}
        baseline = os.environ.get("CONFORMANCE_BASELINE")
        self.durations = {k: float(v or 0) for k, v in read_list(baseline).items()} if baseline else {}
        self.timeout = float(os.environ.get("CONFORMANCE_TIMEOUT", "10"))
        self.first_extra = float(os.environ.get("CONFORMANCE_FIRST_EXTRA", "20"))
        self.phases: dict[str, dict[str, Any]] = {}

    def _write(self, record: dict[str, Any]) -> None:
        with self.results.open("a") as out:
            out.write(json.dumps(record) + "\n")

    def time_limit(self, nodeid: str) -> float:
        duration = self.durations.get(short_id(nodeid))
        return self.timeout if duration is None else max(self.timeout, 3 * duration + 5)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        kept, dropped = [], []
        for item in items:
            (dropped if short_id(item.nodeid) in self.deselect else kept).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        limits = {item.nodeid: self.time_limit(item.nodeid) + (self.first_extra if index == 0 else 0)
                  for index, item in enumerate(items)}
        config.pluginmanager.register(TestClock(limits), "conformance-clock")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        placeholders.collecting = False  # from now on a placeholder raises when used
        self._write({"kind": "collected", "count": len(session.items)})

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write({"kind": "collect_error", "nodeid": short_id(report.nodeid),
                         "error": first_error_line(report)})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if type(report).__name__ == "SubtestReport":
            return  # the test's own call report says "contains N failed subtests"
        phases = self.phases.setdefault(report.nodeid, {"phases": {}, "duration": 0.0, "error": "", "errors": {}})
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        phases["phases"][report.when] = outcome
        phases["duration"] += report.duration
        if report.failed:
            phases["errors"][report.when] = first_error_line(report)
            phases["error"] = phases["error"] or f"[{report.when}] {first_error_line(report)}"
        if report.skipped and not phases["error"]:
            phases["error"] = f"[skipped] {first_error_line(report)}"

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        record = self.phases.pop(nodeid, None)
        if record is not None:
            self._write({"kind": "test", "nodeid": short_id(nodeid), "outcome": classify(record["phases"]),
                         "phases": record["phases"], "duration": round(record["duration"], 3),
                         "error": record["error"], "errors": record["errors"]})


def classify(phases: dict[str, str]) -> str:
    """One outcome per test, as strict as pytest's exit code: any failed phase fails the test."""
    values = set(phases.values())
    if "failed" in values:
        return "failed"
    if values & {"skipped", "xfailed"}:
        return "skipped"
    return "passed" if phases.get("call") in ("passed", "xpassed") else "failed"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CONFORMANCE_RESULTS"):
        config.pluginmanager.register(ConformancePlugin(), "conformance-run")
