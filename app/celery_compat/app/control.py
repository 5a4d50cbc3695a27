"""``app.control``: revoke, purge and a small ``inspect()``, built on RQ's queues and commands."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.worker import Worker

from .. import states
from ..exceptions import TaskRevokedError
from ..protocol import REVOKED_FIELD as REVOKED_FIELD

if TYPE_CHECKING:
    from .base import Celery

logger = logging.getLogger(__name__)

_NOT_STARTED = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
#: Set in a revoked task's job hash: the lean worker reads it with the job, at no extra cost.


class Control:
    """Worker remote control, as far as RQ allows it."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def revoke(self, task_id: str | list[str], destination: Any = None, terminate: bool = False,
               signal: Any = None, **kwargs: Any) -> None:
        """Revoke tasks: a waiting one never runs; a running one is stopped only with ``terminate=True``.

        The revoke is remembered in Redis, so a worker that picks the task up later (a
        scheduled retry, a race with the dequeue) discards it as Celery's workers do.
        """
        for one_id in [task_id] if isinstance(task_id, str) else list(task_id):
            self._revoke_one(str(one_id), terminate)

    def _revoke_one(self, task_id: str, terminate: bool) -> None:
        connection = self.app.connection
        backend = self.app.backend
        backend.mark_revoked(task_id)
        try:
            job = Job.fetch(task_id, connection=connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return
        connection.hset(job.key, REVOKED_FIELD, 1)
        status = job.get_status(refresh=False)
        if status in _NOT_STARTED:
            job.cancel()
            self._store_revoked(job, "revoked")
        elif status == JobStatus.STARTED and terminate:
            self._store_revoked(job, "terminated")
            try:
                send_stop_job_command(connection, task_id, serializer=JSONSerializer)
            except InvalidJobOperation:
                logger.info("Task %s finished before it could be terminated", task_id)

    def _store_revoked(self, job: Job, reason: str) -> None:
        meta = self.app.backend.get_task_meta(job.id)
        if meta["status"] in states.READY_STATES:
            return  # Celery leaves a finished task's result alone
        self.app.backend.store_result(job.id, TaskRevokedError(reason), states.REVOKED)

    def terminate(self, task_id: str, destination: Any = None, signal: str = "SIGTERM", **kwargs: Any) -> None:
        self.revoke(task_id, terminate=True, signal=signal)

    def purge(self) -> int:
        """Delete every waiting task in the app's default queue; return how many there were."""
        queue = self.app.queue(self.app.conf.task_default_queue)
        count = queue.count
        queue.empty()
        return count

    discard_all = purge

    def ping(self, destination: Any = None, timeout: float = 1.0, **kwargs: Any) -> list[dict]:
        return [{worker.name: {"ok": "pong"}} for worker in self._workers()]

    def inspect(self, destination: Any = None, timeout: float = 1.0, **kwargs: Any) -> Inspect:
        return Inspect(self)

    def _workers(self) -> list[Worker]:
        return Worker.all(connection=self.app.connection, serializer=JSONSerializer)


class Inspect:
    """``app.control.inspect()``: what the live workers are doing; ``None`` when none answers."""

    def __init__(self, control: Control) -> None:
        self.control = control

    def _per_worker(self, describe: Any) -> dict | None:
        workers = self.control._workers()
        return {worker.name: describe(worker) for worker in workers} or None

    def active(self, safe: Any = None) -> dict | None:
        def describe(worker: Worker) -> list[dict]:
            job_id = worker.get_current_job_id()
            return [{"id": job_id, "hostname": worker.hostname}] if job_id else []

        return self._per_worker(describe)

    def stats(self) -> dict | None:
        return self._per_worker(lambda w: {"pid": w.pid, "hostname": w.hostname, "queues": w.queue_names(),
                                           "total": {"successful": w.successful_job_count,
                                                     "failed": w.failed_job_count}})

    def registered(self, *taskinfoitems: Any) -> dict | None:
        return self._per_worker(lambda w: sorted(self.control.app.tasks.regular()))

    def active_queues(self) -> dict | None:
        return self._per_worker(lambda w: [{"name": name} for name in w.queue_names()])

    def ping(self) -> dict | None:
        return self._per_worker(lambda w: {"ok": "pong"})
