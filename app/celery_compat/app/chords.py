"""What the worker does for a canvas: count a chord's header leaves, send its body once, fail what cannot run.

A chord's bookkeeping travels with each leaf of its header (see ``canvas.py``): the header's
group id, its size, the body, the shape of the header's results, the steps that follow the
body and the chord the body is itself a leaf of. Each leaf, once it ends (success, failure,
reject, revoke), adds its id to the chord's member set in Redis (``backend.chord_part``); the
one that completes the set claims the chord and only it reads the results (in header order)
and sends the body, or fails it with ``ChordError`` when a header member failed.

Nothing waits for ever: a body that will never run is stored FAILURE at once, with the steps
after it, and a failed body still counts as a leaf of the chord around it.
"""

from __future__ import annotations

import inspect
import json
import logging
from typing import TYPE_CHECKING, Any

from .. import keys, states
from .._state import Context
from ..canvas import Signature, chain, chord, chord_run, group, leaf_ids, link_list, send_step, signature
from ..exceptions import ChordError
from ..result import _decode_result
from ..serialization import from_wire

if TYPE_CHECKING:
    from .task import Task

logger = logging.getLogger("app.celery_compat.worker")


def chord_part_return(task: Task, request: Context) -> None:
    """Count one finished header leaf; the last one sends the body (or fails it with ChordError)."""
    connection = request.connection or task.app.connection
    count_part(task.app, request.chord, request.id, connection, parent_id=request.id,
               root_id=request.root_id or request.id)


def count_part(app: Any, info: dict, member_id: str, connection: Any, **send_options: Any) -> None:
    """Count ``member_id`` as done for the chord ``info``; send or fail the body when it completes the header."""
    backend = app.backend
    run = chord_run(info)
    if not backend.retrying(backend.chord_part, run, member_id, info["size"], connection):
        return
    added = backend.chord_added(run, connection)
    leaves = info["leaves"] if info.get("leaves") is not None else _saved_shape(info["group_id"], connection)
    ids = leaf_ids(leaves) + added
    metas = dict(zip(ids, backend.get_many_meta(ids, connection=connection), strict=True))
    body = signature(info["body"], app=app)
    for task_id in ids:
        meta = metas[task_id]
        if meta["status"] in states.PROPAGATE_STATES:
            _fail_body(app, info, body, task_id, _decode_result(meta), connection)
            return
    values = [_values(item, metas) for item in leaves + added]
    send_step(body, (values,), {}, chain=info.get("chain"), chord=info.get("parent"), **send_options)


def _fail_body(app: Any, info: dict, body: Signature, task_id: str, cause: Any, connection: Any) -> None:
    """Celery's ``chord_error_from_stack``: the body fails with ChordError (its cause attached).

    A group body is Celery's special case: each member fails with the original error and
    calls its own errbacks and the group's.
    """
    error = ChordError(f"Dependency {task_id} raised {cause!r}")
    error.__cause__ = cause if isinstance(cause, BaseException) else None
    extras: dict[str, dict] = {}
    final = _final(body)
    if isinstance(final, group):
        shared = link_list(final.options.get("link_error"))
        for member in final.tasks:
            target = _final(member)
            extras[target.id] = {"children": _call_errbacks(app, target, error.__cause__ or error, extra=shared)}
        exc: BaseException = error.__cause__ or error
    else:
        extras[final.id] = {"children": _call_errbacks(app, final, error)}
        exc = error
    fail_steps_of(app, [dict(body)] + list(info.get("chain") or ()), exc, None, connection,
                  chord_info=info.get("parent"), extras=extras)


def _final(sig: Signature) -> Signature:
    """The part of a body whose result is the body's: a chain's last step, a chord's body."""
    if isinstance(sig, chain) and sig.tasks:
        return _final(sig.tasks[-1])
    if isinstance(sig, chord) and sig.body is not None:
        return _final(sig.body)
    return sig


def _saved_shape(group_id: str, connection: Any) -> list:
    """A streamed header's shape, saved with its ``GroupResult`` once the generator was consumed."""
    raw = connection.get(keys.taskset(group_id))
    return json.loads(raw) if raw else []


def _values(leaves: Any, metas: dict[str, dict]) -> Any:
    if isinstance(leaves, str):
        return from_wire(metas[leaves]["result"])
    return [_values(item, metas) for item in leaves["results"]]


def _call_errbacks(app: Any, body: Signature, exc: BaseException, extra: list | tuple = ()) -> list:
    """Celery's ``chord_error_from_stack``: the body's errbacks run as if the body had failed.

    An errback taking ``(request, exc, traceback)`` is called here with a request standing for
    the body; those taking a task id are queued, as one group, with the body's id. Returns the
    body's children to store with its failure (that group's result), as Celery does.
    """
    request = Context(id=body.id, task=body.task, args=body.args, kwargs=body.kwargs, root_id=body.options.get(
        "root_id"), errbacks=body.options.get("link_error"), delivery_info={}, is_eager=False, called_directly=False)
    errbacks: list[dict] = []
    for errback in [*link_list(body.options.get("link_error")), *extra]:
        if dict(errback) not in errbacks:  # each errback once, also when linked to the group and its member
            errbacks.append(dict(errback))
    queued = []
    for errback in errbacks:
        errback = signature(errback, app=app)
        try:
            if errback_takes_request(errback.type, errback):
                errback(request, exc, None)  # an immutable errback keeps only its own arguments
            else:
                queued.append(errback)
        except Exception:  # one failing errback must not keep the others, or the body's failure, from happening
            logger.exception("Errback %s of chord body %s failed", errback.task, body.id)
    if not queued:
        return []
    sent = group(queued, app=app).apply_async((body.id,), parent_id=body.id, root_id=request.root_id or body.id)
    return [sent.as_tuple()]


def errback_takes_request(task: Any, errback: Any) -> bool:
    """Celery's arity rule: more than one positional parameter left means ``(request, exc, traceback)``.

    Such an errback is called in place; bound tasks are always queued (Celery's workaround so
    that errbacks can retry).
    """
    if getattr(task, "bind", False):
        return False
    try:
        spec = inspect.getfullargspec(task.run)
    except TypeError:
        return False
    if spec.varargs:
        return True
    remaining = list(spec.args)
    if not errback.immutable:
        remaining = [name for name in remaining[len(errback.args):] if name not in errback.kwargs]
    return len(remaining) > 1


def fail_steps(task: Task, steps: list[dict], exc: BaseException, traceback: str | None, connection: Any) -> None:
    """Store FAILURE with ``exc`` for every step that will now never run, so ``.get()`` returns at once."""
    fail_steps_of(task.app, steps, exc, traceback, connection)


def fail_steps_of(app: Any, steps: list[dict], exc: BaseException, traceback: str | None, connection: Any,
                  chord_info: dict | None = None, extras: dict[str, dict] | None = None) -> None:
    """Fail every task of ``steps`` (the last one a leaf of ``chord_info``), then count the chords' leaves.

    ``extras``: more fields for some tasks' documents (a failed chord body's ``children``).

    Counting matters: a chord waiting on a leaf of a failed step would otherwise wait for ever.
    """
    ids: list[str] = []
    parts: list[tuple[dict, str]] = []
    for index, step in enumerate(steps):
        inherited = chord_info if index == len(steps) - 1 else None
        _collect(signature(step, app=app), inherited, ids, parts)
    backend = app.backend
    with connection.pipeline(transaction=False) as pipe:
        for task_id in ids:
            backend.store_result(task_id, exc, states.FAILURE, traceback, extra=(extras or {}).get(task_id),
                                 pipeline=pipe)
        pipe.execute()
    for info, member_id in parts:
        count_part(app, info, member_id, connection)


def _collect(sig: Signature, info: dict | None, ids: list[str], parts: list[tuple[dict, str]]) -> None:
    """The ids in ``sig`` to fail, and its leaves with the chord each counts for."""
    info = info or sig.options.get("chord")
    if isinstance(sig, chord):
        for member in sig.header.tasks:
            _collect(member, None, ids, parts)
        if sig.body is not None:
            _collect(sig.body, info, ids, parts)
    elif isinstance(sig, chain):
        steps = sig.tasks
        for index, step in enumerate(steps):
            _collect(step, info if index == len(steps) - 1 else None, ids, parts)
    elif isinstance(sig, group):
        for member in sig.tasks:
            _collect(member, info, ids, parts)
    elif sig.id:
        ids.append(sig.id)
        if info:
            parts.append((info, sig.id))


def fail_followers(app: Any, task_id: str, options: dict, exc: BaseException, connection: Any) -> None:
    """A task that can never run (not registered on the worker): fail its chain, count its chord leaf."""
    if options.get("chain"):
        fail_steps_of(app, list(options["chain"]), exc, None, connection)
    if options.get("chord"):
        count_part(app, options["chord"], task_id, connection)
