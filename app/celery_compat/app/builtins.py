"""Celery's built-in tasks, which exist on every worker (``celery.accumulate``, ``celery.map``, ...).

Canvases name some of them: ``Task.replace`` uplifts a group to a chord whose body is
``celery.accumulate``; ``task.map``/``starmap``/``chunks`` send ``celery.map``/``celery.starmap``/
``celery.chunks``. The others are registered so that the names resolve as in Celery.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from ..canvas import Signature, group, signature
from .task import shared_task


@shared_task(name="celery.accumulate")
def accumulate(*args: Any, index: int | None = None) -> Any:
    """Return the arguments (or the one at ``index``): the body a replacing group ends with."""
    return args[index] if index is not None else list(args)


@shared_task(name="celery.map")
def xmap(task: dict, it: list) -> list:
    """Call ``task`` on every item, in this worker."""
    sig = signature(task)
    return [sig.type(item) for item in it]


@shared_task(name="celery.starmap")
def xstarmap(task: dict, it: list) -> list:
    """Call ``task`` with every item as its arguments, in this worker."""
    sig = signature(task)
    return [sig.type(*item) for item in it]


@shared_task(name="celery.chunks")
def chunks(task: dict, it: list, n: int) -> str:
    """Split ``it`` into parts of ``n`` and run each part as one ``celery.starmap`` task."""
    parts = _split(it, n)
    return group(Signature("celery.starmap", (task, part)) for part in parts).apply_async().id


def _split(it: list, n: int) -> list[list]:
    items = iter(it)
    parts = []
    while part := list(islice(items, n)):
        parts.append(part)
    return parts


def _unsupported(name: str) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{name}: the adapter runs canvases from the client and counts chords in "
                                  "Redis, so this built-in task is never sent")
    return shared_task(name=name)(run)


for _name in ("celery.chain", "celery.group", "celery.chord", "celery.chord_unlock", "celery.backend_cleanup"):
    _unsupported(_name)
