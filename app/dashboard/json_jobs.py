"""RQ's classes as rq-dashboard must use them here: JSON only, and readable whatever is stored.

rq-dashboard builds jobs, queues, registries and workers without a serializer in most places,
and RQ's default is pickle, so opening a job page would unpickle whatever is in Redis: code
execution for anyone who can write there. Every class rq-dashboard's module uses is swapped,
in that module only (the worker keeps RQ's own), for a subclass that defaults to JSON.

A value that is not JSON (a foreign or hostile job) is shown as :data:`UNREADABLE` instead of
failing the page; the stored bytes are left as they are.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from rq import Queue, Worker
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

from app.celery_compat import keys

#: What the dashboard shows in place of a stored value that is not JSON.
UNREADABLE = "(not JSON: not shown)"

#: What json.loads raises on bytes that are not JSON (JSONDecodeError is a ValueError).
_NOT_JSON = (ValueError, UnicodeDecodeError)


class _ShownJSON:
    """JSON for results the dashboard only shows: a value that is not JSON reads as :data:`UNREADABLE`."""

    dumps = staticmethod(JSONSerializer.dumps)

    @staticmethod
    def loads(data: bytes) -> Any:
        try:
            return JSONSerializer.loads(data)
        except _NOT_JSON:
            return UNREADABLE


class JSONJob(Job):
    """An rq ``Job`` that reads JSON unless told otherwise, and shows what it cannot read as text."""

    def __init__(self, id: str | None = None, connection: Any = None, serializer: Any = None) -> None:
        super().__init__(id, connection=connection, serializer=serializer or JSONSerializer)

    def get_meta(self, refresh: bool = True) -> dict:
        """The job's meta; ``{"unreadable": UNREADABLE}`` when it is not JSON (``self.meta`` keeps the bytes)."""
        if self._unreadable_meta is not None and not refresh:
            return {"unreadable": UNREADABLE}
        try:
            return super().get_meta(refresh)
        except _NOT_JSON:
            return {"unreadable": UNREADABLE}

    def latest_result(self, timeout: int = 0) -> Result | None:
        """The latest result; a return value that is not JSON reads as :data:`UNREADABLE`.

        Results are only shown, never written back, so reading them leniently loses nothing.
        """
        return Result.fetch_latest(self, serializer=_ShownJSON, timeout=timeout)

    def get_call_string(self) -> str | None:
        """``func(args)`` for the workers page, or :data:`UNREADABLE` when the job's data is not JSON."""
        try:
            return super().get_call_string()
        except DeserializationError:
            return UNREADABLE


class JSONQueue(Queue):
    """An rq ``Queue`` of :class:`JSONJob` that reads JSON unless told otherwise."""

    job_class = JSONJob

    def __init__(self, name: str = "default", connection: Any = None, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = kwargs.get("serializer") or JSONSerializer
        super().__init__(name, connection, *args, **kwargs)


def _json_registry(registry: type) -> type:
    """A subclass of an rq registry class that reads :class:`JSONJob` with JSON unless told otherwise."""

    def __init__(self: Any, name: str = "default", connection: Any = None, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = kwargs.get("serializer") or JSONSerializer
        kwargs["job_class"] = kwargs.get("job_class") or JSONJob
        registry.__init__(self, name, connection, *args, **kwargs)

    doc = f"rq's ``{registry.__name__}`` of :class:`JSONJob`, read with JSON unless told otherwise."
    return type(f"JSON{registry.__name__}", (registry,), {"__init__": __init__, "__doc__": doc})


REGISTRIES = {
    registry.__name__: _json_registry(registry)
    for registry in keys.REGISTRIES.values()  # RQ's six registries of a queue
}


class JSONWorker(Worker):
    """An rq ``Worker`` whose ``all()`` reads workers' current jobs as :class:`JSONJob` with JSON.

    rq-dashboard calls ``Worker.all()`` without a serializer, so a busy worker's current job would be
    unpickled (and workers.json would answer 500 while any JSON job runs).
    """

    @classmethod
    def all(cls, *args: Any, **kwargs: Any) -> list[Worker]:
        kwargs["serializer"] = kwargs.get("serializer") or JSONSerializer
        kwargs["job_class"] = kwargs.get("job_class") or JSONJob
        kwargs["queue_class"] = kwargs.get("queue_class") or JSONQueue
        return super().all(*args, **kwargs)


def json_requeue_job(job_id: str, connection: Any, serializer: Any = None) -> Job:
    """rq's ``requeue_job``, reading the job as a :class:`JSONJob` (rq's own would unpickle it)."""
    return JSONJob.fetch(job_id, connection=connection, serializer=serializer).requeue()


#: The names rq-dashboard's web module imports from rq, and what each becomes there.
REPLACEMENTS: dict[str, Any] = {
    "Job": JSONJob,
    "Queue": JSONQueue,
    "Worker": JSONWorker,
    "requeue_job": json_requeue_job,
    **REGISTRIES,
}


def install(web: ModuleType) -> None:
    """Make rq-dashboard's ``web`` module build every rq object with JSON (process-wide, idempotent)."""
    for name, replacement in REPLACEMENTS.items():
        setattr(web, name, replacement)
    web.config.serializer = JSONSerializer
