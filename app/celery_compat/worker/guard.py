"""What a worker agrees to run from Redis: the adapter's entry point, and the project's own tasks.

Anyone who can write to Redis can write a job hash. RQ's own ``Job`` imports and calls
whatever function the hash names (``os.system`` included), and calls the success, failure
and stopped callbacks it names. :class:`TaskJob` is the job class every worker of this
package uses (and the stock ``rq worker`` must be given with ``--job-class``): it runs only
:data:`EXECUTE_TASK`, refuses anything else with a Celery ``FAILURE`` the client can read,
and calls only this package's callbacks. Inside the entry point, :func:`.protocol.may_import`
keeps a task name from Redis from importing modules outside the project.
"""

from __future__ import annotations

import logging
from typing import Any

from rq.exceptions import DeserializationError
from rq.job import Job

from .. import states
from .._state import current_app
from ..exceptions import SecurityError
from ..protocol import EXECUTE_TASK as EXECUTE_TASK
from ..protocol import FAILURE_CALLBACK as FAILURE_CALLBACK
from .claimed import PARTIAL, complete

#: The callbacks a job of ours may name (RQ calls them outside the entry point).
ALLOWED_CALLBACKS = frozenset({FAILURE_CALLBACK})

logger = logging.getLogger("app.celery_compat.worker")


class RefusedJob(SecurityError):
    """Raised for a job whose function is not the adapter's entry point: it is never imported or called."""


class TaskJob(Job):
    """RQ's job, restricted to the adapter's entry point and callbacks.

    The check is in ``func``, the one door through which RQ's workers (forking, simple, and
    the lean one) reach a job's function, so it holds whichever worker class runs the job.
    """

    @property
    def func(self) -> Any:
        if not runnable(self):
            raise refuse(self)
        return super().func  # the entry point itself, by its fixed name

    def __getattr__(self, name: str) -> Any:
        # Only for an attribute not set: a job the lean worker claimed holds a few fields of its
        # hash (see claimed.py); the first look at another reads the rest.
        if name.startswith("__") or not self.__dict__.get(PARTIAL):
            raise AttributeError(name)
        self.complete_claim()
        return getattr(self, name)

    def complete_claim(self) -> None:
        """Read the fields of the job hash the claim left out (nothing for a job read whole)."""
        complete(self)

    # RQ imports and calls these by the name in the hash, outside the entry point: only ours run.
    @property
    def success_callback(self) -> Any:
        return self._callback("success_callback")

    @property
    def failure_callback(self) -> Any:
        return self._callback("failure_callback")

    @property
    def stopped_callback(self) -> Any:
        return self._callback("stopped_callback")

    def _callback(self, kind: str) -> Any:
        name = getattr(self, f"_{kind}_name", None)
        if name is None:
            return None
        if name not in ALLOWED_CALLBACKS:
            logger.error("Job %s names %s %r, which is not the adapter's; it is not called", self.id, kind, name)
            return None
        return getattr(Job, kind).fget(self)


def runnable(job: Job) -> bool:
    """Whether the job names the adapter's entry point and nothing else (False when its data cannot be decoded)."""
    try:
        return job.func_name == EXECUTE_TASK and job.instance is None
    except DeserializationError:
        return False


def refuse(job: Job) -> RefusedJob:
    """Store the refusal as the task's Celery ``FAILURE`` (so no client waits on PENDING) and return it."""
    try:
        why = (f"its function {job.func_name!r} is not the adapter's entry point {EXECUTE_TASK!r}; "
               "a worker runs nothing else")
    except DeserializationError as exc:
        why = f"its data cannot be decoded ({exc}); a worker runs nothing it cannot read"
    error = RefusedJob(f"Refused job {job.id}: {why}")
    logger.error("%s", error)
    current_app().backend.store_result(job.id, error, states.FAILURE, connection=job.connection)
    return error
