"""The development mailbox: messages the catcher caught, newest first, in one capped Redis list."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser
from typing import Any

import redis

KEY = "mail:caught"
#: Enough to scroll back through a day of trying things out, small enough to never matter to Redis.
KEEP = 200


def parse(content: bytes, mail_from: str, rcpt_tos: list[str]) -> dict[str, Any]:
    """Turn a received message into what the /mail page shows: headers decoded, body as text."""
    message = BytesParser(policy=policy.default).parsebytes(content)
    part = message.get_body(preferencelist=("plain", "html"))
    try:
        body = part.get_content() if part is not None else message.get_payload(decode=True).decode("utf-8", "replace")
    except (LookupError, AttributeError, ValueError):  # an unknown charset or a broken part: show it raw
        body = content.decode("utf-8", "replace")
    return {
        "received_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mail_from": mail_from,
        "rcpt_tos": list(rcpt_tos),
        "message_id": str(message.get("Message-ID", "")),
        "subject": str(message.get("Subject", "")),
        "headers": [[name, str(value)] for name, value in message.items()],
        "body": body.replace("\r\n", "\n"),
        "size": len(content),
    }


def store(conn: redis.Redis, caught: dict[str, Any]) -> None:
    """Add ``caught`` (from :func:`parse`) as the newest message, forgetting the oldest beyond :data:`KEEP`."""
    pipe = conn.pipeline()
    pipe.lpush(KEY, json.dumps(caught))
    pipe.ltrim(KEY, 0, KEEP - 1)
    pipe.execute()


def recent(conn: redis.Redis, limit: int = 50) -> list[dict[str, Any]]:
    """The ``limit`` newest caught messages, newest first."""
    return [json.loads(item) for item in conn.lrange(KEY, 0, limit - 1)]
