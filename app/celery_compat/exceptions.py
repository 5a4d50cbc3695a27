"""Celery's exception names, as a tree rooted at :class:`CeleryError`.

Control signals (:class:`Retry`, :class:`Ignore`, :class:`Reject`) derive from
:class:`TaskPredicate` and are kept apart from real failures, as Celery does.
"""

from __future__ import annotations

from typing import Any


class CeleryError(Exception):
    """Raised as the base of every error this package defines."""


class TaskPredicate(CeleryError):
    """Raised by a task to tell the worker what to do next (not a failure)."""


class Retry(TaskPredicate):
    """Raised by ``Task.retry()``: the task will run again later with the same id."""

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | None = None,
        is_eager: bool = False,
        sig: Any = None,
        **kwargs: Any,
    ) -> None:
        self.message = message
        self.exc = exc
        self.when = when
        self.is_eager = is_eager
        self.sig = sig
        super().__init__(self, exc, when, **kwargs)

    def humanize(self) -> str:
        if isinstance(self.when, (int, float)):
            return f"in {self.when}s"
        return f"at {self.when}"

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.exc:
            return f"Retry {self.humanize()}: {self.exc!r}"
        return f"Retry {self.humanize()}"

    def __reduce__(self) -> tuple:
        return self.__class__, (self.message, self.exc, self.when)


RetryTaskError = Retry


class Ignore(TaskPredicate):
    """Raised by a task so that the worker stores nothing more about it."""


class Reject(TaskPredicate):
    """Raised by a task to hand its message back (requeue) or drop it."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason, requeue)

    def __repr__(self) -> str:
        return f"reject requeue={self.requeue}: {self.reason}"  # Celery's, as its worker logs it


class ImproperlyConfigured(CeleryError, ImportError):
    """Raised when the configuration asks for something unsupported (for example pickle)."""


class SecurityError(CeleryError):
    """Raised when a serializer that is not allowed is requested."""


class TaskError(CeleryError):
    """Raised as the base of errors about a task's execution."""


class NotRegistered(KeyError, TaskError):
    """Raised when a task name is not in the registry."""

    def __repr__(self) -> str:
        return f"NotRegistered({self.args[0]!r})" if self.args else "NotRegistered()"


class AlreadyRegistered(TaskError):
    """Raised when a task name is registered twice with different functions."""


class TimeoutError(TaskError):  # noqa: A001 - Celery's name, deliberately shadowing the builtin
    """Raised by ``AsyncResult.get()`` when the result is not ready in time."""


class MaxRetriesExceededError(TaskError):
    """Raised by ``Task.retry()`` when the task has no retries left and no ``exc`` was given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.task_args = kwargs.pop("task_args", [])
        self.task_kwargs = kwargs.pop("task_kwargs", {})
        super().__init__(*args, **kwargs)


class TaskRevokedError(TaskError):
    """Raised by ``AsyncResult.get()`` when the task was revoked, expired or terminated."""


class InvalidTaskError(TaskError):
    """Raised when a job does not carry a valid task message."""


class ChordError(TaskError):
    """Raised when a chord's header task failed, so its callback cannot run."""


class IncompleteStream(TaskError):
    """Raised when a result stream ends before every result arrived."""


class QueueNotFound(KeyError, TaskError):
    """Raised when a task is routed to a queue that is not configured."""


class BackendError(CeleryError):
    """Raised when the result backend cannot be read or written."""


class BackendGetMetaError(BackendError):
    """Raised when reading a task's meta from the backend fails."""


class BackendStoreError(BackendError):
    """Raised when storing a task's meta in the backend fails."""


class EncodeError(CeleryError, ValueError):
    """Raised at ``.delay()`` when an argument cannot be encoded as JSON (kombu's name)."""


class DecodeError(CeleryError, ValueError):
    """Raised when a stored message or result is not valid JSON."""


class NotReplicatedError(CeleryError):
    """Raised when a send was written to the Redis master but fewer replicas than ``wait_for_replicas``
    confirmed it within ``wait_timeout``: the task is queued and may run, but a failover now could lose it.
    """

    def __init__(self, task_ids: list[str], confirmed: int, wanted: int, timeout: float) -> None:
        self.task_ids, self.confirmed, self.wanted, self.timeout = list(task_ids), confirmed, wanted, timeout
        tasks = ", ".join(self.task_ids) or "the send"
        super().__init__(f"task {tasks} is queued on the Redis master, but {confirmed} of {wanted} replica(s) "
                         f"confirmed it within {timeout:g} s: a failover now could lose it")

    def __reduce__(self) -> tuple:
        return self.__class__, (self.task_ids, self.confirmed, self.wanted, self.timeout)


class WorkerLostError(Exception):
    """Raised (stored) when the worker running a task died before it finished."""


class Terminated(Exception):
    """Raised (stored) when a task was terminated by ``revoke(terminate=True)``."""


class SoftTimeLimitExceeded(Exception):
    """Raised inside a task when its soft time limit is reached, so it can clean up."""

    def __str__(self) -> str:
        return "SoftTimeLimitExceeded()" if not self.args else super().__str__()


class TimeLimitExceeded(Exception):
    """Raised (stored) when a task ran past its hard time limit and was stopped."""

    def __str__(self) -> str:
        return f"TimeLimitExceeded{self.args!r}"


__all__ = [
    "CeleryError", "TaskPredicate", "Retry", "RetryTaskError", "Ignore", "Reject", "ImproperlyConfigured",
    "SecurityError", "TaskError", "NotRegistered", "AlreadyRegistered", "TimeoutError",
    "MaxRetriesExceededError", "TaskRevokedError", "InvalidTaskError", "ChordError", "IncompleteStream",
    "QueueNotFound", "BackendError", "BackendGetMetaError", "BackendStoreError", "EncodeError", "DecodeError",
    "NotReplicatedError", "WorkerLostError", "Terminated", "SoftTimeLimitExceeded", "TimeLimitExceeded",
]
