"""The delivery record: which recipients of a Message-ID the server has accepted, kept in Redis.

A retry of the same task builds the same Message-ID, reads this record first and skips whoever
already has the message. Each recipient goes "sending" just before the message is committed and
"sent" once the server accepted it; a "sending" left behind means an attempt died at that very
moment, and then nobody can know whether the message arrived.
"""

from __future__ import annotations

import time

import redis

KEY_PREFIX = "mail:delivery:"
#: Long enough to outlive every retry of a task, and the task's result (a day).
KEEP_SECONDS = 7 * 24 * 3600

SENDING = "sending"
SENT = "sent"


class DeliveryRecord:
    """The record of one message: ``load()``, then ``sending(r)``, ``sent(r, reply)`` or ``clear(r)``."""

    def __init__(self, conn: redis.Redis, message_id: str) -> None:
        self.conn = conn
        self.key = KEY_PREFIX + message_id

    def load(self) -> dict[str, str]:
        """Return recipient -> :data:`SENDING` or :data:`SENT` for everyone this message was tried on."""
        return {
            _str(recipient): _str(value).split(" ", 1)[0] for recipient, value in self.conn.hgetall(self.key).items()
        }

    def sending(self, recipient: str) -> None:
        """Note that the message is about to be committed for ``recipient``."""
        self._set(recipient, f"{SENDING} {time.time():.3f}")

    def sent(self, recipient: str, reply: str) -> None:
        """Note that the server accepted the message for ``recipient``, with its reply."""
        self._set(recipient, f"{SENT} {time.time():.3f} {reply}")

    def clear(self, recipient: str) -> None:
        """Forget ``recipient``: the server refused the message, so it may be tried again."""
        self.conn.hdel(self.key, recipient)

    def _set(self, recipient: str, value: str) -> None:
        pipe = self.conn.pipeline()
        pipe.hset(self.key, recipient, value)
        pipe.expire(self.key, KEEP_SECONDS)
        pipe.execute()


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
