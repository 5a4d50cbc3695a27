"""Worker node names, as Celery's ``celery.utils.nodenames``: ``name@host``.

A node name is what remote control replies are keyed by (``inspect().ping()`` answers
``{"celery@host": {"ok": "pong"}}``) and what ``destination=[...]`` selects.
"""

from __future__ import annotations

import os
import socket

NODENAME_SEP = "@"
NODENAME_DEFAULT = "celery"


def gethostname() -> str:
    return socket.gethostname()


def nodename(name: str, hostname: str) -> str:
    """``name@hostname``."""
    return NODENAME_SEP.join((name, hostname))


def anon_nodename(hostname: str | None = None, prefix: str = "gen") -> str:
    """The name of a worker nobody named: ``gen<pid>@<host>`` (Celery's test workers use it)."""
    return nodename(f"{prefix}{os.getpid()}", hostname or gethostname())


def nodesplit(name: str) -> tuple[str | None, str]:
    """``("celery", "host")`` for ``celery@host``, ``(None, "host")`` for a bare host name."""
    parts = name.split(NODENAME_SEP, 1)
    if len(parts) == 1:
        return None, parts[0]
    return parts[0], parts[1]


def default_nodename(hostname: str | None) -> str:
    """``hostname`` made a full node name: ``celery@<host>`` when it has no ``name@`` part."""
    name, host = nodesplit(hostname or "")
    return nodename(name or NODENAME_DEFAULT, host or gethostname())
