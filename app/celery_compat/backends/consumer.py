"""Waiting for results: one GET, then one pub/sub connection kept per backend and process.

Modelled on Celery's Redis ``ResultConsumer``: a finished task costs one GET and no new
connection; an unfinished one subscribes its channel on the connection every waiter of this
process shares, reads the key once more (the result may have landed between the first GET and
SUBSCRIBE), then waits for the published document and unsubscribes.

Threads share the connection: whichever waiter holds the socket reads the next message and
files it for its channel; the others sleep on a condition until their document is filed. A
forked child never touches its parent's socket (the pid is checked), and a Redis error drops
the connection: the next waiter builds a new one, resubscribes, and reads its key again.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from .. import keys, states
from ..exceptions import TimeoutError as TaskTimeoutError

# How long one waiter holds the socket before letting a thread that wants to subscribe at it.
READ_SLICE = 0.05
# A waiter reads its key again this often anyway: a result that expired, or one published while
# redis-py silently reconnected the socket, must not leave it blocked forever.
RECHECK_EVERY = 1.0
# Without a timeout, how long Redis may stay unreachable before the error reaches the caller.
OUTAGE_PATIENCE = 20.0
#: Every this many sends, read what the pub/sub connection holds (see ``_drain_pending``).
DRAIN_EVERY = 64
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class _Socket:
    """The pub/sub socket's lock. A thread that asks for it while holding it (a callback inside a
    pub/sub command, a finalizer) has its action run right after the command, never nested in it:
    the socket would read the nested command's reply as the outer one's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._deferred: collections.deque = collections.deque()

    def run(self, action: Callable[[], Any], blocking: bool = True) -> tuple[bool, Any]:
        """``(True, action())``, or ``(False, None)`` when deferred or (not blocking) busy."""
        me = threading.get_ident()
        if self._owner == me:
            self._deferred.append(action)
            return False, None
        if not self._lock.acquire(blocking):
            return False, None
        self._owner = me
        try:
            result = action()
            while self._deferred:
                self._deferred.popleft()()
            return True, result
        finally:
            self._owner = None
            self._lock.release()


class ResultConsumer:
    """Shared pub/sub waiting for one backend in one process; ``wait(key, read, timeout)``.

    As Celery's, a result is also subscribed when its task is sent (:meth:`consume_from`) and
    released once ``get()`` returned it, by ``forget()``, or when the ``AsyncResult`` is
    garbage-collected (:meth:`release_later`: a finalizer takes no lock, the next call releases).
    """

    def __init__(self, connection: Callable[[], redis.Redis]) -> None:
        self._connection = connection
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        self._pid = os.getpid()
        self._socket = _Socket()  # guards the pub/sub socket
        self._held: set[str] = set()  # channels subscribed for a sent task (one subscriber each)
        self._orphans: collections.deque = collections.deque()  # task ids whose AsyncResult was collected
        self._sends = 0
        self._cond = threading.Condition()  # guards the fields below
        self._pubsub: Any = None
        self._client: redis.Redis | None = None
        self._generation = 0  # bumped when the connection is dropped: subscriptions are gone
        self._subscribers: dict[str, int] = {}
        self._subscribed: dict[str, int] = {}  # channel -> generation it was subscribed in
        self._ready: dict[str, dict] = {}

    def _check_fork(self) -> None:
        # The parent's socket, lock and subscriptions are not the child's: start afresh and
        # leave the parent's connection alone (closing it here would cut the parent's).
        if os.getpid() != self._pid:
            self._reset_process_state()

    # -- the public call ---------------------------------------------------------------------
    def wait(self, channel: str, read: Callable[[], dict], timeout: float | None) -> dict:
        """The ready document of ``channel``'s task: ``read()`` once, else subscribe and wait."""
        self._check_fork()
        deadline = None if timeout is None else time.monotonic() + timeout
        meta = self._retrying(read, deadline)
        if meta["status"] in states.READY_STATES:
            return meta
        with self._cond:
            self._subscribers[channel] = self._subscribers.get(channel, 0) + 1
        try:
            return self._wait_subscribed(channel, read, deadline)
        finally:
            self._release(channel)

    def _wait_subscribed(self, channel: str, read: Callable[[], dict], deadline: float | None) -> dict:
        outage_started: float | None = None
        while True:
            try:
                generation = self._subscribe(channel)
                meta = read()  # after SUBSCRIBE: a result stored in between is seen here
                if meta["status"] in states.READY_STATES:
                    return meta
                outage_started = None
                meta = self._await_message(channel, generation, deadline)
                if meta is not None:
                    return meta
            except REDIS_ERRORS as error:
                self._drop_connection()
                outage_started = outage_started or time.monotonic()
                self._pause_after(error, outage_started, deadline)

    # -- subscriptions -----------------------------------------------------------------------
    def _subscribe(self, channel: str) -> int:
        ran, generation = self._socket.run(lambda: self._swap_now([], channel))
        return generation if ran else self._generation

    def _release(self, channel: str) -> None:
        # Under the socket lock, so that another thread's SUBSCRIBE to the same channel cannot
        # fall between our last-subscriber check and our UNSUBSCRIBE.
        self._socket.run(lambda: self._release_now(channel))

    def _release_now(self, channel: str) -> None:
        if self._last_subscriber_gone(channel) and self._pubsub is not None:
            try:
                self._pubsub.unsubscribe(channel)
            except REDIS_ERRORS:
                self._drop_connection()  # the next waiter rebuilds it; nothing is lost

    def _last_subscriber_gone(self, channel: str) -> bool:
        """One subscriber less for ``channel``; True when it was the last and the channel is
        subscribed on the current connection (an UNSUBSCRIBE is then due)."""
        with self._cond:
            count = self._subscribers.get(channel, 0) - 1
            if count > 0:
                self._subscribers[channel] = count
                return False
            self._subscribers.pop(channel, None)
            self._ready.pop(channel, None)
            return self._subscribed.pop(channel, None) == self._generation

    # -- Celery's ResultConsumer API: a sent task's channel, subscribed until its result is taken --
    def consume_from(self, task_id: str) -> None:
        """Subscribe the task's channel now (at send time); a failure here is left to ``wait()``.
        The results collected since the last call are released in the same write."""
        self._check_fork()
        channel = keys.meta(task_id)
        with self._cond:
            if channel in self._held:
                self._release_orphans()
                return
            self._held.add(channel)
            self._subscribers[channel] = self._subscribers.get(channel, 0) + 1
        try:
            released = self._take_orphans()
            self._socket.run(lambda: self._swap_now(released, channel))
            self._sends += 1
            if self._sends % DRAIN_EVERY == 0:
                self._socket.run(self._drain_pending, blocking=False)
        except REDIS_ERRORS:
            self._drop_connection()  # wait() subscribes again (and reads the key) when it is needed

    def _drain_pending(self) -> None:
        """Read what the connection holds now (SUBSCRIBE confirmations, outcomes): a process that
        only sends would otherwise let them pile up in Redis until it drops the connection."""
        for _ in range(DRAIN_EVERY * 4):
            pubsub = self._pubsub
            if pubsub is None or not pubsub.connection or not pubsub.connection.can_read(timeout=0):
                return
            self._read_one(0)

    def cancel_for(self, task_id: str) -> None:
        """Release the channel :meth:`consume_from` subscribed (once; later calls do nothing)."""
        self._check_fork()
        channel = keys.meta(task_id)
        with self._cond:
            if channel not in self._held:
                return
            self._held.discard(channel)
        self._release(channel)

    def release_later(self, task_id: str) -> None:
        """From a finalizer: no lock here (the collecting thread may hold one); the next call releases."""
        self._orphans.append(task_id)

    def _take_orphans(self) -> list[str]:
        """The channels of collected results still held, no longer held (their UNSUBSCRIBE is the caller's)."""
        released = []
        while self._orphans:
            try:
                channel = keys.meta(self._orphans.popleft())
            except IndexError:
                break
            with self._cond:
                if channel not in self._held:
                    continue
                self._held.discard(channel)
            released.append(channel)
        return released

    def _swap_now(self, released: list[str], channel: str) -> int:
        """UNSUBSCRIBE ``released`` (where no one else waits) and SUBSCRIBE ``channel`` unless it is
        already subscribed on this connection: one write when the connection is up and subscribed,
        else redis-py's own calls (which connect). Returns the connection's generation."""
        gone = [old for old in released if self._last_subscriber_gone(old)]
        pubsub = self._ensure_pubsub()
        with self._cond:
            generation = self._generation
            new = self._subscribed.get(channel) != generation
        if not (new and pubsub.subscribed and self._write_swap(pubsub, gone, channel)):
            if gone:
                pubsub.unsubscribe(*gone)
            if new:
                pubsub.subscribe(channel)
        if new:
            with self._cond:
                self._subscribed[channel] = generation
        return generation

    @staticmethod
    def _write_swap(pubsub: Any, gone: list[str], channel: str) -> bool:
        """The UNSUBSCRIBE and SUBSCRIBE in one write, noted as PubSub.unsubscribe/subscribe note
        them (without a write and a retry wrapper each). False when it could not be written:
        redis-py's own calls then reconnect, resubscribe what the connection had, and send them."""
        connection = pubsub.connection
        if connection is None:
            return False
        commands = ([("UNSUBSCRIBE", *gone)] if gone else []) + [("SUBSCRIBE", channel)]
        try:
            connection.send_packed_command(connection.pack_commands(commands), check_health=False)
        except REDIS_ERRORS:
            return False
        pubsub.pending_unsubscribe_channels.update(pubsub._normalize_keys(dict.fromkeys(gone)))
        added = pubsub._normalize_keys({channel: None})
        pubsub.channels.update(added)
        pubsub.pending_unsubscribe_channels.difference_update(added)
        return True

    def _release_orphans(self) -> None:
        while self._orphans:
            try:
                task_id = self._orphans.popleft()
            except IndexError:
                return
            self.cancel_for(task_id)

    def start(self, initial_task_id: str, **kwargs: Any) -> None:
        self.consume_from(initial_task_id)

    def stop(self) -> None:
        """Release every channel subscribed at send time and close the connection."""
        for channel in list(self._held):
            self.cancel_for(channel.removeprefix(keys.META_PREFIX))
        self._drop_connection()

    def drain_events(self, timeout: float | None = None) -> None:
        """Read (at most ``timeout`` seconds) and file the next published outcome, if any."""
        self._check_fork()
        self._release_orphans()
        self._socket.run(lambda: self._read_one(timeout or 0))

    @property
    def subscribed_to(self) -> set[bytes]:
        """The channels subscribed on the connection now, as bytes as Celery's."""
        with self._cond:
            return {channel.encode() for channel in self._subscribed}

    def _get_key_for_task(self, task_id: str, key: str = "") -> bytes:
        return (keys.meta(task_id) + key).encode()

    def _ensure_pubsub(self) -> Any:
        client = self._connection()
        if self._pubsub is None or self._client is not client:
            if self._pubsub is not None:
                self._drop_connection()
            self._client = client
            self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        return self._pubsub

    def _drop_connection(self) -> None:
        """Forget the connection and its subscriptions; waiters resubscribe on a new one."""
        with self._cond:
            pubsub, self._pubsub = self._pubsub, None
            self._generation += 1
            self._subscribed.clear()
            self._cond.notify_all()
        if pubsub is not None:
            try:
                pubsub.reset()  # closes the socket; a new one is opened by the next subscribe
            except Exception:  # noqa: BLE001 - the socket is already broken, nothing to save
                pass

    # -- reading -----------------------------------------------------------------------------
    def _await_message(self, channel: str, generation: int, deadline: float | None) -> dict | None:
        """The document filed for ``channel``; None when the key is due for another read."""
        recheck_at = time.monotonic() + RECHECK_EVERY
        while time.monotonic() < recheck_at:
            with self._cond:
                if channel in self._ready:
                    return self._ready[channel]
                if self._generation != generation:
                    return None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TaskTimeoutError("The operation timed out.")
            slice_ = READ_SLICE if remaining is None else min(READ_SLICE, remaining)
            ran, _ = self._socket.run(functools.partial(self._read_one, slice_), blocking=False)
            if not ran:
                with self._cond:
                    if channel not in self._ready and self._generation == generation:
                        self._cond.wait(slice_)
        return None

    def _read_one(self, timeout: float) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return
        message = pubsub.get_message(timeout=timeout)
        if not message or message.get("type") != "message":
            return
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        meta = json.loads(message["data"])
        if meta.get("status") not in states.READY_STATES:
            return  # progress: a waiter of get() wants only the outcome
        with self._cond:
            if channel in self._subscribers:
                self._ready[channel] = meta
                self._cond.notify_all()

    def _retrying(self, read: Callable[[], dict], deadline: float | None) -> dict:
        outage_started: float | None = None
        while True:
            try:
                return read()
            except REDIS_ERRORS as error:
                outage_started = outage_started or time.monotonic()
                self._pause_after(error, outage_started, deadline)

    @staticmethod
    def _pause_after(error: Exception, outage_started: float, deadline: float | None) -> None:
        """Sleep before another try, or raise: TimeoutError past ``deadline``, else the Redis error."""
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise TaskTimeoutError("The operation timed out.") from error
        if deadline is None and now - outage_started > OUTAGE_PATIENCE:
            raise error
        pause = min(0.1 * (1 + (now - outage_started)), 1.0)
        time.sleep(pause if deadline is None else max(min(pause, deadline - now), 0))
