"""``app.conf``: Celery's setting names with Celery's defaults, read as attributes or keys."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

from ..exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    "broker_url": None,
    "result_backend": None,
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "result_accept_content": None,
    "result_expires": timedelta(days=1),
    "result_failure_expires": None,  # failures kept this long instead, when set (Celery 5.7)
    "result_extended": False,
    # Ours: the index of sent tasks that monitors list (keys.TASKS); None keeps it as long as results.
    "task_index_max_tasks": 100_000,
    "task_index_expires": None,
    # Trim the task index by age and count on every Nth send of a process (and its first).
    "task_index_trim_every": 100,
    "result_backend_always_retry": False,
    "result_backend_max_retries": 60,  # Celery's default is unbounded; 60 with a 2 s cap is ~2 minutes
    "result_backend_max_sleep_between_retries_ms": 2000,
    "task_always_eager": False,
    "task_eager_propagates": False,
    "task_store_eager_result": False,
    "task_default_queue": "celery",
    "task_routes": None,
    "task_queues": None,
    "task_track_started": False,
    "task_time_limit": None,
    "task_soft_time_limit": None,
    "task_acks_late": False,
    "task_reject_on_worker_lost": None,
    "worker_lost_max_redeliveries": 3,
    # Ours: a running task's heartbeat (seconds between beats, and how long without one before
    # its worker counts as dead and the task is recovered). Beats come from a thread, so a busy
    # task keeps beating; a dead worker's tasks are recovered within ttl + interval.
    "worker_heartbeat_interval": 2.0,
    "worker_heartbeat_ttl": 7.0,
    "worker_idle_poll_interval": 0.1,
    # Ours: how long a successful task's RQ job hash (and finished-registry entry) lives, in seconds,
    # when that is shorter than its result's; 0 keeps it as long as the result (see finished.py).
    "worker_job_keep_seconds": 3600,
    "task_ignore_result": False,
    "task_store_errors_even_if_ignored": False,
    "task_default_rate_limit": None,
    "task_default_priority": None,
    "task_create_missing_queues": True,
    "task_annotations": None,
    "task_protocol": 2,  # Celery's message protocol: the chain travels in the message, as here
    "task_allow_error_cb_on_chord_header": False,
    "timezone": None,
    "enable_utc": True,
    "beat_schedule": {},
    "beat_scheduler": "celery.beat:PersistentScheduler",  # ours: run history in Redis (see beat/persistent.py)
    "beat_schedule_filename": "celerybeat-schedule",  # accepted, unused: nothing is written to disk
    "beat_max_loop_interval": 0,  # 0: the scheduler's own (300 s; 1 s for -B)
    "beat_sync_every": 0,
    "beat_cron_starting_deadline": None,
    "beat_enable_remote_control": False,
    "beat_remote_control_max_tick_age": None,
    "imports": (),
    "include": (),
    "worker_concurrency": None,
    "worker_prefetch_multiplier": 4,
    "worker_max_tasks_per_child": None,
    "worker_disable_rate_limits": False,
    "worker_hijack_root_logger": True,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {},
    # Read by nothing here, kept so that programs (and inspect().conf()) find Celery's names:
    # the AMQP heartbeat, the broker pool's wait (redis-py's pool blocks on nothing), log colours.
    "broker_heartbeat": 120,
    "broker_pool_acquire_timeout": None,
    "worker_log_color": None,
    "deprecated_settings": set(),
    "result_backend_transport_options": {},
}

# Old upper-case names (Celery 3 style) that real projects still use.
OLD_NAMES = {
    "BROKER_URL": "broker_url",
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_TASK_SERIALIZER": "task_serializer",
    "CELERY_RESULT_SERIALIZER": "result_serializer",
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_ROUTES": "task_routes",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_TIMEZONE": "timezone",
    "CELERY_ENABLE_UTC": "enable_utc",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERYBEAT_SCHEDULER": "beat_scheduler",
    "CELERYBEAT_MAX_LOOP_INTERVAL": "beat_max_loop_interval",
    "CELERY_IMPORTS": "imports",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_DEFAULT_RATE_LIMIT": "task_default_rate_limit",
    "CELERY_DISABLE_RATE_LIMITS": "worker_disable_rate_limits",
}

_SERIALIZER_KEYS = ("task_serializer", "result_serializer")
_CONTENT_KEYS = ("accept_content", "result_accept_content")
_JSON_NAMES = {"json", "application/json"}


def check_serializer(key: str, value: Any) -> None:
    """Refuse anything but JSON: pickle would let whoever writes to Redis run code in the worker."""
    if key in _SERIALIZER_KEYS and value is not None and value not in _JSON_NAMES:
        raise ImproperlyConfigured(
            f"{key}={value!r} is not supported: app.celery_compat serializes tasks and results as JSON only "
            "(pickle would let anyone who can write to Redis run code in the worker)."
        )
    if key in _CONTENT_KEYS and value is not None:
        refused = [name for name in value if name not in _JSON_NAMES]
        if refused:
            raise ImproperlyConfigured(f"{key} may only contain 'json', not {refused!r}")


class Settings(dict):
    """Celery's ``app.conf``: a dict whose unset keys fall back to Celery's defaults."""

    #: Called once, at the first read of any setting (Celery's on_after_configure moment).
    on_first_read: Any = None

    def _first_read(self) -> None:
        hook, self.__dict__["on_first_read"] = self.__dict__.get("on_first_read"), None
        if hook is not None:
            hook()

    def __getitem__(self, key: str) -> Any:
        if self.__dict__.get("on_first_read") is not None:
            self._first_read()
        return super().__getitem__(key)

    def __getattr__(self, key: str) -> Any:
        # conf.x is read ~15 times per send: dict's own lookup (which calls __missing__) saves
        # the Python-level __getitem__ in between.
        if self.__dict__.get("on_first_read") is not None:
            self._first_read()
        try:
            return dict.__getitem__(self, key)
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "on_first_read":
            self.__dict__[key] = value
            return
        self[key] = value

    def __missing__(self, key: str) -> Any:
        if key in DEFAULTS:
            return DEFAULTS[key]
        if key in OLD_NAMES:
            return self[OLD_NAMES[key]]
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        key = OLD_NAMES.get(key, key)
        check_serializer(key, value)
        super().__setitem__(key, value)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def update(self, other: Any = (), **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(other, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def load_object(self, obj: Any, namespace: str | None = None) -> None:
        """Copy settings from a module, a class or an object (``config_from_object``)."""
        if isinstance(obj, str):
            module_name, _, attr = obj.partition(":")
            obj = importlib.import_module(module_name)
            if attr:
                obj = getattr(obj, attr)
        items = obj.items() if isinstance(obj, dict) else ((k, getattr(obj, k)) for k in dir(obj))
        prefix = f"{namespace}_" if namespace else None
        for key, value in items:
            if key.startswith("_"):
                continue
            if prefix and key.startswith(prefix):
                key = key[len(prefix):].lower()
            elif prefix and not key.islower():
                continue  # with a namespace, upper-case settings must carry it
            elif key in OLD_NAMES:
                key = OLD_NAMES[key]
            elif not key.islower():
                continue
            self[key] = value
