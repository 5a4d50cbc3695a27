"""``Celery``: the application object that holds settings, the task registry and the Redis client.

Sending a task writes an RQ job whose function is :func:`app.celery_compat.execution.execute_task`;
the task's name, arguments and Celery options travel with it as JSON, so any RQ worker that
can import the task's module runs it with Celery's semantics.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import os
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from rq import Callback, Queue
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from .. import _state, keys, signals
from .._state import all_tasks, shared_tasks
from ..backends.redis import RedisBackend
from ..exceptions import ImproperlyConfigured, NotRegistered
from ..keys import job as keys_job
from ..protocol import EXECUTE_TASK, FAILURE_CALLBACK, Envelope, may_import
from ..redaction import redact_url
from ..result import AsyncResult, GroupResult
from ..scripts import INDEX_TASK, SEND
from ..serialization import to_wire
from ..utils.time import whole_second_after
from .amqp import AMQP, job_hash
from .bugreport import bugreport
from .config import Settings
from .control import Control
from .replicas import ReplicaWait
from .replicas import execute as execute_with_wait
from .replicas import pipeline as send_pipeline
from .sentinel import sentinel_master
from .task import Task, build_task

_FAILURE_CALLBACK = Callback(FAILURE_CALLBACK)
DEFAULT_REDIS_URL = "redis://localhost:6379/0"



def current_app() -> Celery:
    """The app made or set current last in this thread, else the first app made, else a default."""
    return _state.current_app()


#: What ``register_task(task, **options)`` accepts, as Celery's ``add_autoretry_behaviour`` reads it.
AUTORETRY_OPTIONS = frozenset({"autoretry_for", "dont_autoretry_for", "retry_kwargs", "retry_backoff",
                               "retry_backoff_max", "retry_jitter"})


class TaskRegistry(dict):
    """Tasks by name; shared tasks are visible in every app."""

    def __missing__(self, name: str) -> Task:
        if name in shared_tasks:
            return shared_tasks[name]
        raise NotRegistered(name)

    def regular(self) -> dict:
        return {name: task for name, task in self.items() if not name.startswith("celery.")}


class Celery:
    """A Celery application backed by Redis and RQ.

    >>> app = Celery("proj", broker="redis://localhost:6379/0")
    >>> @app.task
    ... def add(x, y):
    ...     return x + y
    >>> add.delay(2, 3).get(timeout=10)  # with `python worker.py -A proj` running
    5
    """

    def __init__(self, main: str | None = None, loader: Any = None, backend: str | None = None,
                 amqp: Any = None, events: Any = None, log: Any = None, control: Any = None,
                 set_as_current: bool = True, tasks: Any = None, broker: str | None = None,
                 include: list[str] | None = None, changes: dict | None = None, config_source: Any = None,
                 fixups: Any = None, task_cls: Any = None, autofinalize: bool = True, namespace: str | None = None,
                 strict_typing: bool = True, **kwargs: Any) -> None:
        self.main = main
        self.conf = Settings()
        if broker:
            self.conf["broker_url"] = broker
        if backend:
            self.conf["result_backend"] = backend
        if include:
            self.conf["include"] = tuple(include)
        if changes:
            self.conf.update(changes)
        if config_source is not None:
            self.config_from_object(config_source, namespace=namespace)
        self.conf.update({k: v for k, v in kwargs.items() if k in self.conf or k.islower()})
        self.task_cls = task_cls
        self.tasks = TaskRegistry()
        self.strict_typing = strict_typing
        self.backend = RedisBackend(self)
        self.control = Control(self)
        self._connection: redis.Redis | None = None
        self._connection_url: str | None = None
        self._replica_wait = ReplicaWait()
        self._queues: dict[str, Queue] = {}
        self.amqp = AMQP(self)
        self._pending_periodic: list[tuple] = []
        self.on_after_configure = signals.Signal("on_after_configure")
        self.on_after_finalize = signals.Signal("on_after_finalize")
        self.finalized = False
        # As in Celery, on_after_configure fires when a setting is first read, after the
        # program had the chance to connect its receivers and change the configuration.
        self.conf.on_first_read = lambda: self.on_after_configure.send(sender=self, source=self.conf)
        if set_as_current:
            self.set_current()
        _state.set_default_app(self, only_if_unset=True)

    # -- configuration -----------------------------------------------------------------------
    def config_from_object(self, obj: Any, silent: bool = False, force: bool = False,
                           namespace: str | None = None) -> None:
        try:
            self.conf.load_object(obj, namespace=namespace)
        except ImportError:
            if not silent:
                raise
        self._connection = None

    def config_from_envvar(self, variable_name: str, silent: bool = False, force: bool = False) -> None:
        module_name = os.environ.get(variable_name)
        if not module_name:
            if silent:
                return
            raise ImportError(f"The environment variable {variable_name!r} is not set")
        self.config_from_object(module_name, silent=silent)

    def set_current(self) -> None:
        _state.set_current_app(self)

    def set_default(self) -> None:
        _state.set_default_app(self)
        self.set_current()

    @property
    def broker_url(self) -> str:
        return self.conf.broker_url or self.conf.result_backend or DEFAULT_REDIS_URL

    @property
    def connection(self) -> redis.Redis:
        """One Redis client per app, made on first use, with timeouts so a dead Redis never hangs a caller."""
        url = self.broker_url
        if self._connection is None or self._connection_url != url:
            if not url.startswith(("redis://", "rediss://", "unix://", "valkey://", "sentinel://")):
                raise ImproperlyConfigured(f"broker_url must be a Redis URL, not {redact_url(url)!r}")
            options = dict(self.conf.broker_transport_options or {})
            options.setdefault("socket_connect_timeout", 5)
            options.setdefault("health_check_interval", 30)
            for kombu_only in ("visibility_timeout", "priority_steps", "sep"):  # the transport's, not the client's
                options.pop(kombu_only, None)
            self._replica_wait = ReplicaWait.take(options)
            if url.startswith("sentinel://"):
                self._connection = sentinel_master(url, options)
            else:
                # Sentinel's options mean nothing to a plain URL; kombu ignores them there too.
                options.pop("master_name", None)
                options.pop("sentinel_kwargs", None)
                self._connection = redis.Redis.from_url(url.replace("valkey://", "redis://", 1), **options)
            self._connection_url = url
            self._queues.clear()
        return self._connection

    def connection_for_write(self) -> redis.Redis:
        return self.connection

    connection_for_read = connection_for_write

    def send_pipeline(self, transaction: bool = True, one_command: bool = False) -> Any:
        """The pipeline a send is written in; give it to :meth:`execute_send` (it may hold a connection).
        ``one_command``: the send is one EVAL outside a transaction (a cheaper stand-in may be returned)."""
        return send_pipeline(self.connection, self._replica_wait, transaction, one_command)

    def execute_send(self, pipe: Any, task_ids: list[str]) -> list:
        """Run a send's transaction; with ``wait_for_replicas``, return only once that many replicas have it.

        Raises :class:`~app.celery_compat.exceptions.NotReplicatedError` when fewer confirmed within
        ``wait_timeout``: the tasks are queued, but a failover now could lose them.
        """
        return execute_with_wait(pipe, self._replica_wait, task_ids)

    def queue(self, name: str, priority: int | None = None) -> Queue:
        """The RQ queue called ``name`` on this app's Redis, with JSON jobs; with ``priority``, the list
        of ``name`` that priority waits in (one RQ queue per step, see :class:`.amqp.Priorities`)."""
        connection = self.connection
        list_name = name if priority is None else self.amqp.priorities.queue(name, priority)
        queue = self._queues.get(list_name)
        if queue is None:
            queue = self._queues[list_name] = Queue(list_name, connection=connection, serializer=JSONSerializer)
            self.amqp.used.add(name)
        return queue

    # -- tasks -------------------------------------------------------------------------------
    def task(self, *args: Any, **opts: Any) -> Any:
        """Decorator that turns a function into a :class:`Task` registered under its name."""
        if len(args) == 1 and callable(args[0]) and not opts:
            return build_task(self, args[0], {})

        def decorate(fun: Callable) -> Task:
            return build_task(self, fun, opts)

        return decorate

    def gen_task_name(self, name: str, module: str) -> str:
        if module == "__main__" and self.main:
            module = self.main
        return f"{module}.{name}"

    def register_task(self, task: Task | type[Task], **options: Any) -> Task:
        """Register a task-based class, or an instance of one, as Celery's ``register_task`` does.

        A class is instantiated; a task without a name is named after its class and module;
        ``options`` (``autoretry_for``, ``retry_kwargs``, ``retry_backoff``, ...) become its attributes.
        Returns the registered instance, which is what ``.delay()`` must be called on.
        """
        if inspect.isclass(task):
            task = task()
        if not task.name:
            task.name = self.gen_task_name(type(task).__name__, type(task).__module__)
        for key in AUTORETRY_OPTIONS.intersection(options):
            setattr(task, key, options[key])
        if getattr(task, "_app", None) is None:
            # A task already bound to its app stays bound (another app may list it, as Celery's
            # registries share tasks): rebinding would send its .delay() to this app's Redis.
            task._app = self
        self.tasks[task.name] = task
        all_tasks[task.name] = task
        return task

    def add_periodic_task(self, schedule: Any, sig: Any, args: Any = (), kwargs: Any = (), name: str | None = None,
                          **opts: Any) -> str:
        """Add a ``beat_schedule`` entry for ``sig`` (Celery's API, usually in ``on_after_configure``)."""
        key = name or repr(sig)
        self.conf.setdefault("beat_schedule", {})
        self.conf["beat_schedule"] = {**self.conf["beat_schedule"], key: {
            "task": sig.name, "schedule": schedule, "args": tuple(args) or tuple(sig.args),
            "kwargs": dict(kwargs) or dict(sig.kwargs), "options": {**sig.options, **opts},
        }}
        return key

    def finalize(self, auto: bool = False) -> None:
        if not self.finalized:
            self.finalized = True
            self.conf._first_read()
            self.on_after_finalize.send(sender=self)

    def autodiscover_tasks(self, packages: Any = None, related_name: str = "tasks", force: bool = False) -> None:
        """Import ``<package>.<related_name>`` for each package, so their tasks register.

        Without packages, those of a Django project's ``INSTALLED_APPS`` (``DJANGO_SETTINGS_MODULE``),
        as Celery's Django fixup does; the settings module is read as a plain module.
        """
        if callable(packages):
            packages = packages()
        if packages is None:
            packages = _installed_apps()
        for package in packages or ():
            module = f"{package}.{related_name}"
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                # Missing: the module itself or a package above it (django.contrib.* without Django).
                if not exc.name or not (module == exc.name or module.startswith(f"{exc.name}.")):
                    raise

    def import_default_modules(self) -> None:
        for module in tuple(self.conf.imports or ()) + tuple(self.conf.include or ()):
            importlib.import_module(module)

    def find_task(self, name: str) -> Task:
        """The task called ``name``, importing the project module it names if that is what it takes."""
        for registry in (self.tasks, all_tasks, shared_tasks):
            if name in registry:
                return registry[name]
        module = name.rsplit(".", 1)[0]
        if may_import(module):  # never a module outside the project because a message named it
            try:
                importlib.import_module(module)
            except ImportError:
                pass
        if name in all_tasks:
            return all_tasks[name]
        if name in shared_tasks:
            return shared_tasks[name]
        raise NotRegistered(name)

    # -- routing -----------------------------------------------------------------------------
    def route(self, name: str, queue: str | None = None, task: Task | None = None,
              args: Any = None, kwargs: Any = None) -> str:
        """The queue a task goes to: ``queue=``, then ``task_routes``, then the task's, then the default."""
        if queue:
            return queue.name if hasattr(queue, "name") else str(queue)
        routed = self._route_from_table(name, args, kwargs)
        if routed:
            return routed
        if task is not None and getattr(task, "queue", None):
            return task.queue
        return self.conf.task_default_queue

    def _route_from_table(self, name: str, args: Any, kwargs: Any) -> str | None:
        routes = self.conf.task_routes
        if not routes:
            return None
        for router in routes if isinstance(routes, (list, tuple)) else [routes]:
            if callable(router):
                found = router(name, args, kwargs, {}, task=self.tasks.get(name))
            elif isinstance(router, str):
                found = importlib.import_module(router.rsplit(".", 1)[0]).__dict__[router.rsplit(".", 1)[1]](
                    name, args, kwargs, {})
            else:
                found = _match_route_table(router, name)
            if found:
                queue = found.get("queue") if isinstance(found, dict) else found
                if queue:
                    return queue.name if hasattr(queue, "name") else str(queue)
        return None

    # -- sending -----------------------------------------------------------------------------
    def send_task(self, name: str, args: Any = None, kwargs: Any = None, countdown: float | None = None,
                  eta: datetime | None = None, task_id: str | None = None, producer: Any = None,
                  connection: Any = None, router: Any = None, result_cls: Any = None,
                  expires: Any = None, publisher: Any = None, link: Any = None, link_error: Any = None,
                  add_to_parent: bool = True, group_id: str | None = None, retries: int = 0,
                  chord: Any = None, reply_to: Any = None, time_limit: float | None = None,
                  soft_time_limit: float | None = None, root_id: str | None = None,
                  parent_id: str | None = None, route_name: Any = None, shadow: str | None = None,
                  chain: Any = None, task_type: Any = None, queue: Any = None,
                  ignore_result: bool | None = None, pipeline: Any = None, subscribe_result: bool = True,
                  **options: Any) -> AsyncResult:
        """Queue the task called ``name`` without importing it, and return its :class:`AsyncResult`.

        ``subscribe_result=False`` (the adapter's, not Celery's): for a sender that hands the id on
        and never waits here, such as a web request, no pub/sub subscription to the result is made
        at send time; ``get()`` on the result still works (it reads the result, then subscribes).
        """
        task = task_type or self.tasks.get(name) or all_tasks.get(name) or shared_tasks.get(name)
        task_id = task_id or str(uuid.uuid4())
        wire_args = to_wire(list(args or ()))
        wire_kwargs = to_wire(dict(kwargs or {}))
        queue_name = self.route(name, queue, task, args, kwargs)
        if ignore_result is None:
            ignore_result = task.ignore_result if task is not None else self.conf.task_ignore_result
        options_meta = self._message_options(task, name, eta, countdown, expires, time_limit, soft_time_limit,
                                             ignore_result, link, link_error, group_id, root_id, parent_id, shadow)
        stamp_headers = self._message_more(options_meta, task, options, chain, chord)
        eta = options_meta.get("eta")
        hard_limit = options_meta.get("time_limit")
        expires_s = self.backend.expires
        envelope = Envelope(name, wire_args, wire_kwargs, options_meta)
        arguments = _describe(wire_args, wire_kwargs)
        job_options = {
            "args": envelope.job_args(),
            "timeout": int(hard_limit) + 1 if hard_limit else -1,
            "result_ttl": 0 if ignore_result else (expires_s or -1),
            "failure_ttl": max(expires_s, 7 * 86400),
            "description": f"{shadow or name}({arguments})",
            "job_id": task_id,
            "meta": envelope.job_meta(),
            # RQ calls it when maintenance finds the task abandoned by a dead worker (recovery.py).
            "on_failure": _FAILURE_CALLBACK,
        }
        if signals.before_task_publish.receivers:
            signals.before_task_publish.send(
                sender=name, body=(wire_args, wire_kwargs, options_meta), exchange="", routing_key=queue_name,
                headers={"id": task_id, "task": name, **stamp_headers}, properties={}, declare=[], retry_policy=None)
        rq_queue = self.queue(queue_name, options_meta.get("priority"))
        index = self._index_call(task_id, shadow or name, queue_name, arguments)
        self._write_send(rq_queue, job_options, index, eta, options_meta.get("parent_id"), pipeline)
        if signals.after_task_publish.receivers:
            signals.after_task_publish.send(sender=name, body=(wire_args, wire_kwargs, options_meta), exchange="",
                                            routing_key=queue_name,
                                            headers={"id": task_id, "task": name, **stamp_headers})
        result = (result_cls or AsyncResult)(task_id, app=self, task_name=name)
        result.ignored = bool(ignore_result)
        if not ignore_result and subscribe_result:
            # Subscribed now, as Celery's Redis backend does; released by get(), forget() or the
            # result's garbage collection.
            self.backend.on_task_call(task_id)
            result._subscribed = True
        return result

    def _message_more(self, options_meta: dict, task: Task | None, options: dict, chain: Any, chord: Any) -> dict:
        """Add to ``options_meta`` the message's extras, canvas and stamps; return the stamp headers."""
        options_meta.update(_message_extras(task, options, self.conf.task_default_priority))
        if chain:
            options_meta["chain"] = [dict(step) for step in chain]
        if chord:
            options_meta["chord"] = dict(chord)
        stamp_headers = _stamps(options)
        options_meta.update(stamp_headers)
        # Signatures inside the message keep their arguments' types as the task's own arguments do.
        for key in ("link", "link_error", "chain", "chord", "stamps"):
            if options_meta.get(key):
                options_meta[key] = to_wire(options_meta[key])
        return stamp_headers

    def _write_send(self, rq_queue: Queue, job_options: dict, index: tuple[list, list], eta: str | None,
                    parent_id: str | None, pipeline: Any) -> None:
        """Write the job, its index entry (and its parent's) on ``pipeline``, or in a send of its own."""
        # A plain send is one script call, atomic by itself: no MULTI/EXEC around it.
        several = eta is not None or bool(parent_id)
        pipe = pipeline if pipeline is not None else self.send_pipeline(transaction=several, one_command=not several)
        if eta is not None:
            job = rq_queue.create_job(EXECUTE_TASK, status=JobStatus.SCHEDULED, **job_options)
            rq_queue.schedule_job(job, whole_second_after(datetime.fromisoformat(eta)), pipeline=pipe)
            pipe.eval(INDEX_TASK, len(index[0]), *index[0], *index[1])
        else:
            self._enqueue(rq_queue, job_options, pipe, index)
        if parent_id:
            self._index_child(pipe, parent_id, job_options["job_id"])
        if pipeline is None:
            self.execute_send(pipe, [job_options["job_id"]])

    def _enqueue(self, queue: Queue, job_options: dict, pipeline: Any, index: tuple[list, list]) -> None:
        """Queue on ``pipeline`` the job ``Queue.enqueue_call(**job_options)`` would write and its
        entry in the task index (``index``, from :meth:`_index_call`), as one Lua call."""
        job_id = job_options["job_id"]
        fields = job_hash(queue.name, job_options["args"], job_options["meta"], job_options["description"],
                          job_options["timeout"], job_options["result_ttl"], job_options["failure_ttl"], self.now())
        index_keys, index_args = index
        keys = [*index_keys, queue.redis_queues_keys, queue.key, keys_job(job_id)]
        # EVAL, not EVALSHA: inside a transaction a script Redis forgot (after a restart) would
        # fail alone while the rest of the transaction is applied.
        pipeline.eval(SEND, len(keys), *keys, *index_args, 0, job_id, *fields)

    def _index_call(self, task_id: str, name: str, queue_name: str, arguments: str) -> tuple[list, list]:
        """The keys and arguments that add the task to the index monitors list (keys.TASKS), trimmed
        by age and count every ``task_index_trim_every`` sends (see ``scripts.INDEX_TASK``)."""
        keep = self._index_keep()
        every = max(1, int(self.conf.task_index_trim_every))
        self._index_sends = sends = self.__dict__.get("_index_sends", 0) + 1
        return index_call(task_id, name, queue_name, arguments, keep, int(self.conf.task_index_max_tasks),
                          trim=sends % every == 1 % every)

    def _index_keep(self) -> int:
        """Seconds the index keeps a task: ``task_index_expires``, else the results' expiry, else a day."""
        keep = self.conf.task_index_expires or self.backend.expires or 86400
        return int(keep.total_seconds()) if hasattr(keep, "total_seconds") else int(keep)

    def _index_child(self, pipe: Any, parent_id: str, task_id: str) -> None:
        """Note ``task_id`` among its parent's children, so the parent's page links to it (two commands)."""
        keep = self._index_keep()
        pipe.sadd(keys.task_children(parent_id), task_id)
        pipe.expire(keys.task_children(parent_id), keep)

    def _message_options(self, task: Task | None, name: str, eta: Any, countdown: Any, expires: Any,
                         time_limit: Any, soft_time_limit: Any, ignore_result: bool, link: Any, link_error: Any,
                         group_id: Any, root_id: Any, parent_id: Any, shadow: Any) -> dict:
        """Celery's per-message options that the worker needs, as JSON (unset ones left out)."""
        if expires is None and task is not None:
            expires = task.expires
        if countdown is not None:
            eta = self.now() + timedelta(seconds=float(countdown))
        if expires is not None and not isinstance(expires, datetime):
            seconds = expires.total_seconds() if hasattr(expires, "total_seconds") else float(expires)
            expires = self.now() + timedelta(seconds=seconds)
        if time_limit is None:
            time_limit = getattr(task, "time_limit", None) or self.conf.task_time_limit
        if soft_time_limit is None:
            soft_time_limit = getattr(task, "soft_time_limit", None) or self.conf.task_soft_time_limit
        options: dict[str, Any] = {"module": task_module(task) if task is not None else None}
        for key, value in (("eta", _as_utc(eta)), ("expires", _as_utc(expires)), ("time_limit", time_limit),
                           ("soft_time_limit", soft_time_limit), ("ignore_result", bool(ignore_result)),
                           ("link", _signatures(link)), ("link_error", _signatures(link_error)),
                           ("group_id", group_id), ("root_id", root_id), ("parent_id", parent_id),
                           ("shadow", shadow)):
            if value is not None:
                options[key] = value
        return options

    def AsyncResult(self, id: str, **kwargs: Any) -> AsyncResult:  # noqa: N802 - Celery's name
        return AsyncResult(id, app=self, **kwargs)

    def GroupResult(self, *args: Any, **kwargs: Any) -> GroupResult:  # noqa: N802 - Celery's name
        return GroupResult(*args, app=self, **kwargs)

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def bugreport(self) -> str:
        """Versions, platform and settings for a bug report, passwords masked."""
        return bugreport(self)

    def close(self) -> None:
        """Release what the app holds in Redis: the results it subscribed at send, and its connections."""
        self.backend.consumer.stop()
        if self._connection is not None:
            self._connection.close()

    def __repr__(self) -> str:
        return f"<Celery {self.main or '__main__'} at {id(self):#x}>"

    def __reduce__(self) -> tuple:
        return self.__class__, (self.main,)


def task_module(task: Task) -> str | None:
    """The module a worker imports to find ``task``: where it is defined (``app.main`` for ``__main__``)."""
    module = getattr(task, "__module__", None)
    run = getattr(task, "run", None)
    module = getattr(run, "__module__", module)
    if module == "__main__":
        app = task._app or current_app()
        return app.main
    return module


def _match_route_table(table: dict, name: str) -> Any:
    if name in table:
        return table[name]
    for pattern, route in table.items():
        if isinstance(pattern, re.Pattern):
            if pattern.match(name):
                return route
        elif "*" in pattern and fnmatch.fnmatchcase(name, pattern):
            return route
    return None


def _as_utc(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # Celery with enable_utc takes naive datetimes as UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def _signatures(value: Any) -> list | None:
    if not value:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return [dict(item) if isinstance(item, dict) else item.as_dict() for item in items]


def index_call(task_id: str, name: str, queue_name: str, arguments: str, keep_seconds: int, max_tasks: int,
               now: float | None = None, trim: bool = True) -> tuple[list, list]:
    """The keys and arguments of ``scripts.INDEX_TASK`` (and the first half of ``scripts.SEND``) for a sent task."""
    index_keys = [keys.TASKS, keys.tasks_by_name(name), keys.tasks_by_queue(queue_name), keys.task_info(task_id)]
    return index_keys, [task_id, repr(time.time() if now is None else now), keep_seconds, max_tasks, name,
                        queue_name, arguments, "1" if trim else "0"]


def index_task(pipe: Any, task_id: str, name: str, queue_name: str, arguments: str, keep_seconds: int,
               max_tasks: int, now: float | None = None, trim: bool = True) -> None:
    """Queue on ``pipe`` the one command that indexes a sent task (see ``scripts.INDEX_TASK``)."""
    index_keys, args = index_call(task_id, name, queue_name, arguments, keep_seconds, max_tasks, now, trim)
    pipe.eval(INDEX_TASK, len(index_keys), *index_keys, *args)


#: AMQP message properties a caller may give to ``apply_async``; the task reads them in
#: ``self.request.properties`` (there is no AMQP message here: they travel in the job's options).
MESSAGE_PROPERTIES = ("app_id", "user_id", "content_type", "content_encoding", "delivery_mode", "message_id",
                      "correlation_id", "reply_to", "type", "expiration")


def _message_extras(task: Task | None, options: dict, default_priority: Any) -> dict:
    """The priority, custom headers and message properties of a send, JSON, unset ones left out.

    They stay in the job's options, so a retry (the same job run again) keeps them as Celery's does.
    """
    extras: dict[str, Any] = {}
    priority = options.get("priority")
    if priority is None:
        priority = getattr(task, "priority", None) if task is not None else None
    if priority is None:
        priority = default_priority
    if priority is not None:
        extras["priority"] = int(priority)
    headers = options.get("headers")
    if headers:
        extras["headers"] = {str(key): value for key, value in dict(headers).items()}
    properties = {name: options[name] for name in MESSAGE_PROPERTIES if options.get(name) is not None}
    if properties:
        extras["properties"] = properties
    if options.get("replaced_task_nesting"):
        extras["replaced_task_nesting"] = int(options["replaced_task_nesting"])
    return extras


def _stamps(options: dict) -> dict:
    """A stamped signature's stamps (``Signature.stamp``), as Celery's message headers carry them."""
    names = options.get("stamped_headers")
    if not names:
        return {}
    return {"stamped_headers": list(names), "stamps": {name: options.get(name) for name in names}}


def _describe(args: list, kwargs: dict) -> str:
    parts = [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
    text = ", ".join(parts)
    return text if len(text) <= 200 else text[:197] + "..."


_state.set_app_factory(Celery)


def _installed_apps() -> list[str]:
    """The packages of ``INSTALLED_APPS`` in the settings module ``DJANGO_SETTINGS_MODULE`` names, if any."""
    settings = os.environ.get("DJANGO_SETTINGS_MODULE")
    if not settings:
        return []
    packages = []
    for entry in getattr(importlib.import_module(settings), "INSTALLED_APPS", ()):
        # "polls.apps.PollsConfig" (an AppConfig) names the package "polls", as app_config.name does.
        parts = entry.split(".")
        if len(parts) > 1 and parts[-1][:1].isupper():
            parts = parts[:-2] if len(parts) > 2 and parts[-2] == "apps" else parts[:-1]
        packages.append(".".join(parts))
    return packages
