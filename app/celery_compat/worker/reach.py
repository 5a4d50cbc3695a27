"""Reaching Redis from a worker: a URL that can never work, an outage waited out, a quiet log.

Three kinds of trouble, three answers:

* a URL that can never work (another scheme, unparseable, a host name that does not exist):
  :func:`check_url` says why, and the worker exits non-zero at once;
* Redis unreachable, or refusing writes (out of memory, a read-only replica after a
  failover, a blocking pop cut short by a demotion: :func:`blocking`): :data:`OUTAGE` errors,
  waited out with a capped exponential backoff (:func:`wait_for_redis`), never a traceback;
* the same message again and again: :class:`Throttle` logs it once per change of state and
  once every :data:`REPEAT_SECONDS`.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import redis

from ..redaction import redact_url

#: Errors that mean "Redis cannot serve us now", not "this is a bug": wait, then carry on.
OUTAGE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError,
)
#: Errors that leave a command's outcome unknown: the reply never came, and Redis may have run it.
UNANSWERED: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
FIRST_WAIT = 1.0
MAX_WAIT = 30.0
REPEAT_SECONDS = 30.0
#: The exit code of a worker (or work process) that gave up on Redis: ``--burst``, or a bad URL.
EXIT_NO_REDIS = 3
#: A work process left with claims whose reply was lost: its supervisor gives their tasks back.
EXIT_UNSURE_CLAIMS = 4
SCHEMES = ("redis", "rediss", "valkey", "unix", "sentinel")

logger = logging.getLogger("app.celery_compat.worker")
T = TypeVar("T")


class GaveUp(Exception):
    """A ``--burst`` worker found Redis unreachable: it exits non-zero rather than wait."""


class UnusableURL(Exception):
    """A Redis URL that no amount of waiting will make work."""


def check_url(url: str) -> None:
    """Raise :class:`UnusableURL` saying why ``url`` can never reach a Redis server."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnusableURL(f"cannot parse the Redis URL {shown!r} ({exc})") from None
    if parts.scheme not in SCHEMES:
        raise UnusableURL(f"{shown!r} is not a Redis URL (expected redis://, rediss://, unix:// or sentinel://)")
    if parts.scheme in ("unix", "sentinel"):
        return  # a socket path, or Sentinel's own list of hosts: nothing to resolve here
    if not parts.hostname:
        raise UnusableURL(f"no host name in the Redis URL {shown!r}")
    try:
        socket.getaddrinfo(parts.hostname, port or 6379, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            return  # DNS itself is down for now: an outage, not a wrong name
        raise UnusableURL(f"cannot resolve the host name {parts.hostname!r} of {shown!r} ({exc.strerror})") from None


def where(url: str) -> str:
    """``redis://host:port`` (password masked, no database), for messages."""
    parts = urlsplit(redact_url(url))
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path if parts.scheme == 'unix' else ''}"


def blocking(command: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run a blocking pop; a master demoted meanwhile (a failover) is an outage, not a bug.

    Redis ends every blocked command of a master that becomes a replica with ``UNBLOCKED force
    unblock from blocking operation, instance state changed``: a plain ResponseError, which
    killed the work processes. It is raised as the READONLY it announces, so the claim loop
    waits it out, and a Sentinel client finds the new master at its next write.
    """
    try:
        return command(*args, **kwargs)
    except redis.exceptions.ResponseError as exc:
        if str(exc).startswith("UNBLOCKED"):
            raise redis.exceptions.ReadOnlyError(f"master demoted: {exc}") from exc
        raise


def send_once(connection: redis.Redis, commands: list) -> list:
    """Send ``commands`` (a pipeline's stack: (args, options) pairs) in one round trip, never twice.

    Returns their replies, an error reply as its exception, as ``execute(raise_on_error=False)``.
    A client configured to retry (``retry``, ``retry_on_timeout`` in the transport options; a
    client made from a URL has none by default) sends the whole round trip again when a reply
    did not come, though Redis may have run it: harmless for a read or a fenced write, not for a
    claim (it takes a second task). Here the error reaches the caller, who knows what the first
    may have done; an error raised before the commands were all sent is marked (:func:`was_sent`).
    """
    pool = connection.connection_pool
    try:
        conn = pool.get_connection()
    except BaseException as exc:
        exc.never_sent = True  # type: ignore[attr-defined]  # connecting failed: nothing reached Redis
        raise
    try:
        try:
            # Connecting and its health check may still retry: they come before anything is sent.
            conn.send_packed_command(conn.pack_commands([args for args, _ in commands]))
        except BaseException as exc:
            exc.never_sent = True  # type: ignore[attr-defined]  # Redis runs no command it has not read whole
            raise
        replies: list = []
        for args, options in commands:
            try:
                replies.append(connection.parse_response(conn, args[0], **options))
            except redis.exceptions.ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        # Whatever cut it (an error, a signal between two reads): replies may be left unread on
        # this socket, and the next user of the connection would read them as its own.
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


def was_sent(exc: BaseException) -> bool:
    """Whether the commands :func:`send_once` was cut off in may have reached Redis (and run)."""
    return not getattr(exc, "never_sent", False)


def reason(exc: BaseException) -> str:
    """A few words for an outage error, instead of its traceback."""
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return "out of memory: maxmemory reached"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return "read-only replica"
    if isinstance(exc, redis.exceptions.TimeoutError):
        return "timed out"
    text = str(exc)
    for known in ("Connection refused", "Connection reset by peer", "No route to host", "Name or service not known"):
        if known in text:
            return known.lower()
    return text.strip().rstrip(".") or type(exc).__name__


def ping(connection: redis.Redis) -> None:
    """Raise an :data:`OUTAGE` error unless Redis answers and accepts writes."""
    connection.ping()
    try:
        info = connection.info("memory")
    except redis.exceptions.ResponseError:
        return  # INFO not allowed for this user (ACL): the first write will tell
    maxmemory = int(info.get("maxmemory") or 0)
    if maxmemory and info.get("maxmemory_policy") == "noeviction" and int(info.get("used_memory") or 0) >= maxmemory:
        raise redis.exceptions.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'")


def wait_for_redis(connect: Callable[[], redis.Redis], url: str, *, burst: bool = False,
                   should_stop: Callable[[], bool] = lambda: False, who: str = "worker") -> bool:
    """Wait until Redis answers; False if told to stop meanwhile, or at the first failure in burst mode.

    ``connect`` makes (or returns) the client: building one may already fail for a bad URL.
    One line per attempt, with a backoff doubling from 1 s to 30 s, so never a flood.
    """
    wait = FIRST_WAIT
    while True:
        try:
            ping(connect())
            if wait > FIRST_WAIT:
                logger.info("%s: Redis at %s answers again", who, where(url))
            return True
        except OUTAGE as exc:
            if burst:
                logger.error("%s: cannot reach Redis at %s (%s); giving up (--burst)", who, where(url), reason(exc))
                return False
            logger.warning("%s: cannot reach Redis at %s (%s); retrying in %.0f s", who, where(url), reason(exc), wait)
        if not sleep_unless(wait, should_stop):
            return False
        wait = min(wait * 2, MAX_WAIT)


def sleep_unless(seconds: float, should_stop: Callable[[], bool]) -> bool:
    """Sleep ``seconds`` in short steps; False as soon as ``should_stop()`` says so."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if should_stop():
            return False
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    return not should_stop()


class Throttle:
    """Log a repeated message once per change of state, then once every ``every`` seconds."""

    def __init__(self, log: logging.Logger = logger, every: float = REPEAT_SECONDS) -> None:
        self.log = log
        self.every = every
        self._last: tuple[str, float] | None = None

    def __call__(self, level: int, state: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if self._last is None or self._last[0] != state or now - self._last[1] >= self.every:
            self._last = (state, now)
            self.log.log(level, message, *args)

    def clear(self) -> None:
        """The trouble is over: the next message is a change of state again."""
        self._last = None
