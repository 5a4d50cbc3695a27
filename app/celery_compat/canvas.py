"""Signatures and the canvas: ``chain``, ``group`` and ``chord``, carried inside jobs as JSON.

A signature is a dict (``task``, ``args``, ``kwargs``, ``options``, ``subtask_type``,
``immutable``), as in Celery, so it travels in a job's meta. Ids are fixed (frozen) on the
client, so the caller holds every result before anything runs. The worker advances a chain
when a step succeeds, marks the rest FAILURE when one fails, and runs a chord's body once
the last header task is done (see ``trace.py``).
"""

from __future__ import annotations

import uuid
from typing import Any

from ._state import current_app
from .result import AsyncResult, GroupResult


class Signature(dict):
    """``task.s(...)``: a task call that can be sent later, linked, or composed with ``|``."""

    def __init__(self, task: Any = None, args: Any = None, kwargs: Any = None, options: dict | None = None,
                 subtask_type: str | None = None, immutable: bool = False, app: Any = None, **extra: Any) -> None:
        if isinstance(task, dict):  # rebuilding from JSON
            super().__init__(task)
            self.setdefault("options", {})
            self._app = app
            return
        name = task if isinstance(task, str) or task is None else task.name
        super().__init__(task=name, args=list(args or ()), kwargs=dict(kwargs or {}),
                         options={**(options or {}), **extra}, subtask_type=subtask_type, immutable=immutable)
        self._app = app

    @property
    def app(self) -> Any:
        return self._app or current_app()

    task = property(lambda self: self["task"])
    name = task
    args = property(lambda self: self["args"])
    kwargs = property(lambda self: self["kwargs"])
    options = property(lambda self: self["options"])
    subtask_type = property(lambda self: self.get("subtask_type"))
    immutable = property(lambda self: self.get("immutable", False))
    id = property(lambda self: self["options"].get("task_id"))

    @property
    def type(self) -> Any:
        return self.app.find_task(self["task"])

    def as_dict(self) -> dict:
        return dict(self)

    def clone(self, args: Any = None, kwargs: Any = None, **options: Any) -> Signature:
        """A copy with ``args`` prepended (unless immutable), ``kwargs`` merged and options set."""
        copy = type(self).from_dict(dict(self, options=dict(self.options)), app=self._app)
        if args and not self.immutable:
            copy["args"] = list(args) + list(self.args)
        if kwargs and not self.immutable:
            copy["kwargs"] = {**self.kwargs, **kwargs}
        copy["options"].update(options)
        return copy

    @classmethod
    def from_dict(cls, data: dict, app: Any = None) -> Signature:
        kind = data.get("subtask_type")
        target = {"chain": _chain, "group": group, "chord": chord}.get(kind, Signature)
        return dict.__new__(target)._rebuild(data, app)

    def _rebuild(self, data: dict, app: Any) -> Signature:
        Signature.__init__(self, data, app=app)
        return self

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        if immutable is not None:
            self["immutable"] = immutable
        self["options"].update(options)
        return self

    def freeze(self, _id: str | None = None, group_id: str | None = None, **kwargs: Any) -> Any:
        """Fix the task id now and return the ``AsyncResult`` the call will have."""
        self["options"].setdefault("task_id", _id or str(uuid.uuid4()))
        if group_id:
            self["options"]["group_id"] = group_id
        return AsyncResult(self["options"]["task_id"], app=self.app, task_name=self["task"])

    def link(self, callback: Signature) -> Signature:
        self["options"].setdefault("link", []).append(dict(callback))
        return callback

    def on_error(self, errback: Signature) -> Signature:
        self["options"].setdefault("link_error", []).append(dict(errback))
        return errback

    link_error = on_error

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        sig = self.clone(args, kwargs) if (args or kwargs) else self
        return sig.type.apply_async(sig.args, sig.kwargs, **{**sig.options, **options})

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        sig = self.clone(args, kwargs) if (args or kwargs) else self
        return sig.type.apply(sig.args, sig.kwargs, **{**sig.options, **options})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here, with these arguments prepended (Celery's ``sig()``)."""
        sig = self.clone(args, kwargs) if (args or kwargs) else self
        return sig.type(*sig.args, **sig.kwargs)

    def __or__(self, other: Any) -> Signature:
        if isinstance(other, _chain):
            return _chain(self, *other.tasks, app=self._app)
        if isinstance(other, Signature):
            return _chain(self, other, app=self._app)
        return NotImplemented

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self['task']}({', '.join(parts)})"


def _to_signature(value: Any, app: Any = None) -> Signature:
    if isinstance(value, Signature):
        return value
    return Signature.from_dict(value, app=app)


class _chain(Signature):
    """``chain(a.s(), b.s())`` or ``a.s() | b.s()``: each result is prepended to the next call."""

    def __init__(self, *tasks: Any, app: Any = None, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], dict) and not hasattr(tasks[0], "apply_async"):
            tasks = tuple(tasks[0])
        steps = []
        for task in tasks:
            sig = _to_signature(task, app)
            steps.extend(sig.tasks if isinstance(sig, _chain) else [sig])
        super().__init__("celery.chain", (), {"tasks": steps}, options=options, subtask_type="chain", app=app)

    @property
    def tasks(self) -> list[Signature]:
        return [_to_signature(task, self._app) for task in self["kwargs"]["tasks"]]

    def __or__(self, other: Any) -> Signature:
        if isinstance(other, Signature):
            return _chain(*self.tasks, other, app=self._app)
        return NotImplemented

    def _steps(self) -> list[Signature]:
        """The steps, with a group followed by a task upgraded to a chord, as Celery does."""
        steps: list[Signature] = []
        for sig in self.tasks:
            if steps and isinstance(steps[-1], group) and not isinstance(sig, group):
                steps[-1] = chord(steps[-1], body=sig, app=self._app)
            else:
                steps.append(sig)
        return steps

    def freeze(self, _id: str | None = None, **kwargs: Any) -> Any:
        result = None
        for step in self._steps():
            frozen = step.freeze()
            frozen.parent = result
            result = frozen
        return result

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        steps = self._steps()
        results = []
        for step in steps:
            results.append(step.freeze())
        for previous, result in zip(results, results[1:], strict=False):
            _set_root_parent(result, previous)
        first, rest = steps[0], steps[1:]
        send_step(first, args or (), kwargs or {}, chain=[dict(step) for step in rest], **options)
        return results[-1]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __repr__(self) -> str:
        return " | ".join(repr(task) for task in self.tasks)


def _set_root_parent(result: Any, parent: Any) -> None:
    # A chord's result is its body's; the body's parent is its header group.
    while getattr(result, "parent", None) is not None:
        result = result.parent
    result.parent = parent


def chain(*tasks: Any, **options: Any) -> _chain:
    """Celery's ``chain``: run the tasks one after the other, each getting the previous result."""
    return _chain(*tasks, **options)


class group(Signature):  # noqa: N801 - Celery's name
    """``group(sigs)``: run the tasks in parallel; ``.get()`` on the result lists theirs in order."""

    def __init__(self, *tasks: Any, app: Any = None, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], dict):
            tasks = tuple(tasks[0])
        sigs = [dict(_to_signature(task, app)) for task in tasks]
        super().__init__("celery.group", (), {"tasks": sigs}, options=options, subtask_type="group", app=app)

    @property
    def tasks(self) -> list[Signature]:
        return [_to_signature(task, self._app) for task in self["kwargs"]["tasks"]]

    def __or__(self, other: Any) -> Signature:
        if isinstance(other, Signature) and not isinstance(other, (group, _chain)):
            return chord(self, body=other, app=self._app)
        return super().__or__(other)

    def freeze(self, _id: str | None = None, group_id: str | None = None, **kwargs: Any) -> Any:
        group_id = self["options"].setdefault("task_id", _id or group_id or str(uuid.uuid4()))
        sigs = self.tasks
        results = [sig.freeze(group_id=group_id) for sig in sigs]
        self["kwargs"]["tasks"] = [dict(sig) for sig in sigs]
        return GroupResult(group_id, results, app=self.app)

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Send every member in one pipelined round trip and return their ``GroupResult``."""
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs, **options)
        result = self.freeze()
        options.pop("task_id", None)
        with self.app.connection.pipeline(transaction=False) as pipe:
            for sig in self.tasks:
                send_step(sig, args or (), kwargs or {}, pipeline=pipe, **options)
            pipe.execute()
        return result

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        result = self.freeze()
        return GroupResult(result.id, [sig.apply(args, kwargs) for sig in self.tasks], app=self.app)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(task) for task in self.tasks)}])"


class chord(Signature):  # noqa: N801 - Celery's name
    """``chord(header)(body)``: the body gets the list of header results, once all are done."""

    def __init__(self, header: Any, body: Any = None, app: Any = None, **options: Any) -> None:
        header_group = header if isinstance(header, group) else group(header, app=app)
        super().__init__("celery.chord", (), {"header": dict(header_group), "body": dict(body) if body else None},
                         options=options, subtask_type="chord", app=app)

    @property
    def header(self) -> group:
        return _to_signature(self["kwargs"]["header"], self._app)

    @property
    def body(self) -> Signature | None:
        body = self["kwargs"]["body"]
        return _to_signature(body, self._app) if body else None

    def freeze(self, _id: str | None = None, **kwargs: Any) -> Any:
        header, body = self.header, self.body
        header_result = header.freeze()
        body_result = body.freeze(_id)
        body_result.parent = header_result
        self["kwargs"]["header"], self["kwargs"]["body"] = dict(header), dict(body)
        return body_result

    def apply_async(self, args: Any = None, kwargs: Any = None, chain: list | None = None, **options: Any) -> Any:
        """Save the header's ids, send the header; the last header task to finish sends the body."""
        body_result = self.freeze()
        header, body = self.header, self.body
        if chain:
            body["options"]["chain"] = chain
        header_result = body_result.parent
        header_result.save()
        chord_info = {"group_id": header_result.id, "size": len(header.tasks), "body": dict(body)}
        with self.app.connection.pipeline(transaction=False) as pipe:
            for sig in header.tasks:
                send_step(sig, args or (), kwargs or {}, pipeline=pipe, chord=chord_info, **options)
            pipe.execute()
        return body_result

    def __call__(self, body: Any = None, **options: Any) -> Any:
        if body is not None:
            self["kwargs"]["body"] = dict(body)
        return self.apply_async(**options)

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"


def send_step(step: Signature, args: Any, kwargs: Any, **options: Any) -> Any:
    """Send one step of a canvas: a plain task, or a nested group or chord."""
    step = _to_signature(step)
    if isinstance(step, chord):
        return step.apply_async(args, kwargs, **options)
    if isinstance(step, group):
        options.pop("chain", None)
        return step.apply_async(args, kwargs, **options)
    sig = step.clone(args, kwargs) if (args or kwargs) else step
    return sig.app.send_task(sig.task, sig.args, sig.kwargs, **{**sig.options, **options})


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """``signature('proj.add', args=(1, 2))``, or a signature rebuilt from its dict."""
    app = kwargs.pop("app", None)
    if isinstance(varies, dict):
        return varies if isinstance(varies, Signature) else Signature.from_dict(varies, app=app)
    return Signature(varies, *args, app=app, **kwargs)


maybe_signature = signature
subtask = signature
