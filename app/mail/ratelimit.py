"""A send rate shared by every worker: at most N messages in any period, counted in one Redis sorted set."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import redis

KEY = "mail:rate"

_UNITS = {"s": 1, "m": 60, "h": 3600}
_FORMAT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smh])\s*$")

# Redis' own clock, so that workers on several machines agree. Drops what left the window; takes a
# slot if one is free (returns 0), else returns the seconds until the oldest slot frees up.
_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(period * 1000))
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + period - now)
"""


@dataclass(frozen=True)
class RateLimit:
    """``count`` messages per ``period`` seconds, parsed from Celery's notation by :meth:`parse`."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse ``"30/m"``, ``"1/s"``, ``"500/h"`` or ``"10/5s"``; raise :class:`ValueError` otherwise."""
        match = _FORMAT.match(text)
        if not match or int(match[1]) < 1 or match[2] == "0":
            raise ValueError(f"{text!r} is not a rate such as 30/m, 1/s, 500/h or 10/5s")
        return cls(int(match[1]), int(match[2] or 1) * _UNITS[match[3]])

    def __str__(self) -> str:
        return f"{self.count} per {self.period:g} s"


class SendRateLimiter:
    """Hands out send slots under a :class:`RateLimit`, to every process using the same Redis."""

    def __init__(self, conn: redis.Redis, limit: RateLimit, key: str = KEY) -> None:
        self.limit = limit
        self.key = key
        self._acquire = conn.register_script(_ACQUIRE)

    def try_acquire(self) -> float:
        """Take a slot and return 0, or return the seconds to wait before one may be free."""
        wait = self._acquire(keys=[self.key], args=[self.limit.period, self.limit.count, uuid.uuid4().hex])
        return max(0.0, float(wait))
