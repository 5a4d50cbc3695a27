"""The mail settings, read through :mod:`app.config` so that the web app and the worker agree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from app import config
from app.mail.validation import Limits

SECURITY_MODES = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class MailSettings:
    """Where and how email tasks deliver; built by :func:`mail_settings`."""

    host: str
    port: int
    security: str
    timeout: float
    sender: str
    redis_url: str
    username: str | None = None
    #: Kept out of ``repr`` so that a logged settings object never shows it.
    password: str | None = field(default=None, repr=False)
    rate_limit: str | None = None
    retry_base: float = 10.0
    retry_max: float = 300.0
    #: How big a message may be; the task checks again what the web app checked.
    limits: Limits = field(default_factory=Limits)

    @property
    def sender_domain(self) -> str:
        """The domain of :attr:`sender`, which also names the Message-IDs (``localhost`` if it has none)."""
        return parseaddr(self.sender)[1].rpartition("@")[2] or "localhost"

    @property
    def sender_address(self) -> str:
        """The bare address of :attr:`sender`, for the SMTP envelope."""
        return parseaddr(self.sender)[1]

    def sender_header(self) -> Address:
        """:attr:`sender` as a ``From`` header value: display name and address."""
        name, address = parseaddr(self.sender)
        return Address(display_name=name, addr_spec=address)


def mail_settings(settings: Mapping[str, Any] | None = None) -> MailSettings:
    """Return the mail settings from ``settings`` (a Flask app's config, say), else from :func:`app.config.load`.

    Raises :class:`app.config.ConfigError` when ``MAIL_FROM`` is not an address.
    """
    settings = config.load() if settings is None else settings
    sender = str(settings["MAIL_FROM"])
    if "@" not in parseaddr(sender)[1]:
        raise config.ConfigError(f"MAIL_FROM={sender!r} is not an email address")
    return MailSettings(
        host=str(settings["SMTP_HOST"]),
        port=int(settings["SMTP_PORT"]),
        security=str(settings["SMTP_SECURITY"]).lower(),
        timeout=float(settings["SMTP_TIMEOUT"]),
        sender=sender,
        redis_url=str(settings["REDIS_URL"]),
        username=settings.get("SMTP_USERNAME") or None,
        password=settings.get("SMTP_PASSWORD") or None,
        rate_limit=settings.get("MAIL_RATE_LIMIT") or None,
        retry_base=float(settings["MAIL_RETRY_BASE"]),
        retry_max=float(settings["MAIL_RETRY_MAX"]),
        limits=Limits.from_settings(settings),
    )
