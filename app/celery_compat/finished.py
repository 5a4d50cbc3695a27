"""What the task index keeps of a finished task once its RQ job hash has expired.

A successful task's RQ job hash (about 1.4 KB in Redis: its ``data`` field makes it a hashtable)
and its finished-registry entry live only ``worker_job_keep_seconds`` (see :func:`job_keep_seconds`),
not as long as the result. The pages still show who ran the task, when, how often it was retried,
its relatives and its arguments: the worker copies those facts into the task's index hash
(``keys.task_info``, which lives as long as the index) in the same script that records the
success. The worker writes them (:func:`facts_of`); :mod:`view` reads them back as a ``JobFacts``.
Failed tasks keep their job hash as long as before: rq-dashboard's Requeue needs it.
"""

from __future__ import annotations

import json
from typing import Any

from .protocol import Envelope

#: Default of ``worker_job_keep_seconds``: an hour of finished jobs in rq-dashboard and RQ's API,
#: at ~1.4 KB each that is ~60 bytes per task amortised over results kept a day.
JOB_KEEP_SECONDS = 3600

#: The index hash's fields for each fact (short: the hash stays a compact listpack).
WORKER, STARTED, ENDED, RETRIES, REDELIVERED = "worker", "started", "ended", "retries", "redelivered"
PARENT, ROOT, GROUP, CHORD_BODY, CALL = "parent", "root", "group", "chord_body", "call"
FIELDS = (WORKER, STARTED, ENDED, RETRIES, REDELIVERED, PARENT, ROOT, GROUP, CHORD_BODY, CALL)


def job_keep_seconds(conf: Any) -> int:
    """How long a successful task's RQ job hash and finished-registry entry live (0: as long as the result)."""
    value = conf.get("worker_job_keep_seconds")
    if value is None:
        return JOB_KEEP_SECONDS
    # Never negative: an EXPIRE below zero would delete the job hash at once.
    return max(0, int(value.total_seconds()) if hasattr(value, "total_seconds") else int(value))


def facts_of(job: Any, worker: str, started: str, ended: str) -> list[str]:
    """The facts of a finished ``job`` as index-hash fields, flat (field, value, ...); empty ones left out."""
    options = Envelope.options_of(job)
    chord = options.get("chord") if isinstance(options.get("chord"), dict) else {}
    body = ((chord.get("body") or {}).get("options") or {}) if isinstance(chord.get("body"), dict) else {}
    try:
        envelope = Envelope.of(job)
        call = json.dumps([envelope.args, envelope.kwargs], separators=(",", ":"))
    except (KeyError, ValueError, TypeError):
        call = ""
    values = {
        WORKER: worker, STARTED: started, ENDED: ended,
        RETRIES: str(job.number_of_retries or ""), REDELIVERED: str(options.get("redelivered") or ""),
        PARENT: options.get("parent_id") or "", ROOT: options.get("root_id") or "",
        GROUP: options.get("group_id") or chord.get("group_id") or "", CHORD_BODY: body.get("task_id") or "",
        CALL: call,
    }
    return [item for field, value in values.items() if value for item in (field, str(value))]
