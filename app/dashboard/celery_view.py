"""What rq-dashboard shows of a Celery task: the truth the adapter stores, not only RQ's share of it.

The lean worker keeps a task's result, state and progress in Celery's document (read through
:mod:`app.celery_compat.view`), not in RQ's result stream, and it does not write RQ's per-task
fields to its worker hash. rq-dashboard read only RQ's side, so every job showed ``null``, a
revoked one "failed", and every worker ``idle``. Here, for every job that carries a task:

* **result**: the stored result of a successful task;
* **exc_info**: the traceback with the error and the task's frames first (:mod:`tracebacks`);
  the jobs list shows only its start, the job's page all of it;
* **metadata** ``celery``: ``state``, ``retries`` and, while it runs, ``progress`` (what
  ``update_state`` stored);
* **status**: ``canceled`` for a revoked task (Celery's REVOKED), wherever RQ filed it;
* **workers**: busy, with the task they run and since when.

Jobs that carry no task (a plain RQ job on a shared Redis) are shown as rq-dashboard shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from types import ModuleType
from typing import Any

import rq_dashboard.web as rq_web
from flask import current_app, jsonify
from rq.job import Job

from app.celery_compat import states, view
from app.dashboard import tracebacks
from app.dashboard.json_jobs import JSONJob, JSONWorker

#: The view whose JSON is completed here.
JOB_INFO = "rq_dashboard.job_info"

#: rq-dashboard's word for a job that will not run: Celery's REVOKED.
CANCELED = "canceled"


def celery_fields(job: Job, document: dict[str, Any] | None) -> dict[str, Any]:
    """What the task's document adds to a job: state, retries, progress, result and traceback."""
    if document is None:
        return {}
    state = document.get("status") or states.PENDING
    fields: dict[str, Any] = {"state": state, "retries": job.number_of_retries or 0}
    result = document.get("result")
    if state == states.SUCCESS:
        fields["result"] = result
    elif state not in states.READY_STATES and state not in states.EXCEPTION_STATES and result is not None:
        fields["progress"] = result  # update_state(state=..., meta=...) while it runs
    if document.get("traceback"):
        fields["traceback"] = document["traceback"]
    return fields


def _document(job: Job) -> dict[str, Any] | None:
    [document] = view.documents_on(job.connection, [job.id])
    return document


def serialize_job(job: Job) -> dict[str, Any]:
    """A row of rq-dashboard's jobs list: RQ's dates, the task's state, the start of its traceback."""
    fields = celery_fields(job, _document(job))
    latest = job.latest_result()
    # Only a task that ended badly: a row with a traceback offers Requeue, which a retry waiting
    # for its countdown (its traceback says why it retries) would refuse.
    failed = fields.get("state") in states.PROPAGATE_STATES
    exc_string = (fields.get("traceback") if failed else None) or (latest.exc_string if latest else None)
    return {
        "id": job.id,
        "created_at": rq_web.serialize_date(job.created_at),
        "started_at": rq_web.serialize_date(job.started_at),
        "ended_at": rq_web.serialize_date(job.ended_at),
        "exc_info": tracebacks.summary(exc_string),
        "description": rq_web.format_job_description(job),
        "state": fields.get("state"),
        "retries": fields.get("retries"),
    }


def complete_job_info(view_function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap rq-dashboard's job JSON view: add the task's result, state, progress and traceback."""

    @wraps(view_function)
    def wrapped(instance_number: int, job_id: str) -> Any:
        response, headers = view_function(instance_number=instance_number, job_id=job_id)
        data = response.get_json()
        job = JSONJob.fetch(job_id, connection=current_app.redis_conn)
        fields = celery_fields(job, _document(job))
        if fields:
            if "result" in fields:
                data["result"] = fields["result"]
            if fields["state"] == states.REVOKED:
                data["status"] = CANCELED
            if fields["state"] != states.SUCCESS and fields.get("traceback"):
                data["exc_info"] = fields["traceback"]
            meta = json.loads(data.get("metadata") or "{}")
            celery = meta.setdefault("celery", {})
            celery.update({key: fields[key] for key in ("state", "retries", "progress") if key in fields})
            data["metadata"] = json.dumps(meta)
        data["exc_info"] = tracebacks.user_first(data.get("exc_info"))
        return jsonify(data), headers

    return wrapped


class CeleryWorker(JSONWorker):
    """A worker as rq-dashboard lists it: busy, with its current job, also when it is a lean worker."""

    running: view.Running | None = None

    @classmethod
    def all(cls, *args: Any, **kwargs: Any) -> list[Any]:
        workers = super().all(*args, **kwargs)
        queue_names = sorted({queue.name for worker in workers for queue in worker.queues})
        connection = kwargs.get("connection") or (workers[0].connection if workers else None)
        running = view.running_on(connection, queue_names) if workers else {}
        for worker in workers:
            worker.running = running.get(worker.name)
        return workers

    def get_state(self) -> str:
        return "busy" if self.running is not None else super().get_state()

    def get_current_job(self) -> Job | None:
        job = super().get_current_job()
        if job is None and self.running is not None:
            job = JSONJob.fetch(self.running.task_id, connection=self.connection)
        return job


def serialize_current_job(job: Job | None) -> Any:
    """A worker's current job for the workers page, with when it started: ``"idle"`` when none."""
    if job is None:
        return "idle"
    return {
        "job_id": job.id,
        "description": rq_web.format_job_description(job),
        "created_at": rq_web.serialize_date(job.created_at),
        "started_at": rq_web.serialize_date(job.started_at),
        # A task's job calls the adapter's entry point; its description is the task's own call.
        "call_string": job.description or job.get_call_string(),
    }


def install(web: ModuleType) -> None:
    """Make rq-dashboard's module serialise jobs and workers as above (process-wide, idempotent)."""
    web.serialize_job = serialize_job
    web.serialize_current_job = serialize_current_job
    web.Worker = CeleryWorker
