"""What a worker agrees to run from Redis: the adapter's entry point, and the project's own tasks.

Anyone who can write to Redis can write a job hash. RQ's own ``Job`` imports and calls
whatever function the hash names (``os.system`` included), and calls the success, failure
and stopped callbacks it names. :class:`TaskJob` is the job class every worker of this
package uses (and the stock ``rq worker`` must be given with ``--job-class``): it runs only
:data:`EXECUTE_TASK`, refuses anything else with a Celery ``FAILURE`` the client can read,
and calls only this package's callbacks. Inside the entry point, :func:`may_import` keeps a
task name from Redis from importing modules outside the project (the standard library and
installed packages are never imported on a message's say-so).
"""

from __future__ import annotations

import logging
import os
import site
import sys
import sysconfig
from functools import lru_cache
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from rq.job import Job

from . import states
from ._state import current_app
from .exceptions import SecurityError
from .protocol import EXECUTE_TASK as EXECUTE_TASK
from .protocol import FAILURE_CALLBACK as FAILURE_CALLBACK

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
        if self.func_name != EXECUTE_TASK or self.instance is not None:
            raise refuse(self)
        return super().func  # the entry point itself, by its fixed name

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


def refuse(job: Job) -> RefusedJob:
    """Store the refusal as the task's Celery ``FAILURE`` (so no client waits on PENDING) and return it."""
    error = RefusedJob(
        f"Refused job {job.id}: its function {job.func_name!r} is not the adapter's entry point "
        f"{EXECUTE_TASK!r}; a worker runs nothing else")
    logger.error("%s", error)
    current_app().backend.store_result(job.id, error, states.FAILURE, connection=job.connection)
    return error


def may_import(module: str | None) -> bool:
    """Whether a worker may import ``module`` because a message named it: only the project's own code.

    A module qualifies when it and every package above it are files in the worker's working
    directory or on ``PYTHONPATH`` (what the operator chose to run), and not in the standard
    library or an installed package. The files are looked up as the import system would find
    them, without importing anything.
    """
    if not module or not all(part.isidentifier() for part in module.split(".")):
        return False
    if module.split(".", 1)[0] in sys.builtin_module_names:
        return False
    locations: list[str] | None = None  # None: sys.path, as for a top-level import
    for part in module.split("."):
        try:
            spec = PathFinder.find_spec(part, locations)
        except (ImportError, ValueError):
            return False
        if spec is None:
            return False
        if spec.origin is not None and not _in_project(Path(spec.origin)):
            return False
        locations = list(spec.submodule_search_locations or ())
    return spec.origin is not None  # a bare namespace package holds no task


def _in_project(path: Path) -> bool:
    resolved = path.resolve()
    trusted, untrusted = _roots()
    if any(resolved.is_relative_to(root) for root in untrusted):
        return False
    return any(resolved.is_relative_to(root) for root in trusted)


@lru_cache(maxsize=1)
def _roots() -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    trusted = [Path.cwd(), *(Path(entry) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry)]
    paths = sysconfig.get_paths()
    untrusted = [paths.get(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")]
    untrusted += [*site.getsitepackages(), site.getusersitepackages()]
    return (tuple(path.resolve() for path in trusted),
            tuple(Path(path).resolve() for path in untrusted if path))
