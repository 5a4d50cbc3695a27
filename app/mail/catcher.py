"""The development mail catcher: an SMTP server on loopback that keeps every message for the /mail page.

    python -m app.mail.catcher [--port 1025]

It accepts any message for any recipient and delivers none; what it catches goes to the Redis
at ``REDIS_URL`` (see :mod:`app.mail.mailbox`). ``make run`` starts it when ``SMTP_HOST`` is unset.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from aiosmtpd.controller import Controller

from app.mail import mailbox

logger = logging.getLogger("app.mail.catcher")


class CatchingHandler:
    """An aiosmtpd handler that hands each message to ``keep(content, mail_from, rcpt_tos)``."""

    def __init__(self, keep: Callable[[bytes, str, list[str]], None]) -> None:
        self.keep = keep

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        try:
            self.keep(envelope.content, envelope.mail_from, list(envelope.rcpt_tos))
        except Exception:  # the catcher's boundary: say "try later" instead of dropping the connection
            logger.exception("could not keep the message from %s", envelope.mail_from)
            return "451 4.3.0 The catcher could not store the message"
        return "250 2.0.0 Caught (not delivered)"


def start(keep: Callable[[bytes, str, list[str]], None], host: str = "127.0.0.1", port: int = 1025) -> Controller:
    """Start a catcher in a background thread; stop it with ``.stop()``."""
    controller = Controller(CatchingHandler(keep), hostname=host, port=port)
    controller.start()
    return controller


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m app.mail.catcher``: catch into ``REDIS_URL`` until SIGINT or SIGTERM."""
    import redis

    from app import config

    parser = argparse.ArgumentParser(prog="python -m app.mail.catcher", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default: SMTP_PORT, 1025)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's, one line per SMTP command
    settings = config.load()
    conn = redis.Redis.from_url(settings["REDIS_URL"], socket_timeout=5, socket_connect_timeout=5)
    port = args.port or int(settings["SMTP_PORT"])

    def keep(content: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
        caught = mailbox.parse(content, mail_from, rcpt_tos)
        mailbox.store(conn, caught)
        logger.info("caught %s from %s to %s: %r", caught["message_id"], mail_from, ", ".join(rcpt_tos),
                    caught["subject"])

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        controller = start(keep, args.host, port)
    except (OSError, RuntimeError) as exc:
        logger.error("cannot listen on %s:%s: %s", args.host, port, exc)
        return 1
    logger.info("catching mail on %s:%s; nothing is delivered", args.host, port)
    stop.wait()
    controller.stop()
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
