"""Bulk actions on the task list: retry every failed task, or cancel every unfinished one, a filter matches.

Each request does a bounded amount of work: one page of the task list's own search
(:func:`app.web.status.task_page`, at most :data:`BATCH` matches and at most
``history.MAX_SCANNED`` tasks examined), then the single-task action (:mod:`app.web.actions`) on
each match, so a Celery program's task is retried by sending its name and arguments again, as
the task page's button does. What is left past the batch is a cursor the next request goes on from.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from app.celery_compat import states
from app.web import history
from app.web.actions import Conflict, cancel_task, retry_task
from app.web.ratelimit import RateLimited, admit
from app.web.status import FINISHED_STATES, RETRYABLE_STATES, UnknownTask, task_page

RETRY = "retry"
CANCEL = "cancel"
ACTIONS = (RETRY, CANCEL)

#: Tasks acted on per request at most: each costs a few round trips (read, then send or revoke).
BATCH = 50


@dataclass(frozen=True)
class Plan:
    """The tasks a bulk action would act on now (newest first), and where the rest starts (None: no more)."""

    task_ids: list[str]
    more: float | None


@dataclass(frozen=True)
class Summary:
    """What a bulk action did: the tasks acted on, those skipped with why, and where the rest starts."""

    done: list[str]
    skipped: list[tuple[str, str]]
    more: float | None

    def reasons(self) -> list[tuple[str, int]]:
        """Why tasks were skipped, each reason once with how many it stopped, most frequent first."""
        return Counter(reason for _, reason in self.skipped).most_common()


def _eligible(action: str, state: str) -> bool:
    return state in RETRYABLE_STATES if action == RETRY else state not in FINISHED_STATES


def scope(action: str, query: history.Query, before: float | None = None) -> history.Query:
    """The list query a bulk action walks: the filter's, with "failed" as the state a retry defaults to."""
    state = query.state or (states.FAILURE if action == RETRY else None)
    return dataclasses.replace(query, state=state, task_id=None, limit=BATCH, before=before, after=None)


def plan(action: str, query: history.Query, before: float | None = None) -> Plan:
    """The batch of tasks ``action`` would act on for ``query``, from ``before`` (a previous batch's rest)."""
    walked = scope(action, query, before)
    if action == RETRY and walked.state not in RETRYABLE_STATES:
        return Plan([], None)  # e.g. "retry all" over SUCCESS tasks: nothing to read
    if action == CANCEL and walked.state in FINISHED_STATES:
        return Plan([], None)
    rows, older, _ = task_page(walked)
    return Plan([row["id"] for row in rows if _eligible(action, row["state"])], older)


def run(action: str, query: history.Query, before: float | None = None) -> Summary:
    """Act on one batch; a task that finished, was retried or vanished meanwhile is skipped, with why.

    Each retry is a submit: it takes one from the client's rate limit and respects the queue's
    bound (:func:`app.web.ratelimit.admit`). Once one is refused the batch stops there, and the
    tasks it did not reach are skipped with that reason, so the summary says what was done.
    """
    batch = plan(action, query, before)
    done: list[str] = []
    skipped: list[tuple[str, str]] = []
    for at, task_id in enumerate(batch.task_ids):
        try:
            if action == CANCEL:
                cancel_task(task_id)
            else:
                admit()
                retry_task(task_id)
        except RateLimited as exc:
            skipped += [(left, exc.reason) for left in batch.task_ids[at:]]
            break
        except UnknownTask:
            skipped.append((task_id, "it is gone (expired)"))
        except Conflict as exc:
            skipped.append((task_id, str(exc)))
        else:
            done.append(task_id)
    return Summary(done, skipped, batch.more)
