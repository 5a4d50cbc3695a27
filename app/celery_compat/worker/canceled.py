"""Where RQ files a task stopped by ``revoke(terminate=True)``: with the canceled jobs, not the failed ones.

A revoke of a waiting task cancels its job (``Job.cancel``: status ``canceled``, RQ's canceled
registry). A running task stopped by ``terminate=True`` went through RQ's failure path instead
(status ``stopped``, failed registry), so rq-dashboard counted it as failed and its "Canceled"
column stayed 0 while the task's document said REVOKED. Each worker kind's stop path calls this.
"""

from __future__ import annotations

from typing import Any

from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry


def file_terminated(job: Job, pipeline: Any) -> None:
    """Queue on ``pipeline`` the writes that file a terminated task's job as canceled (after its failure record)."""
    job.set_status(JobStatus.CANCELED, pipeline=pipeline)
    options = {"connection": job.connection, "job_class": type(job), "serializer": job.serializer}
    pipeline.zrem(FailedJobRegistry(job.origin, **options).key, job.id)
    CanceledJobRegistry(job.origin, **options).add(job, pipeline=pipeline)
