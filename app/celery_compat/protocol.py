"""The task message: what the client writes into an RQ job and what every worker reads back.

Below both client and worker, so neither needs the other to agree on it. A task travels as an
RQ job whose function is :data:`EXECUTE_TASK`, whose ``args`` are ``(name, args, kwargs)`` (the
arguments in :mod:`serialization`'s JSON form) and whose ``meta["celery"]`` holds Celery's
per-message options (eta, expires, time limits, links, chain, chord, the task's module, the
redelivery count). :class:`Envelope` is the one place that builds and reads that layout; jobs
queued before it existed have the same layout and read the same way. :func:`may_import` says
which modules a message may cause a process to import: only the project's own, never the
standard library or an installed package.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from rq.exceptions import DeserializationError

from .exceptions import NotRegistered

#: The adapter's import name: ``app.celery_compat`` in this repository, ``celery_compat`` when installed
#: with pip (see pyproject.toml), so that the names below import wherever the adapter is.
PACKAGE = __name__.rpartition(".")[0]
#: The one function a job of ours names. Its path is stored in every queued job: never rename it.
EXECUTE_TASK = f"{PACKAGE}.execution.execute_task"
#: The callback every job of ours carries: RQ calls it when maintenance finds the job abandoned.
FAILURE_CALLBACK = f"{PACKAGE}.recovery.on_job_failure"
#: A field ``revoke()`` adds to the job hash, so the claiming worker learns of it with the job.
REVOKED_FIELD = b"celery_revoked"
#: The key of Celery's options in the job's meta.
META_FIELD = "celery"
#: The task name of a job whose data cannot be decoded.
UNDECODABLE = "<undecodable>"


class MalformedMessage(NotRegistered):
    """Raised when a job names the entry point but its arguments are not ``(name, args, kwargs)``."""


@dataclass
class Envelope:
    """One task message: the task's name, its arguments (JSON form) and Celery's options."""

    name: str
    args: list
    kwargs: dict
    options: dict[str, Any] = field(default_factory=dict)

    # -- writing -------------------------------------------------------------------------------
    def job_args(self) -> tuple[str, list, dict]:
        """The job's ``args``: what :data:`EXECUTE_TASK` is called with."""
        return (self.name, self.args, self.kwargs)

    def job_meta(self) -> dict[str, Any]:
        return {META_FIELD: self.options}

    # -- reading -------------------------------------------------------------------------------
    @classmethod
    def of(cls, job: Any) -> Envelope:
        """Read the message a job carries; raises :class:`MalformedMessage` when it is not one."""
        return cls.parse(job.args, job.meta)

    @classmethod
    def parse(cls, job_args: Any, meta: Any) -> Envelope:
        if not (isinstance(job_args, (list, tuple)) and len(job_args) == 3):
            raise MalformedMessage(f"malformed task message: args are {type(job_args).__name__}, "
                                   "not (name, args, kwargs)")
        name, args, kwargs = job_args
        if not (isinstance(name, str) and isinstance(args, list) and isinstance(kwargs, dict)):
            raise MalformedMessage(f"malformed task message: {type(name).__name__} name, "
                                   f"{type(args).__name__} args, {type(kwargs).__name__} kwargs")
        options = meta.get(META_FIELD) if isinstance(meta, dict) else None
        return cls(name, args, kwargs, options if isinstance(options, dict) else {})

    @staticmethod
    def name_of(job: Any) -> str:
        """The task's name for a log line, whatever the job holds (never raises)."""
        try:
            args = job.args if job.func_name == EXECUTE_TASK else None
        except DeserializationError:  # a job hash whose data is not a job's (written by hand, or damaged)
            return UNDECODABLE
        if isinstance(args, (list, tuple)) and args and isinstance(args[0], str):
            return args[0]
        return str(job.func_name)

    @staticmethod
    def options_of(job: Any) -> dict[str, Any]:
        """Celery's options of a job (empty for a job that has none)."""
        options = job.meta.get(META_FIELD) if isinstance(job.meta, dict) else None
        return options if isinstance(options, dict) else {}

    # -- options the worker reads --------------------------------------------------------------
    @property
    def module(self) -> str | None:
        return self.options.get("module")

    @property
    def time_limit(self) -> float | None:
        return self.options.get("time_limit")

    @property
    def redelivered(self) -> int:
        return int(self.options.get("redelivered") or 0)


def set_arguments(job: Any, args: list, kwargs: dict) -> None:
    """Give a job new arguments (a retry with other ones), keeping its task's name."""
    job.args = [job.args[0], args, kwargs]


def count_redelivery(job: Any) -> int:
    """Add one to the job's redelivery count (written with the job's meta); returns the new count."""
    options = dict(Envelope.options_of(job))
    options["redelivered"] = int(options.get("redelivered") or 0) + 1
    job.meta[META_FIELD] = options
    return options["redelivered"]


# -- what a message may make a worker import ------------------------------------------------
@lru_cache(maxsize=256)
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
