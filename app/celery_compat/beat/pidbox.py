"""Beat's remote-control node (``beat_enable_remote_control``): it answers ``ping`` while it ticks.

It listens on the workers' control channel (``keys.control_channel``): a command is a JSON
message ``{"method", "arguments", "destination", "pattern", "matcher", "reply_to"}`` and an
answer is pushed to ``reply_to`` as ``{node name: answer}``, the wire format of ``app.control``.
As in Celery, only ``ping`` is answered (any other command is for workers and is ignored), and
the node falls silent once the scheduler has not ticked for ``max_tick_age`` seconds: a probe
(``app.control.ping(destination=[node])``) then sees a stalled beat as gone.

The node is not listed among the workers (``keys.CONTROL_NODES``): a broadcast never waits for it.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import threading
import time
from typing import Any

import redis

from .. import keys

logger = logging.getLogger("app.celery_compat.beat")

#: Seconds between two reconnection attempts after Redis went away.
RETRY_INTERVAL = 2.0
#: Celery's floor for a derived ``max_tick_age``: one slow pass must not look like a stall.
MIN_TICK_AGE = 60.0
#: Seconds after which an unread reply list expires.
REPLY_TTL = 60


def addressed_to(message: dict, node: str) -> bool:
    """Whether a command message's ``destination`` / ``pattern`` include ``node``."""
    destination, pattern = message.get("destination"), message.get("pattern")
    if destination is not None and node not in destination:
        return False
    if pattern:
        if message.get("matcher") == "pcre":
            return re.search(pattern, node) is not None
        return fnmatch.fnmatch(node, pattern)
    return True


class BeatPidbox:
    """A thread answering ``ping`` for ``service`` under its node name, while the service ticks."""

    def __init__(self, service: Any, hostname: str) -> None:
        self.service = service
        self.app = service.app
        self.hostname = hostname
        self.handlers = {"ping": self._ping}
        self.thread: threading.Thread | None = None
        self._shutdown = threading.Event()

    @property
    def max_tick_age(self) -> float:
        """``beat_remote_control_max_tick_age``, else twice the loop's interval, at least a minute; 0: never stale."""
        configured = self.app.conf.get("beat_remote_control_max_tick_age")
        if configured is not None:
            return configured
        return max(2 * (self.service.effective_max_interval or self.service.max_interval or 300), MIN_TICK_AGE)

    def tick_age(self) -> float | None:
        last_tick = self.service._last_tick
        return None if last_tick is None else time.monotonic() - last_tick

    def is_stale(self) -> bool:
        age = self.tick_age()
        return bool(self.max_tick_age) and age is not None and age > self.max_tick_age

    def _ping(self, **arguments: Any) -> dict:
        return {"ok": "pong"}

    def start(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        self._shutdown.clear()
        self.thread = threading.Thread(target=self._loop, name="BeatPidbox", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._shutdown.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _loop(self) -> None:
        while not self._shutdown.is_set():
            try:
                self._listen()
            except redis.RedisError as exc:
                logger.warning("beat pidbox: Redis unreachable (%s); listening again in %s s", exc, RETRY_INTERVAL)
                self._shutdown.wait(RETRY_INTERVAL)

    def _listen(self) -> None:
        connection = self.app.connection
        db = int(connection.connection_pool.connection_kwargs.get("db") or 0)
        pubsub = connection.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(keys.control_channel(db))
            while not self._shutdown.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is not None and message.get("type") == "message":
                    self.handle(message["data"])
        finally:
            pubsub.close()

    def handle(self, raw: bytes | str) -> dict | None:
        """Answer one command message if it is a ``ping`` for this node and beat is ticking."""
        try:
            message = json.loads(raw)
            handler = self.handlers.get(message.get("method"))
        except (ValueError, AttributeError):
            return None
        if handler is None or not addressed_to(message, self.hostname):
            return None
        if self.is_stale():
            logger.warning("beat pidbox: not answering %s, the scheduler has not ticked for %.1fs (over %ss).",
                           message["method"], self.tick_age(), self.max_tick_age)
            return None
        answer = handler(**(message.get("arguments") or {}))
        if message.get("reply_to"):
            with self.app.connection.pipeline(transaction=False) as pipe:
                pipe.rpush(message["reply_to"], json.dumps({self.hostname: answer}))
                pipe.expire(message["reply_to"], REPLY_TTL)
                pipe.execute()
        return answer
