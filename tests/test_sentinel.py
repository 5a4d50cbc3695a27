"""Redis Sentinel: REDIS_SENTINELS and REDIS_SENTINEL_MASTER point every part at the current master."""

from __future__ import annotations

import pytest
from redis.sentinel import SentinelConnectionPool

from app import config
from app.celery_compat import Celery
from app.jobs import make_celery


def test_sentinels_are_parsed_into_addresses():
    assert config.sentinel_hosts("s1:26379, 10.0.0.2:26380") == [("s1", 26379), ("10.0.0.2", 26380)]


@pytest.mark.parametrize("value", ["s1", "s1:port", ":26379", "s1:70000"])
def test_a_malformed_sentinel_list_is_refused_at_start(value):
    with pytest.raises(config.ConfigError, match="REDIS_SENTINELS"):
        config.load(environ={"REDIS_SENTINELS": value})


def test_the_task_queue_uses_celerys_sentinel_url_with_the_databases_and_password_of_redis_url():
    settings = config.load(environ={"REDIS_SENTINELS": "s1:26379,s2:26379", "REDIS_SENTINEL_MASTER": "jobs",
                                    "REDIS_URL": "redis://:secret@ignored:6379/3"})
    assert config.broker_url(settings) == "sentinel://:secret@s1:26379/3;sentinel://:secret@s2:26379/3"


def test_a_celery_app_with_a_sentinel_url_connects_through_the_named_master():
    app = make_celery("sentinel://s1:26379/2;sentinel://s2:26380/2", sentinel_master="jobs")
    pool = app.connection.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "jobs"
    assert [tuple(s.connection_pool.connection_kwargs[k] for k in ("host", "port"))
            for s in pool.sentinel_manager.sentinels] == [("s1", 26379), ("s2", 26380)]
    assert pool.connection_kwargs["db"] == 2


def test_the_web_app_also_connects_through_sentinel(make_app):
    app = make_app("redis://:pw@ignored:6379/1", REDIS_SENTINELS="s1:26379", REDIS_SENTINEL_MASTER="jobs")
    pool = app.extensions["redis"].connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "jobs"
    assert isinstance(app.extensions["celery"], Celery)


@pytest.mark.parametrize("settings", [{"REDIS_WAIT_REPLICAS": "-1"},
                                      {"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT": "1.0"},
                                      {"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT": "0"}])
def test_a_replica_wait_that_cannot_work_is_refused_at_start(settings):
    # REDIS_SOCKET_TIMEOUT is 1.0 s by default: WAIT must give up before the socket does
    with pytest.raises(config.ConfigError, match="REDIS_WAIT"):
        config.load(environ=settings)


def test_the_web_apps_celery_waits_for_the_replicas_it_is_told_to(make_app):
    app = make_app("redis://127.0.0.1:1/0", REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT=0.25)
    options = app.extensions["celery"].conf.broker_transport_options
    assert (options["wait_for_replicas"], options["wait_timeout"]) == (1, 0.25)
