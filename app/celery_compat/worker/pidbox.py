"""The worker's mailbox (Celery's pidbox): a thread that receives remote control commands.

A :class:`ControlNode` listens on the control channel (``keys.control_channel``), lists its
node name in ``keys.CONTROL_NODES`` while it listens (so a caller stops waiting once every
live node answered), runs each command addressed to it with the handler registered in
:mod:`.control`, and pushes the answer to the command's reply list. A command that fails
answers ``{"error": ...}`` and the node listens on; a Redis outage makes it listen again
once Redis is back.
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
from .control import ControlState, Panel, node_info
from .reach import OUTAGE, Throttle, reason

logger = logging.getLogger("app.celery_compat.worker")

#: Seconds between two listings of a node in ``keys.CONTROL_NODES``; a listing lasts three times that.
LISTING_INTERVAL = 5.0
#: A reply list outlives its command by this long (a caller gone, its replies are dropped).
REPLY_TTL = 60


#: How long a starting worker waits for its node's first try to listen (Redis slow to answer).
READY_WAIT = 5.0


def start_control(app: Any, hostname: str, host: Any) -> ControlNode:
    """Start answering the remote control as ``hostname``, about ``host``; return once it listens.

    So a worker seen as started (registered in RQ) also answers ``ping()``.
    """
    node = ControlNode(app, hostname, host).start()
    node.first_attempt.wait(READY_WAIT)  # at once when Redis refuses: the worker starts anyway
    return node


class ControlNode:
    """A thread that answers the remote control commands sent to ``hostname``."""

    def __init__(self, app: Any, hostname: str, host: Any, connection: Any = None) -> None:
        self.app = app
        self.hostname = hostname
        self.state = ControlState(app, hostname, host)
        self.connection = connection or app.connection
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listed_at = 0.0
        self._listed: dict[str, str] = {}
        self._wait = 0.5
        self._say = Throttle(logger)
        self.listening = threading.Event()
        #: Set once the node listens, or failed its first try (a starting worker waits for it).
        self.first_attempt = threading.Event()

    def start(self) -> ControlNode:
        self._thread = threading.Thread(target=self._run, name=f"control-{self.hostname}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
                return
            except OUTAGE as exc:
                self.listening.clear()
                self._say(logging.WARNING, "down", "Control %s: Redis unreachable (%s); listening again soon",
                          self.hostname, reason(exc))
            except Exception:  # noqa: BLE001 - whatever it was, the worker must stay reachable
                self.listening.clear()
                logger.exception("Control %s: listening failed; listening again soon", self.hostname)
            self.first_attempt.set()
            self._stop.wait(self._wait)
            self._wait = min(self._wait * 2, 10.0)

    def _listen(self) -> None:
        pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
        db = int(self.connection.connection_pool.connection_kwargs.get("db") or 0)
        try:
            pubsub.subscribe(keys.control_channel(db))
            self._list_node()
            self.listening.set()
            self.first_attempt.set()
            self._say.clear()
            self._wait = 0.5  # the next outage is waited out from the start again
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                # Also at once when the node changed (its work processes started, the pool grew):
                # the Workers page would otherwise show them as nodes of their own until the next listing.
                if time.monotonic() - self._listed_at > LISTING_INTERVAL or node_info(self.state) != self._listed:
                    self._list_node()
                if message is not None and message.get("type") == "message":
                    self.handle(message["data"])
        finally:
            self.listening.clear()
            try:
                pubsub.close()
                self.connection.zrem(keys.CONTROL_NODES, self.hostname)
                self.connection.delete(keys.node(self.hostname))
            except redis.exceptions.RedisError:
                pass  # the listing expires by itself

    def _list_node(self) -> None:
        now = time.time()
        self._listed = node_info(self.state)
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.CONTROL_NODES, {self.hostname: now + 3 * LISTING_INTERVAL})
            pipe.zremrangebyscore(keys.CONTROL_NODES, "-inf", now)
            # What the monitor's Workers page shows of this node, gone with it (no broadcast needed).
            pipe.hset(keys.node(self.hostname), mapping=self._listed)
            pipe.expire(keys.node(self.hostname), int(3 * LISTING_INTERVAL))
            pipe.execute()
        self._listed_at = time.monotonic()

    def handle(self, raw: bytes | str) -> dict | None:
        """Run one command message if it is for this node; push and return the answer."""
        try:
            message = json.loads(raw)
            method = message["method"]
        except (ValueError, KeyError, TypeError):
            logger.warning("Control %s: ignored a malformed command message", self.hostname)
            return None
        if not self._for_me(message):
            return None
        self.state.clock += 1
        answer = self.dispatch(method, message.get("arguments") or {})
        reply_to = message.get("reply_to")
        try:
            if reply_to and answer is not None:
                with self.connection.pipeline(transaction=False) as pipe:
                    pipe.rpush(reply_to, json.dumps({self.hostname: answer}, default=str))
                    pipe.expire(reply_to, REPLY_TTL)
                    pipe.execute()
        finally:
            while self.state.after_reply:
                self.state.after_reply.pop(0)()
        return answer

    def _for_me(self, message: dict) -> bool:
        destination, pattern = message.get("destination"), message.get("pattern")
        if destination is not None and self.hostname not in destination:
            return False
        if pattern:
            if message.get("matcher") == "pcre":
                return re.search(pattern, self.hostname) is not None
            return fnmatch.fnmatch(self.hostname, pattern)
        return True

    def dispatch(self, method: str, arguments: dict) -> Any:
        """The answer of the handler of ``method`` (an ``{"error": ...}`` when it fails or is unknown)."""
        handler = Panel.data.get(method)
        if handler is None:
            return {"error": f"unknown command {method!r}"}
        try:
            return handler(self.state, **arguments)
        except NotImplementedError as exc:
            return {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a failing command must not stop the node
            logger.exception("Control %s: command %r failed", self.hostname, method)
            return {"error": f"Error running command {method}: {exc!r}"}
