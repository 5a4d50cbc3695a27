"""Configuration: Celery's setting names and defaults, JSON only, config_from_object and namespaces."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from app.celery_compat import Celery
from app.celery_compat.exceptions import ImproperlyConfigured


def fresh_app(**kwargs) -> Celery:
    return Celery("proj", set_as_current=False, **kwargs)


def test_unset_settings_read_as_celerys_defaults():
    conf = fresh_app().conf
    assert (conf.task_default_queue, conf.task_track_started, conf.result_expires, conf.worker_prefetch_multiplier) \
        == ("celery", False, timedelta(days=1), 4)
    assert conf["task_serializer"] == "json"


def test_broker_and_backend_arguments_set_the_urls():
    app = fresh_app(broker="redis://h:1/2", backend="redis://h:1/3")
    assert (app.conf.broker_url, app.conf.result_backend) == ("redis://h:1/2", "redis://h:1/3")


@pytest.mark.parametrize(
    ("key", "value"),
    [("task_serializer", "pickle"), ("result_serializer", "yaml"), ("accept_content", ["json", "pickle"]),
     ("CELERY_TASK_SERIALIZER", "pickle")],
)
def test_asking_for_anything_but_json_is_a_clear_error(key, value):
    with pytest.raises(ImproperlyConfigured, match="JSON|json"):
        fresh_app().conf.update({key: value})


def test_config_from_object_with_a_namespace_reads_prefixed_upper_case_names():
    settings = SimpleNamespace(CELERY_BROKER_URL="redis://x:6379/1", CELERY_TASK_ALWAYS_EAGER=True, OTHER=1)
    app = fresh_app()
    app.config_from_object(settings, namespace="CELERY")
    assert (app.conf.broker_url, app.conf.task_always_eager) == ("redis://x:6379/1", True)


def test_config_from_object_reads_lower_case_names_and_old_style_names():
    app = fresh_app()
    app.config_from_object({"task_default_queue": "jobs", "CELERY_ALWAYS_EAGER": True})
    assert (app.conf.task_default_queue, app.conf.task_always_eager) == ("jobs", True)


def test_a_broker_that_is_not_redis_is_refused():
    with pytest.raises(ImproperlyConfigured, match="Redis URL"):
        _ = fresh_app(broker="amqp://guest@localhost//").connection
