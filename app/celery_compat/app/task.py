"""``Task``: what ``@app.task`` returns — call it, ``.delay()`` it, ``.retry()`` from inside it."""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import states
from .._state import Context as Context
from .._state import all_tasks, current_app, shared_tasks, task_stack
from .._state import current_task as current_task
from .._state import current_task_request as current_task_request
from ..canvas import Signature, chord_run, chunks, replacement, xmap, xstarmap
from ..exceptions import Ignore, MaxRetriesExceededError, NotRegistered, Retry
from ..result import AsyncResult, EagerResult
from ..serialization import from_wire, to_wire
from .models import dump_models, pydantic_wrapper
from .trace import run_eagerly

if TYPE_CHECKING:
    from .base import Celery

class FromConfig:
    """A task option that, unless the task sets it, reads the app's setting (Celery binds them alike)."""

    def __init__(self, setting: str) -> None:
        self.setting = setting

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, task: Any, owner: type) -> Any:
        if task is None:
            return self
        return task.app.conf[self.setting]


class Task:
    """A task type with Celery's options as class attributes; instances are callable."""

    name: str | None = None
    typing: bool = True
    max_retries: int | None = 3
    default_retry_delay: float = 180
    rate_limit: Any = None
    ignore_result = FromConfig("task_ignore_result")
    store_errors_even_if_ignored = FromConfig("task_store_errors_even_if_ignored")
    track_started = FromConfig("task_track_started")
    time_limit: float | None = None
    soft_time_limit: float | None = None
    acks_late = FromConfig("task_acks_late")
    reject_on_worker_lost = FromConfig("task_reject_on_worker_lost")
    expires: Any = None
    priority: int | None = None
    queue: str | None = None
    serializer: str = "json"
    throws: tuple = ()
    autoretry_for: tuple = ()
    dont_autoretry_for: tuple = ()
    retry_kwargs: dict = {}
    retry_backoff: bool | int = False
    retry_backoff_max: int = 600
    retry_jitter: bool = True
    abstract: bool = True
    bind: bool = False
    pydantic: bool = False
    _app: Celery | None = None

    #: Whether this type overrides ``__call__``: the trace then calls the task, not ``run``, as Celery does.
    custom_call: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.custom_call = cls.__call__ is not Task.__call__

    def __init__(self) -> None:
        self._requests = threading.local()

    # -- identity ----------------------------------------------------------------------------
    @property
    def app(self) -> Celery:
        return self._app or current_app()

    @property
    def backend(self) -> Any:
        return self.app.backend

    @property
    def _local(self) -> threading.local:
        # A subclass's own __init__ may not call ours (Celery's Task needs no such call).
        local = self.__dict__.get("_requests")
        return local if local is not None else self.__dict__.setdefault("_requests", threading.local())

    @property
    def request(self) -> Context:
        stack = getattr(self._local, "stack", None)
        return stack[-1] if stack else Context()

    def push_request(self, *args: Any, **kwargs: Any) -> None:
        stack = self._local.__dict__.setdefault("stack", [])
        merged = dict(self.request.__dict__)
        if args:
            merged.update(args[0])
        merged.update(kwargs)
        stack.append(Context(merged))

    def pop_request(self) -> None:
        self._local.stack.pop()

    # -- running -----------------------------------------------------------------------------
    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("Tasks must define the run method.")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here and now, as a plain function call (``request.called_directly``)."""
        stack = task_stack()
        self.push_request(args=args, kwargs=kwargs)
        stack.append((self, self.request))
        try:
            return self.run(*args, **kwargs)
        finally:
            stack.pop()
            self.pop_request()

    def check_arguments(self, args: Any, kwargs: Any) -> None:
        """Raise ``TypeError`` now, on the client, when the arguments do not fit ``run``."""
        if not self.typing:
            return
        header = self.__dict__.get("_header")
        if header is None:
            header = self._header = argument_checker(self.run)
        if header is not None:
            header(*(args or ()), **(kwargs or {}))

    # -- sending -----------------------------------------------------------------------------
    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Queue the task with these arguments; returns its ``AsyncResult`` at once."""
        return self.apply_async(args, kwargs)

    def apply_async(self, args: Any = None, kwargs: Any = None, task_id: str | None = None,
                    producer: Any = None, link: Any = None, link_error: Any = None, shadow: str | None = None,
                    **options: Any) -> AsyncResult:
        """Queue the task with Celery's options (countdown, eta, expires, queue, task_id, ...)."""
        if self.soft_time_limit and self.time_limit and self.soft_time_limit > self.time_limit:
            # Celery checks the task's own limits (not per-call ones) here, before anything is sent.
            raise ValueError("soft_time_limit must be less than or equal to time_limit")
        self.check_arguments(args, kwargs)
        if self.pydantic:
            args, kwargs = dump_models(args, kwargs)
        if self.app.conf.task_always_eager:
            # Celery serializes the arguments even in eager mode, so tests see what a worker would.
            args, kwargs = from_wire(to_wire(list(args or ()))), from_wire(to_wire(dict(kwargs or {})))
            return self.apply(args, kwargs, task_id=task_id or str(uuid.uuid4()), link=link, link_error=link_error,
                              **options)
        parent = current_task_request()
        if parent is not None and not parent.called_directly:
            options.setdefault("parent_id", parent.id)
            options.setdefault("root_id", parent.root_id or parent.id)
        return self.app.send_task(self.name, args, kwargs, task_id=task_id, link=link, link_error=link_error,
                                  shadow=shadow, task_type=self, **options)

    def apply(self, args: Any = None, kwargs: Any = None, link: Any = None, link_error: Any = None,
              task_id: str | None = None, retries: int | None = None, throw: bool | None = None,
              logfile: Any = None, loglevel: Any = None, headers: Any = None, **options: Any) -> EagerResult:
        """Run the task in this process, retries included, and return an ``EagerResult``."""
        if throw is None:
            throw = self.app.conf.task_eager_propagates
        return run_eagerly(self, list(args or ()), dict(kwargs or {}), task_id or str(uuid.uuid4()),
                           retries or 0, throw, link=link, link_error=link_error)

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult:  # noqa: N802 - Celery's name
        return AsyncResult(task_id, app=self.app, task_name=self.name, **kwargs)

    # -- inside the task ---------------------------------------------------------------------
    def update_state(self, task_id: str | None = None, state: str | None = None, meta: Any = None,
                     **kwargs: Any) -> None:
        """Store a state (``'PROGRESS'`` or any custom one) and its meta now, for clients to read."""
        request = self.request
        if task_id is None:
            if request.id is None or request.is_eager:
                return  # a direct or eager call has nothing stored to update
            task_id = request.id
        self.backend.store_result(task_id, meta, state or states.PENDING, connection=request.connection)

    def retry(self, args: Any = None, kwargs: Any = None, exc: BaseException | None = None, throw: bool = True,
              eta: Any = None, countdown: float | None = None, max_retries: int | None = None,
              **options: Any) -> Retry:
        """Ask to run again later with the same id; raises :class:`Retry` (or the error when out of retries)."""
        request = self.request
        retries = request.retries + 1
        max_retries = self.max_retries if max_retries is None else max_retries
        if request.called_directly:
            if exc is not None:
                raise exc
            raise Retry("Task can be retried", None)
        if not eta and countdown is None:
            countdown = self.default_retry_delay
        args, kwargs = self._retry_arguments(request, args, kwargs)
        if max_retries is not None and retries > max_retries:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"Can't retry {self.name}[{request.id}] args:{tuple(args or ())} kwargs:{kwargs}",
                task_args=args, task_kwargs=kwargs)
        sig = {"args": list(args or ()), "kwargs": dict(kwargs or {}), "countdown": countdown, "eta": eta,
               "retries": retries, "options": options}
        ret = Retry(exc=exc, when=eta or countdown, is_eager=request.is_eager, sig=sig)
        if throw:
            raise ret
        return ret

    def _retry_arguments(self, request: Any, args: Any, kwargs: Any) -> tuple[list, dict]:
        """The arguments of a retry: what it gives, the rest from the request, no name given twice.

        As Celery 5.7: ``retry(args=...)`` drops the request's keyword arguments the new positional
        ones now fill; ``retry(kwargs=...)`` turns the request's positional arguments into keyword
        ones when the new keyword arguments name one of them.
        """
        if args is not None and kwargs is not None:
            return list(args), dict(kwargs)
        old_args, old_kwargs = list(request.args or ()), dict(request.kwargs or {})
        if args is None and kwargs is None:
            return old_args, old_kwargs
        names = self._positional_names()
        if args is not None:
            filled = set(names[:len(args)])
            return list(args), {key: value for key, value in old_kwargs.items() if key not in filled}
        by_name = dict(zip(names, old_args, strict=False))
        if not set(kwargs) & set(by_name) or len(by_name) < len(old_args):
            return old_args, dict(kwargs)  # no clash (or *args the names cannot cover): keep them
        return [], {**old_kwargs, **by_name, **dict(kwargs)}

    def _positional_names(self) -> list[str]:
        try:
            parameters = inspect.signature(self.run).parameters.values()
        except (TypeError, ValueError):
            return []
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return [parameter.name for parameter in parameters if parameter.kind in kinds]

    # -- hooks (override in a base class) ----------------------------------------------------
    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        """Called in the worker before the task runs."""

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        """Called in the worker after the task returned and its result was stored."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Called in the worker after the task raised and the failure was stored."""

    def on_retry(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Called in the worker when the task asked to be retried."""

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Called in the worker after every run, whatever its outcome."""

    # -- canvas ------------------------------------------------------------------------------
    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return Signature(self.name, args, kwargs, app=self.app)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        return Signature(self.name, args, kwargs, immutable=True, app=self.app)

    def signature(self, args: Any = None, *starargs: Any, **starkwargs: Any) -> Signature:
        kwargs = starkwargs.pop("kwargs", None) or {}
        return Signature(self.name, args or (), kwargs, options=starkwargs, app=self.app)

    subtask = signature

    def map(self, it: Any) -> xmap:
        return xmap(self.s(), it, app=self.app)

    def starmap(self, it: Any) -> xstarmap:
        return xstarmap(self.s(), it, app=self.app)

    def chunks(self, it: Any, n: int) -> chunks:
        return chunks(self.s(), it, n, app=self.app)

    def replace(self, sig: Signature) -> Any:
        """Replace this task with ``sig``: it takes the task's id, chain, chord and callbacks; this run ends."""
        return self.on_replace(replacement(sig, self.request, self.app))

    def on_replace(self, sig: Signature) -> Any:
        """Send the replacement (run it here when eager) and end this task with ``Ignore``."""
        if self.request.is_eager:
            return sig.apply().get()
        sig.apply_async()
        raise Ignore("Replaced by new task")

    def add_to_chord(self, sig: Signature, lazy: bool = False) -> Any:
        """Add ``sig`` to the header of the chord this task is a member of (its result comes last)."""
        request = self.request
        if not request.chord:
            raise ValueError("Current task is not member of any chord")
        sig.set(group_id=request.group, chord=request.chord, root_id=request.root_id)
        result = sig.freeze()
        self.backend.add_to_chord(chord_run(request.chord), result)
        return sig if lazy else sig.delay()

    def __repr__(self) -> str:
        return f"<@task: {self.name} of {self.app.main or '__main__'}>"

    def __reduce__(self) -> tuple:
        return _task_by_name, (self.name,)


class _Default:
    """Stands for a default value in a generated function header; its repr is its name there."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def argument_checker(run: Callable) -> Callable | None:
    """A function with ``run``'s parameters and an empty body, as Celery's ``head_from_fun`` makes.

    Calling it raises Python's own ``TypeError`` (``add() missing 1 required positional
    argument: 'y'``) at the price of a plain call; a bound task keeps ``self`` in the count.
    """
    function = getattr(run, "__func__", run)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    namespace: dict[str, Any] = {}
    parameters = []
    for index, parameter in enumerate(signature.parameters.values()):
        if parameter.default is not inspect.Parameter.empty:
            namespace[f"_default_{index}"] = parameter.default
            parameter = parameter.replace(default=_Default(f"_default_{index}"))
        parameters.append(parameter.replace(annotation=inspect.Parameter.empty))
    header = signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty)
    name = function.__name__ if function.__name__.isidentifier() else "task"
    exec(f"def {name}{header}:\n    return 1\n", namespace)  # noqa: S102 - our own generated source
    checker = namespace[name]
    return functools.partial(checker, object()) if function is not run else checker


def gen_task_id(_uuid: Callable[[], Any] = uuid.uuid4) -> str:
    """A new task id, as ``celery.uuid()`` (kombu's ``uuid``) makes it: a random UUID as a string."""
    return str(_uuid())


def _task_by_name(name: str) -> Task:
    for registry in (all_tasks, shared_tasks):
        if name in registry:
            return registry[name]
    raise NotRegistered(name)


def build_task(app: Celery | None, fun: Callable, options: dict) -> Task:
    """Make and register the task type for ``fun``, as Celery's ``app.task`` decorator does."""
    options = dict(options)
    bind = options.pop("bind", False)
    base = options.pop("base", None) or (app.task_cls if app is not None else None) or Task
    if isinstance(base, str):
        module_name, _, attr = base.rpartition(".")
        base = getattr(sys.modules.get(module_name) or __import__(module_name, fromlist=[attr]), attr)
    options.pop("shared", None)
    options.pop("filter", None)
    options.pop("lazy", None)
    if options.get("pydantic"):
        fun = pydantic_wrapper(fun, strict=options.pop("pydantic_strict", False),
                               context=options.pop("pydantic_context", None),
                               dump_kwargs=options.pop("pydantic_dump_kwargs", None))
    module = fun.__module__
    name = options.pop("name", None)
    if name is None:
        name = (app or current_app()).gen_task_name(fun.__name__, module) if app is not None else (
            _shared_name(fun))
    attrs = {
        "name": name,
        "run": fun if bind else staticmethod(fun),
        "_app": app,
        "__doc__": fun.__doc__,
        "__module__": module,
        "__qualname__": fun.__qualname__,
        "__wrapped__": fun,
        "abstract": False,
        "bind": bind,
        **options,
    }
    task_type = type(fun.__name__, (base,), attrs)
    task = task_type()
    if app is not None:
        app.register_task(task)
    else:
        shared_tasks[name] = task
        all_tasks[name] = task
    return task


def _shared_name(fun: Callable) -> str:
    module = fun.__module__
    if module == "__main__":
        module = current_app().main or module
    return f"{module}.{fun.__name__}"


def shared_task(*args: Any, **kwargs: Any) -> Any:
    """``@shared_task``: a task that belongs to whichever app is current when it is used."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return build_task(None, args[0], {})

    def decorate(fun: Callable) -> Task:
        return build_task(None, fun, kwargs)

    return decorate
