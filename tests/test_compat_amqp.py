"""``app.amqp``: the queues an app uses, as Celery reports them; the AMQP-only parts fail by name."""

from __future__ import annotations

import pytest

from app.celery_compat import Celery


def make_app(**settings: object) -> Celery:
    app = Celery("amqp_spec", broker="redis://127.0.0.1:1/0", set_as_current=False)
    app.conf.update(settings)
    return app


def test_a_new_app_uses_only_the_default_queue():
    assert set(make_app().amqp.queues) == {"celery"}
    assert set(make_app(task_default_queue="jobs").amqp.queues) == {"jobs"}


def test_configured_queues_are_listed_by_name_whatever_their_form():
    class KombuLikeQueue:
        def __init__(self, name: str) -> None:
            self.name = name

    assert set(make_app(task_queues=[KombuLikeQueue("a"), "b"]).amqp.queues) == {"a", "b"}
    assert set(make_app(task_queues={"c": {}}).amqp.queues) == {"c"}


def test_a_queue_sent_to_without_configuration_joins_the_list_as_celery_creates_missing_queues():
    app = make_app()
    app.queue("reports")
    assert set(app.amqp.queues) == {"celery", "reports"}
    assert app.amqp.default_queue.name == "celery"


def test_the_amqp_transport_objects_fail_with_an_error_that_names_them():
    with pytest.raises(NotImplementedError, match=r"app\.amqp\.producer_pool .* does not exist on RQ"):
        make_app().amqp.producer_pool  # noqa: B018
