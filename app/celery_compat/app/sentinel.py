"""Reaching the master through Redis Sentinel, from Celery's ``sentinel://`` URL form.

redis-py's Sentinel connections keep their socket when a read is interrupted (its
``SentinelManagedConnection.read_response`` defaults ``disconnect_on_error`` to False, where a
plain connection disconnects): a worker's blocking pop interrupted by a stop signal, or a read
cut short by a timeout, went back to the pool with its reply still on the way, and the next
command read that reply as its own (RQ's ``register_death`` failed with "Wrong number of response
items", and shutdown waited out the pop). :class:`SentinelConnection` disconnects as a plain
connection does, so a pooled connection never carries a stale reply.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection


class SentinelConnection(SentinelManagedConnection):
    """A connection to the master Sentinel names that drops its socket when a read fails midway."""

    def read_response(self, *args: Any, disconnect_on_error: bool = True, **kwargs: Any) -> Any:
        return super().read_response(*args, disconnect_on_error=disconnect_on_error, **kwargs)


class SentinelSSLConnection(SentinelConnection, SentinelManagedSSLConnection):
    """The same over TLS."""


def sentinel_master(url: str, options: dict) -> redis.Redis:
    """A client of the master that Redis Sentinel names, from Celery's URL form.

    ``sentinel://[:password@]host:port[/db];sentinel://host2:port2`` with the master's name in
    ``broker_transport_options={"master_name": ...}``, as Celery's Redis transport takes it.
    """
    options = dict(options)
    master = options.pop("master_name", None) or "mymaster"
    sentinel_kwargs = options.pop("sentinel_kwargs", None)
    parts = [urlsplit(part.strip()) for part in url.split(";") if part.strip()]
    hosts = [(part.hostname or "localhost", part.port or 26379) for part in parts]
    first = parts[0]
    db = int((first.path or "/0").lstrip("/") or 0)
    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_kwargs, **options)
    connection_class = SentinelSSLConnection if options.get("ssl") else SentinelConnection
    return sentinel.master_for(master, db=db, password=first.password, connection_class=connection_class)
