"""axe-core in a real browser: the pages it checks, and a helper that runs it on one page.

axe-core is the ``axe.min.js`` shipped inside the pinned ``axe-playwright-python`` wheel
(requirements.txt), injected through Playwright's ``evaluate`` (the DevTools protocol, which the
pages' Content-Security-Policy does not govern, so the policy stays as in production).

A page joins the check by adding one line to :data:`PAGES`: its path (``{state}`` stands for the
id of a task in that state, made by the test's fixture) and a selector that is there once the page
has drawn itself (rq-dashboard's pages fill themselves from JSON after loading).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import axe_playwright_python

AXE_JS = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")

#: WCAG 2.0/2.1 A and AA plus axe's best practices (landmark-unique, region...): what the issue counts.
RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@dataclass(frozen=True)
class AxePage:
    """A page axe-core checks: its path, and a selector present once it has drawn itself."""

    path: str
    ready: str = "main"


#: Every page of ours, and rq-dashboard's; the keys name the test cases.
PAGES: dict[str, AxePage] = {
    "index": AxePage("/"),
    "tasks": AxePage("/tasks", "#tasks"),
    "task-pending": AxePage("/tasks/{PENDING}", "#task"),
    "task-progress": AxePage("/tasks/{PROGRESS}", "#task"),
    "task-retry": AxePage("/tasks/{RETRY}", "#task"),
    "task-success": AxePage("/tasks/{SUCCESS}", "#task"),
    "task-failure": AxePage("/tasks/{FAILURE}", "#task"),
    "task-revoked": AxePage("/tasks/{REVOKED}", "#task"),
    "bulk-retry": AxePage("/tasks/bulk/retry", "#bulk-form"),
    "mail": AxePage("/mail"),
    "not-found": AxePage("/tasks/no-such-task"),
    "rq-queues": AxePage("/rq/0/view/queues", "tr[data-role=queue]"),
    "rq-jobs": AxePage("/rq/0/view/jobs/celery/failed/8/asc/1", "tr[data-role=job]"),
    "rq-job": AxePage("/rq/0/view/job/{FAILURE}", "#job-data pre"),
    "rq-workers": AxePage("/rq/0/view/workers", "#workers"),
}


def axe_violations(page) -> list[str]:
    """Run axe-core on the page as it is now; one line per violation: rule, impact, the nodes' selectors."""
    page.evaluate(AXE_JS)
    results = page.evaluate("options => axe.run(document, options)",
                            {"runOnly": {"type": "tag", "values": RULE_TAGS}, "resultTypes": ["violations"]})
    return [f"{one['id']} ({one['impact']}): {one['help']} at "
            + ", ".join(" ".join(node["target"]) for node in one["nodes"][:5])
            for one in results["violations"]]
