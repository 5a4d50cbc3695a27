"""Passwords never reach a log line or a page: :func:`redact_url` masks them wherever a URL shows.

A Redis URL carries its password (``redis://:secret@host``, ``?password=secret``), and Celery's
Sentinel form carries several (``sentinel://:a@h1;sentinel://:b@h2``). Whatever prints a URL
passes it through :func:`redact_url`; :class:`RedactingFilter` does it for every record of a
logger, so a line that quotes a URL by accident (an exception's text) is masked too.
"""

from __future__ import annotations

import logging
import re

# The credentials of every scheme://user:password@ in a text: greedy up to the last "@" before a
# space or ";", so a password holding "@" or "/" is masked whole (masking too much is harmless).
_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<credentials>[^\s;]*)@")
_QUERY_PASSWORD = re.compile(r"(?i)(?P<key>[?&](?:password|sentinel_password)=)[^&\s;]*")
MASK = "***"


def redact_url(text: str, mask: str = MASK) -> str:
    """``text`` (a URL, a list of them, or a log line) with every password replaced by ``***``.

    >>> redact_url("redis://user:secret@host:6379/0")
    'redis://user:***@host:6379/0'
    >>> redact_url("sentinel://:a@h1:26379;sentinel://:b@h2:26379")
    'sentinel://:***@h1:26379;sentinel://:***@h2:26379'
    """
    if "://" not in text and "assword=" not in text and "ASSWORD=" not in text:
        return text  # the common case, decided without a regex
    text = _CREDENTIALS.sub(lambda match: _mask_credentials(match, mask), text)
    return _QUERY_PASSWORD.sub(lambda match: match["key"] + mask, text)


def _mask_credentials(match: re.Match, mask: str) -> str:
    user, colon, _password = match["credentials"].partition(":")
    # Without a colon the one field may be a password (some clients read it so): mask it too.
    return f"{match['scheme']}{user}:{mask}@" if colon else f"{match['scheme']}{mask}@"


class RedactingFilter(logging.Filter):
    """A logging filter that masks passwords in the final message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_url(logging.Formatter().formatException(record.exc_info))
        return True


def redact_handlers(logger: logging.Logger) -> None:
    """Put a :class:`RedactingFilter` on every handler of ``logger`` (once)."""
    for handler in logger.handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(RedactingFilter())
