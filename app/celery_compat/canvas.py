"""Signatures and the canvas: ``chain``, ``group`` and ``chord``, carried inside jobs as JSON.

A signature is a dict (``task``, ``args``, ``kwargs``, ``options``, ``subtask_type``,
``immutable``), as in Celery, so it travels in a job's meta. Ids are fixed (frozen) on the
client, so the caller holds every result before anything runs.

Composition follows Celery's rules, at any depth:

* a chain's remaining steps travel with the step that runs (``options["chain"]``); a group
  followed by another step becomes a chord whose body is that step, as in Celery;
* groups nested in groups are unrolled into one flat group;
* a chord's bookkeeping (``options["chord"]``: its group id, its size, its body) travels with
  the *leaves* of its header: a header task itself, the last step of a header chain, every
  member of a header group, the body of a header chord. Each leaf counts once when it ends
  (``app/chords.py``); the last one sends the body with the header's results in header order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from ._state import current_app
from .exceptions import ImproperlyConfigured
from .result import AsyncResult, GroupResult


def _item(key: str) -> property:
    """A dict entry exposed as a writable attribute, as Celery's ``Signature`` does (``sig.args = ...``)."""
    return property(lambda self: self[key], lambda self, value: self.__setitem__(key, value))


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
        super().__init__(task=name, args=tuple(args or ()), kwargs=dict(kwargs or {}),
                         options={**(options or {}), **extra}, subtask_type=subtask_type, immutable=immutable)
        self._app = app

    @property
    def app(self) -> Any:
        return self._app or current_app()

    task = _item("task")
    name = task
    args = _item("args")
    kwargs = _item("kwargs")
    options = _item("options")
    subtask_type = property(lambda self: self.get("subtask_type"))
    immutable = property(lambda self: self.get("immutable", False),
                         lambda self, value: self.__setitem__("immutable", value))
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
            copy["args"] = (*args, *self.args)
        if kwargs and not self.immutable:
            copy["kwargs"] = {**self.kwargs, **kwargs}
        copy["options"].update(options)
        return copy

    @classmethod
    def from_dict(cls, data: dict, app: Any = None) -> Signature:
        kind = data.get("subtask_type")
        target = {"chain": chain, "group": group, "chord": chord}.get(kind, Signature)
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
        self["options"]["link"] = [*link_list(self["options"].get("link")), dict(callback)]
        return callback

    def link_error(self, errback: Signature) -> Signature:
        """Call ``errback`` when this task fails; returns the errback."""
        self["options"]["link_error"] = [*link_list(self["options"].get("link_error")), dict(errback)]
        return errback

    def on_error(self, errback: Signature) -> Signature:
        """``link_error`` that returns this signature, for chaining (Celery's ``on_error``)."""
        self.link_error(errback)
        return self

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
        if isinstance(other, chain):
            return chain(self, *other.tasks, app=self._app)
        if isinstance(other, Signature):
            return chain(self, other, app=self._app)
        return NotImplemented

    # -- stamping (Celery 5.3+): custom headers on every task of a canvas ------------------------
    def stamp(self, visitor: Any = None, append_stamps: bool = False, **headers: Any) -> Signature:
        """Stamp this task (and its callbacks and errbacks) with ``headers`` and the visitor's."""
        self.stamp_links(visitor, append_stamps, **headers)
        visitor_headers = visitor.on_signature(self, **headers) or {} if visitor is not None else None
        return self.set(**self._stamp_headers(visitor_headers, append_stamps, **headers))

    def stamp_links(self, visitor: Any, append_stamps: bool = False, **headers: Any) -> None:
        """Stamp the callbacks (``on_callback``) and errbacks (``on_errback``), without this task's own stamps."""
        for option, hook in (("link", "on_callback"), ("link_error", "on_errback")):
            links = self.options.get(option) or []
            if isinstance(links, dict):  # one signature set directly as the option: a list of it, as Celery makes it
                links = self.options[option] = [links]
            for index, link in enumerate(links):
                link = _to_signature(link, self._app)
                visitor_headers = getattr(visitor, hook)(link, **headers) or {} if visitor is not None else None
                link.stamp(visitor, append_stamps,
                           **self._stamp_headers(visitor_headers, append_stamps, self_headers=False, **headers))
                links[index] = dict(link)

    def _stamp_headers(self, visitor_headers: dict | None = None, append_stamps: bool = False,
                       self_headers: bool = True, **headers: Any) -> dict:
        """The stamps to set: ``headers``, the visitor's, then this signature's own, with their names."""
        stamps = dict(headers)
        names = list(stamps.pop("stamped_headers", None) or stamps)
        if visitor_headers:
            visitor_headers = dict(visitor_headers)
            names += visitor_headers.pop("stamped_headers", None) or list(visitor_headers)
            _merge_stamps(stamps, visitor_headers, append_stamps)
        if self_headers:
            names += self.options.get("stamped_headers") or []
            _merge_stamps(stamps, {k: v for k, v in self.options.items() if k in names}, append_stamps)
        stamps["stamped_headers"] = list(dict.fromkeys(names))
        return stamps

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self['task']}({', '.join(parts)})"


def link_list(value: Any) -> list:
    """A ``link``/``link_error`` option as a list: it may be set as one signature (``sig.set(link=s)``)."""
    if not value:
        return []
    return [value] if isinstance(value, dict) else list(value)


def _merge_stamps(into: dict, other: dict, append: bool) -> None:
    """Celery's merge of stamps: lists are joined; a repeated value becomes a list with ``append``."""
    for key, value in other.items():
        if key not in into:
            into[key] = value
        elif isinstance(into[key], list) and isinstance(value, list):
            into[key] = into[key] + [item for item in value if item not in into[key]]
        elif append and into[key] != value:
            into[key] = (into[key] if isinstance(into[key], list) else [into[key]]) + [value]


class StampingVisitor:
    """Celery's stamping API: a visitor whose hooks return the stamps (headers) for each part of a canvas."""

    def on_signature(self, sig: Signature, **headers: Any) -> dict:
        raise NotImplementedError("StampingVisitor.on_signature: a visitor must say how to stamp a task")

    def on_group_start(self, group: Any, **headers: Any) -> dict:
        return {}

    def on_group_end(self, group: Any, **headers: Any) -> None:
        return None

    def on_chain_start(self, chain: Any, **headers: Any) -> dict:
        return {}

    def on_chain_end(self, chain: Any, **headers: Any) -> None:
        return None

    def on_chord_header_start(self, sig: Any, **headers: Any) -> dict:
        return self.on_group_start(sig.tasks, **headers)

    def on_chord_header_end(self, sig: Any, **headers: Any) -> None:
        self.on_group_end(sig.tasks, **headers)

    def on_chord_body(self, sig: Any, **headers: Any) -> dict:
        return {}

    def on_callback(self, callback: Signature, **headers: Any) -> dict:
        return {}

    def on_errback(self, errback: Signature, **headers: Any) -> dict:
        return {}


def _to_signature(value: Any, app: Any = None) -> Signature:
    if isinstance(value, Signature):
        return value
    if not isinstance(value, dict) and hasattr(value, "s"):  # a task itself stands for ``task.s()``
        return value.s()
    return Signature.from_dict(value, app=app)


def _own(sig: Signature) -> dict:
    """A member's own copy: the same signature listed twice must get two ids when frozen."""
    return dict(sig, options=dict(sig.get("options") or {}))


class chain(Signature):  # noqa: N801 - Celery's name
    """``chain(a.s(), b.s())`` or ``a.s() | b.s()``: each result is prepended to the next call."""

    def __init__(self, *tasks: Any, app: Any = None, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], dict) and not hasattr(tasks[0], "apply_async"):
            tasks = tuple(tasks[0])
        steps = []
        for task in tasks:
            sig = _to_signature(task, app)
            steps.extend(_own(step) for step in (sig.tasks if isinstance(sig, chain) else [sig]))
        super().__init__("celery.chain", (), {"tasks": steps}, options=options, subtask_type="chain", app=app)

    @property
    def tasks(self) -> list[Signature]:
        return [_to_signature(task, self._app) for task in self["kwargs"]["tasks"]]

    def __or__(self, other: Any) -> Signature:
        if isinstance(other, Signature):
            return chain(*self.tasks, other, app=self._app)
        return NotImplemented

    def link(self, callback: Signature) -> Signature:
        """A chain's callback follows its last step (Celery's rule)."""
        return self._edit(-1, lambda step: step.link(callback)) or callback

    def link_error(self, errback: Signature) -> Signature:
        """A chain's errback is linked to every step: whichever fails calls it."""
        for index in range(len(self["kwargs"]["tasks"])):
            self._edit(index, lambda step: step.on_error(errback))
        return errback

    def stamp(self, visitor: Any = None, append_stamps: bool = False, **headers: Any) -> None:
        visitor_headers = visitor.on_chain_start(self, **headers) or {} if visitor is not None else None
        headers = self._stamp_headers(visitor_headers, append_stamps, **headers)
        self.stamp_links(visitor, append_stamps, **headers)
        for index in range(len(self["kwargs"]["tasks"])):
            self._edit(index, lambda step: step.stamp(visitor, append_stamps, **headers))
        if visitor is not None:
            visitor.on_chain_end(self, **headers)

    def _edit(self, index: int, change: Any) -> None:
        tasks = self["kwargs"]["tasks"]
        if tasks:
            step = _to_signature(tasks[index], self._app)
            change(step)
            tasks[index] = dict(step)

    def _steps(self) -> list[Signature]:
        """The steps as they run: empty groups dropped, a group followed by a step made a chord with it."""
        steps: list[Signature] = []
        for sig in self.tasks:
            if isinstance(sig, group) and not sig.tasks:
                continue
            if isinstance(sig, group) and len(sig.tasks) == 1:  # a group of one is that one task
                sig = sig.tasks[0]
            if steps and isinstance(steps[-1], group):
                steps[-1] = chord(steps[-1], body=sig, app=self._app)
            else:
                steps.append(sig)
        return steps

    def freeze(self, _id: str | None = None, group_id: str | None = None, **kwargs: Any) -> Any:
        """Freeze every step (the last one with ``_id``); the last step's result, parents linked."""
        steps = self._steps()
        result = None
        for index, step in enumerate(steps):
            last = index == len(steps) - 1
            frozen = step.freeze(_id if last else None, group_id=group_id if last else None)
            if result is not None:
                _set_root_parent(frozen, result)
            result = frozen
        self["kwargs"]["tasks"] = [dict(step) for step in steps]
        if result is not None:
            self["options"]["task_id"] = result.id
        return result

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        if not self.tasks:
            return None
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs, **options)
        result = self.freeze(options.pop("task_id", None))
        linked = _with_links(self, options.pop("link", None), options.pop("link_error", None))
        send_step(linked, args or (), kwargs or {}, **options)
        return result

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Run the steps here, one after the other (``task_always_eager``)."""
        result = None
        for step in self._steps():
            result = step.apply(args, kwargs) if result is None else step.apply((result.get(),), {})
            args, kwargs = None, None
        return result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __repr__(self) -> str:
        return " | ".join(repr(task) for task in self.tasks)


_chain = chain


def _with_links(sig: Signature, link: Any, link_error: Any) -> Signature:
    """``sig`` with ``apply_async(link=..., link_error=...)`` attached as Celery attaches them (a chain's
    callback to its last step, a chord's to its body), on a copy: applying again must not add them twice."""
    if not link and not link_error:
        return sig
    copy = Signature.from_dict(_plain_copy(sig), app=sig._app)
    for callback in _as_list(link):
        copy.link(_to_signature(callback, sig._app))
    for errback in _as_list(link_error):
        copy.on_error(_to_signature(errback, sig._app))
    return copy


def _plain_copy(value: Any) -> Any:
    """A copy of a signature's nested dicts and lists (signatures in it become plain dicts).

    Not ``deepcopy``: a signature object inside would copy its app, Redis client and all.
    """
    if isinstance(value, dict):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_copy(item) for item in value]
    return value


def _as_list(value: Any) -> list:
    if not value:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _set_root_parent(result: Any, parent: Any) -> None:
    # A chord's result is its body's; the body's parent is its header group.
    while getattr(result, "parent", None) is not None:
        result = result.parent
    if result is not parent:
        result.parent = parent


class group(Signature):  # noqa: N801 - Celery's name
    """``group(sigs)``: run the tasks in parallel; ``.get()`` on the result lists theirs in order."""

    def __init__(self, *tasks: Any, app: Any = None, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], dict) and isinstance(tasks[0], Iterable):
            tasks = tuple(tasks[0])
        sigs = [_own(_to_signature(task, app)) for task in tasks]
        super().__init__("celery.group", (), {"tasks": sigs}, options=options, subtask_type="group", app=app)

    @property
    def tasks(self) -> list[Signature]:
        return [_to_signature(task, self._app) for task in self["kwargs"]["tasks"]]

    def _unrolled(self) -> list[Signature]:
        """The members with nested groups unrolled in place, as Celery does."""
        members: list[Signature] = []
        for sig in self.tasks:
            if isinstance(sig, chain) and not sig.tasks:
                continue  # an empty chain is no member at all (Celery's #9772)
            members.extend(sig._unrolled() if isinstance(sig, group) else [sig])
        return members

    def __or__(self, other: Any) -> Signature:
        if isinstance(other, Signature) and not isinstance(other, chain):
            return chord(self, body=other, app=self._app)
        return super().__or__(other)

    def freeze(self, _id: str | None = None, group_id: str | None = None, **kwargs: Any) -> Any:
        # Its own id: never the id of a group it is a member of (Celery's #10856).
        group_id = self["options"].setdefault("task_id", _id or str(uuid.uuid4()))
        sigs = self._unrolled()
        results = [sig.freeze(group_id=group_id) for sig in sigs]
        self["kwargs"]["tasks"] = [dict(sig) for sig in sigs]
        return GroupResult(group_id, results, app=self.app)

    def apply_async(self, args: Any = None, kwargs: Any = None, chord: dict | None = None,
                    pipeline: Any = None, **options: Any) -> Any:
        """Send every member in one pipelined round trip and return their ``GroupResult``."""
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs, **options)
        result = self.freeze(options.pop("task_id", None))
        chord = chord or self.options.get("chord")
        own = {k: v for k, v in self.options.items() if k not in ("task_id", "chord", "group_id", "chain")}
        # The group's errbacks join each member's own (a member that is a chord passes them to its body).
        errbacks = link_list(own.pop("link_error", None)) + link_list(options.pop("link_error", None))
        # The app's send pipeline: with wait_for_replicas, one WAIT after the whole group.
        pipe = pipeline if pipeline is not None else self.app.send_pipeline(transaction=False)
        for sig in self.tasks:
            send_step(_with_links(sig, None, errbacks), args or (), kwargs or {}, chord=chord, pipeline=pipe,
                      **{**own, **options})
        if pipeline is None:
            self.app.execute_send(pipe, leaf_ids(_leaves_of(result)))
        if len(result.results) == 1 and isinstance(result.results[0], GroupResult):
            return result.results[0]  # Celery's special case: group(a | group(b, c)) is the inner group
        return result

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        result = self.freeze()
        return GroupResult(result.id, [sig.apply(args, kwargs) for sig in self.tasks], app=self.app)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __len__(self) -> int:
        return len(self["kwargs"]["tasks"])

    def __iter__(self) -> Any:
        """Iterating a group gives its members, as in Celery (``dict(g)`` still copies its fields)."""
        return iter(self.tasks)

    def link(self, callback: Signature) -> Signature:
        """Celery links a group's callback, made immutable, to its first member."""
        tasks = self["kwargs"]["tasks"]
        if tasks:
            first = _to_signature(tasks[0], self._app)
            first.link(_to_signature(callback).clone().set(immutable=True))
            tasks[0] = dict(first)
        return callback

    def stamp(self, visitor: Any = None, append_stamps: bool = False, **headers: Any) -> None:
        visitor_headers = visitor.on_group_start(self, **headers) or {} if visitor is not None else None
        headers = self._stamp_headers(visitor_headers, append_stamps, **headers)
        self.stamp_links(visitor, append_stamps, **headers)
        tasks = self["kwargs"]["tasks"]
        for index, task in enumerate(tasks):
            member = _to_signature(task, self._app)
            member.stamp(visitor, append_stamps, **headers)
            tasks[index] = dict(member)
        if visitor is not None:
            visitor.on_group_end(self, **headers)

    def link_error(self, errback: Signature) -> Signature:
        """A group's errback is linked to every member."""
        tasks = self["kwargs"]["tasks"]
        for index, task in enumerate(tasks):
            member = _to_signature(task, self._app)
            member.on_error(errback)
            tasks[index] = dict(member)
        return errback

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(task) for task in self.tasks)}])"


class chord(Signature):  # noqa: N801 - Celery's name
    """``chord(header)(body)``: the body gets the list of header results, once all are done."""

    def __init__(self, header: Any = None, body: Any = None, app: Any = None, **options: Any) -> None:
        if isinstance(header, dict) and not isinstance(header, Signature) and "header" in header.get("kwargs", {}):
            super().__init__(header, app=app)  # Celery's chord.from_dict(dict)
            return
        # A generator header is sent as it is consumed, when the chord is applied (Celery's #3021).
        streamed = isinstance(header, Iterator) and not isinstance(header, dict)
        header_group = header if isinstance(header, group) else group(() if streamed else header or (), app=app)
        super().__init__("celery.chord", (), {"header": dict(header_group), "body": dict(body) if body else None},
                         options=options, subtask_type="chord", app=app)
        self._streamed = header if streamed else None

    @property
    def header(self) -> group:
        return _to_signature(self["kwargs"]["header"], self._app)

    tasks = header

    @property
    def body(self) -> Signature | None:
        body = self["kwargs"]["body"]
        return _to_signature(body, self._app) if body else None

    def link(self, callback: Signature) -> Signature:
        """A chord's callback follows its body."""
        self._edit_body(lambda body: body.link(callback))
        return callback

    def link_error(self, errback: Signature) -> Signature:
        """A chord's errback is the body's; also the header's with ``task_allow_error_cb_on_chord_header``."""
        self._edit_body(lambda body: body.on_error(errback))
        if self.app.conf.get("task_allow_error_cb_on_chord_header"):
            header = self.header
            header.link_error(_to_signature(errback, self._app).clone().set(immutable=True))
            self["kwargs"]["header"] = dict(header)
        return errback

    def stamp(self, visitor: Any = None, append_stamps: bool = False, **headers: Any) -> None:
        visitor_headers = visitor.on_chord_header_start(self, **headers) or {} if visitor is not None else None
        headers = self._stamp_headers(visitor_headers, append_stamps, **headers)
        self.stamp_links(visitor, append_stamps, **headers)
        header = self.header
        tasks = header["kwargs"]["tasks"]
        for index, task in enumerate(tasks):
            member = _to_signature(task, self._app)
            member.stamp(visitor, append_stamps, **headers)
            tasks[index] = dict(member)
        self["kwargs"]["header"] = dict(header)
        if visitor is not None:
            visitor.on_chord_header_end(self, **headers)
            if self.body is not None:
                headers = self._stamp_headers(visitor.on_chord_body(self, **headers) or {}, append_stamps, **headers)
                self._edit_body(lambda body: body.stamp(visitor, append_stamps, **headers))

    def _edit_body(self, change: Any) -> None:
        body = self.body
        if body is not None:
            change(body)
            self["kwargs"]["body"] = dict(body)

    def freeze(self, _id: str | None = None, group_id: str | None = None, **kwargs: Any) -> Any:
        header, body = self.header, self.body
        header_result = header.freeze()
        body_result = body.freeze(_id, group_id=group_id)
        _set_root_parent(body_result, header_result)
        self["kwargs"]["header"], self["kwargs"]["body"] = dict(header), dict(body)
        return body_result

    def apply_async(self, args: Any = None, kwargs: Any = None, chain: list | None = None, chord: dict | None = None,
                    pipeline: Any = None, **options: Any) -> Any:
        """Save the header's results, send the header; the last header leaf to finish sends the body."""
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs, **options)
        streamed, self._streamed = getattr(self, "_streamed", None), None
        if streamed is not None:
            return self._apply_streamed(streamed, args, kwargs, chain, chord, **options)
        body_result = self.freeze(options.pop("task_id", None))
        linked = _with_links(self, options.pop("link", None), options.pop("link_error", None))
        header, body = linked.header, linked.body
        header_result = _root(body_result)
        leaves = [_leaves(sig) for sig in header.tasks]
        # ``run``: a frozen chord applied again is a new run with the same ids, counted afresh.
        info = {"group_id": header.id, "run": uuid.uuid4().hex[:12], "size": _count(leaves), "body": dict(body),
                "leaves": leaves,
                "chain": list(chain or ()) or None, "parent": chord or self.options.get("chord")}
        header_result.save()
        if not header.tasks:  # Celery runs the body at once with no results
            send_step(body, ([],), {}, chain=info["chain"], chord=info["parent"], pipeline=pipeline)
            return body_result
        pipe = pipeline if pipeline is not None else self.app.send_pipeline(transaction=False)
        for sig in header.tasks:
            send_step(sig, args or (), kwargs or {}, pipeline=pipe, chord=info, **options)
        if pipeline is None:
            self.app.execute_send(pipe, leaf_ids(leaves))
        return body_result

    def _apply_streamed(self, header: Iterator, args: Any, kwargs: Any, chain: list | None, parent: dict | None,
                        **options: Any) -> Any:
        """Send each header task as the generator yields it; its size is known only at the end.

        The leaves count against a size kept in Redis, set (with the header's shape) before the
        last task is sent: until then the header cannot be complete, so no leaf finishes early.
        """
        header_sig = self.header
        group_id = header_sig["options"].setdefault("task_id", str(uuid.uuid4()))
        body = self.body
        body_result = body.freeze(options.pop("task_id", None))
        info = {"group_id": group_id, "run": uuid.uuid4().hex[:12], "size": None, "body": dict(body),
                "leaves": None, "chain": list(chain or ()) or None, "parent": parent or self.options.get("chord")}
        results: list[Any] = []
        held: Signature | None = None
        for item in header:
            if held is not None:
                send_step(held, args or (), kwargs or {}, chord=info, **options)
            held = _to_signature(_own(_to_signature(item, self._app)), self._app)
            results.append(held.freeze(group_id=group_id))
        header_result = GroupResult(group_id, results, app=self.app).save()
        _set_root_parent(body_result, header_result)
        if held is None:
            send_step(body, ([],), {}, chain=info["chain"], chord=info["parent"])
        else:
            self.app.backend.set_chord_size(chord_run(info), len(leaf_ids([_leaves_of(r) for r in results])))
            send_step(held, args or (), kwargs or {}, chord=info, **options)
        return body_result

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Run the header, then the body with its results, here (``task_always_eager``)."""
        values = self.header.apply(args, kwargs).get()
        return self.body.apply((values,), {})

    def __call__(self, body: Any = None, **options: Any) -> Any:
        if body is not None:
            self["kwargs"]["body"] = dict(body)
        return self.apply_async(**options)

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"


_chord = chord


def _root(result: Any) -> Any:
    """The header result of a frozen chord: the body's outermost parent."""
    while getattr(result, "parent", None) is not None:
        result = result.parent
    return result


def _leaves(sig: Signature) -> Any:
    """What a frozen header member counts with, shaped as its result: an id, or a nested group's list.

    A chain counts with its last step, a chord with its body, a group with every member.
    """
    if isinstance(sig, chord):
        return _leaves(sig.body)
    if isinstance(sig, chain):
        steps = sig.tasks
        return _leaves(steps[-1]) if steps else {"group": None, "results": []}
    if isinstance(sig, group):
        return {"group": sig.id, "results": [_leaves(member) for member in sig.tasks]}
    return sig.id


def _leaves_of(result: Any) -> Any:
    """The ``_leaves`` shape of a frozen result (a group's results nest)."""
    if isinstance(result, GroupResult):
        return {"group": result.id, "results": [_leaves_of(r) for r in result.results]}
    return result.id


def leaf_ids(leaves: Any) -> list[str]:
    """The ids in a ``_leaves`` shape, in order."""
    if isinstance(leaves, str):
        return [leaves]
    if isinstance(leaves, dict):
        return leaf_ids(leaves["results"])
    return [task_id for item in leaves for task_id in leaf_ids(item)]


def chord_run(info: dict) -> str:
    """The name a chord's counting goes by in Redis: its group id and the run (one per apply)."""
    return f"{info['group_id']}:{info['run']}" if info.get("run") else info["group_id"]


def _count(leaves: Any) -> int:
    return len(leaf_ids(leaves))


def send_step(step: Any, args: Any = (), kwargs: Any = None, chain: list | None = None,
              chord: dict | None = None, pipeline: Any = None, **options: Any) -> Any:
    """Send one step of a canvas (a task, chain, group or chord) with what follows it.

    ``chain`` is the list of steps still to run after this one; ``chord`` the bookkeeping of
    the chord this step is a header leaf of. When steps follow, it is the last of them that
    the chord counts, so the bookkeeping moves there.
    """
    step = _to_signature(step)
    rest = [dict(s) for s in chain or ()]
    chord = chord or step.options.get("chord")
    if isinstance(step, _chain):
        steps = step._steps()
        if not steps:
            return send_step(rest[0], args, kwargs, chain=rest[1:], chord=chord, pipeline=pipeline, **options) \
                if rest else None
        rest = [dict(s) for s in steps[1:]] + rest
        step = steps[0]
    if rest and chord:
        rest[-1] = dict(_to_signature(rest[-1]).clone(chord=chord))
        chord = None
    if isinstance(step, group):
        if rest:  # a group followed by steps waits for all its members: a chord, as in Celery
            body = _to_signature(rest[0]) if len(rest) == 1 else _chain(*rest)
            step = _chord(step, body=body, app=step._app)
            step.freeze()
            return step.apply_async(args, kwargs, pipeline=pipeline, **options)
        return step.apply_async(args, kwargs, chord=chord, pipeline=pipeline, **options)
    if isinstance(step, _chord):
        return step.apply_async(args, kwargs, chain=rest, chord=chord, pipeline=pipeline, **options)
    sig = step.clone(args, kwargs) if (args or kwargs) else step
    sent = {**sig.options, **options, "chain": rest or None, "chord": chord, "pipeline": pipeline}
    return sig.app.send_task(sig.task, sig.args, sig.kwargs, **sent)


class xmap(Signature):  # noqa: N801 - Celery's name
    """``task.map(it)``: one ``celery.map`` task calling ``task`` on every item (Celery's ``xmap``)."""

    task_name = "celery.map"

    def __init__(self, task: Any, it: Any, **options: Any) -> None:
        super().__init__(self.task_name, (), {"task": _own(_to_signature(task)), "it": list(it)},
                         immutable=True, **options)


class xstarmap(xmap):  # noqa: N801 - Celery's name
    """``task.starmap(it)``: one ``celery.starmap`` task calling ``task(*item)`` for every item."""

    task_name = "celery.starmap"


class chunks(Signature):  # noqa: N801 - Celery's name
    """``task.chunks(it, n)``: the items in parts of ``n``, each part one ``celery.starmap`` task."""

    def __init__(self, task: Any, it: Any, n: int, **options: Any) -> None:
        super().__init__("celery.chunks", (), {"task": _own(_to_signature(task)), "it": list(it), "n": n},
                         immutable=True, **options)

    def group(self) -> group:
        """The parts as a group of ``celery.starmap`` tasks (Celery's ``chunks.group()``)."""
        task, items, n = self.kwargs["task"], self.kwargs["it"], self.kwargs["n"]
        return group(xstarmap(task, items[start:start + n]) for start in range(0, len(items), n))

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        return self.group().apply_async(args, kwargs, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """``signature('proj.add', args=(1, 2))``, or a signature rebuilt from its dict."""
    app = kwargs.pop("app", None)
    if isinstance(varies, dict):
        return varies if isinstance(varies, Signature) else Signature.from_dict(varies, app=app)
    return Signature(varies, *args, app=app, **kwargs)


maybe_signature = signature
subtask = signature


def replacement(sig: Signature, request: Any, app: Any) -> Signature:
    """What ``Task.replace(sig)`` sends, as in Celery: ``sig`` taking over the task's place.

    It ends under the task's id (so results already handed out stay valid), inherits its
    callbacks, errbacks and chord membership, and is followed by the rest of the task's chain.
    A group is uplifted to a chord with ``celery.accumulate`` as its body, so one task ends it.
    """
    if "chord" in sig.options:
        raise ImproperlyConfigured("A signature replacing a task must not be part of a chord")
    if isinstance(sig, chain) and not sig.tasks:
        raise ImproperlyConfigured("Cannot replace with an empty chain")
    accumulate = Signature("celery.accumulate", (), {"index": 0}, app=app)
    if isinstance(sig, group):
        sig = chord(sig, body=accumulate, app=app)
    if isinstance(sig, chain) and isinstance(sig.tasks[-1], group):
        sig = chain(*sig.tasks[:-1], chord(sig.tasks[-1], body=accumulate, app=app), app=app)
    for callback in request.callbacks or ():
        sig.link(signature(callback, app=app))
    for errback in request.errbacks or ():
        sig.link_error(signature(errback, app=app))
    stamps = getattr(request, "stamps", None)
    if stamps:  # the replacement keeps the stamps of the task it replaces
        sig.stamp(**stamps)
    sig.freeze(request.id)
    nesting = (getattr(request, "replaced_task_nesting", 0) or 0) + 1
    sig.set(group_id=request.group, root_id=request.root_id, replaced_task_nesting=nesting)
    if request.chord:
        sig.set(chord=request.chord)
    if request.chain:
        sig = chain(sig, *request.chain, app=app)
    return sig
