"""Signatures: a task call (name, arguments, options) that can travel inside a job as JSON."""

from __future__ import annotations

import uuid
from typing import Any


class Signature(dict):
    """``task.s(...)``: a partial task call. Links and errbacks are signatures."""

    def __init__(self, task: Any = None, args: Any = None, kwargs: Any = None, options: dict | None = None,
                 subtask_type: str | None = None, immutable: bool = False, app: Any = None, **extra: Any) -> None:
        if isinstance(task, dict):  # rebuilding from JSON
            super().__init__(task)
            self._app = app
            return
        name = task if isinstance(task, str) else task.name
        super().__init__(task=name, args=list(args or ()), kwargs=dict(kwargs or {}),
                         options={**(options or {}), **extra}, subtask_type=subtask_type, immutable=immutable)
        self._app = app

    @property
    def app(self) -> Any:
        from .app import current_app

        return self._app or current_app()

    task = property(lambda self: self["task"])
    name = task
    args = property(lambda self: self["args"])
    kwargs = property(lambda self: self["kwargs"])
    options = property(lambda self: self["options"])
    immutable = property(lambda self: self.get("immutable", False))
    id = property(lambda self: self["options"].get("task_id"))

    @property
    def type(self) -> Any:
        return self.app.find_task(self["task"])

    def as_dict(self) -> dict:
        return dict(self)

    def clone(self, args: Any = None, kwargs: Any = None, **options: Any) -> Signature:
        copy = Signature(dict(self, options=dict(self.options)), app=self._app)
        if args:
            copy["args"] = list(args) if self.immutable else list(args) + list(self.args)
        if kwargs:
            copy["kwargs"] = {**self.kwargs, **kwargs}
        copy["options"].update(options)
        return copy

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        if immutable is not None:
            self["immutable"] = immutable
        self["options"].update(options)
        return self

    def freeze(self, _id: str | None = None, **kwargs: Any) -> Any:
        """Fix the task id now and return the ``AsyncResult`` the call will have."""
        from .result import AsyncResult

        self["options"].setdefault("task_id", _id or str(uuid.uuid4()))
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
        merged = {**sig.options, **options}
        return sig.type.apply_async(sig.args, sig.kwargs, **merged)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        sig = self.clone(args, kwargs) if (args or kwargs) else self
        return sig.type.apply(sig.args, sig.kwargs, **{**sig.options, **options})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        sig = self.clone(args, kwargs) if (args or kwargs) else self
        return sig.type(*sig.args, **sig.kwargs)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self['task']}({', '.join(parts)})"


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """``signature('proj.add', args=(1, 2))``, or a signature rebuilt from its dict."""
    app = kwargs.pop("app", None)
    if isinstance(varies, dict):
        return varies if isinstance(varies, Signature) else Signature(varies, app=app)
    return Signature(varies, *args, app=app, **kwargs)


maybe_signature = signature
subtask = signature
