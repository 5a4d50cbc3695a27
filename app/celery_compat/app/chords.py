"""What the worker does for a canvas: unlock a chord's body once, fail the rest of a chain.

Each header task of a chord, once ready, increments a counter in Redis. ``INCR`` is atomic,
so exactly one task sees the count reach the header's size, however many workers finish
at the same moment, and only that one reads the header's results (in header order) and
sends the body. A counter that goes past the size (a header task run twice) sends nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import keys, states
from ..canvas import Signature, chord, group, send_step, signature
from ..exceptions import ChordError
from ..result import _decode_result
from ..serialization import from_wire

if TYPE_CHECKING:
    from .._state import Context
    from .task import Task

UNLOCK_TTL = 86400


def chord_part_return(task: Task, request: Context) -> None:
    """Count one finished header task; the last one sends the body (or fails it with ChordError)."""
    info = request.chord
    connection = request.connection or task.app.connection
    key = keys.chord_counter(info["group_id"])
    with connection.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, UNLOCK_TTL)
        count, _ = pipe.execute()
    if count != info["size"]:
        return
    ids = json.loads(connection.get(keys.taskset(info["group_id"])))
    metas = task.backend.get_many_meta(ids, connection=connection)
    body = signature(info["body"], app=task.app)
    for task_id, meta in zip(ids, metas, strict=True):
        if meta["status"] in states.PROPAGATE_STATES:
            exc = _decode_result(meta)
            error = ChordError(f"Dependency {task_id} raised {exc!r}")
            fail_steps(task, [dict(body)] + list(body.options.get("chain") or []), error, None, connection)
            return
    values = [from_wire(meta["result"]) for meta in metas]
    body_options = dict(body.options)
    rest = body_options.pop("chain", None)
    # The counter is left to expire: deleting it would let a header task run twice count again.
    send_step(body, (values,), {}, chain=rest, parent_id=request.id, root_id=request.root_id)


def fail_steps(task: Task, steps: list[dict], exc: BaseException, traceback: str | None, connection: Any) -> None:
    """Store FAILURE with ``exc`` for every step that will now never run, so ``.get()`` returns at once."""
    with connection.pipeline(transaction=False) as pipe:
        for task_id in _step_ids(steps, task):
            task.backend.store_result(task_id, exc, states.FAILURE, traceback, pipeline=pipe)
        pipe.execute()


def _step_ids(steps: list[dict], task: Task) -> list[str]:
    ids: list[str] = []
    for step in steps:
        sig = signature(step, app=task.app)
        if isinstance(sig, chord):
            ids += _step_ids([dict(s) for s in sig.header.tasks], task) + _step_ids([dict(sig.body)], task)
        elif isinstance(sig, group):
            ids += _step_ids([dict(s) for s in sig.tasks], task)
        elif isinstance(sig, Signature) and sig.id:
            ids.append(sig.id)
    return ids
