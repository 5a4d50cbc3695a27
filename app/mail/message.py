"""Building the message: ``EmailMessage`` with Date, Message-ID, From, To, Subject and a UTF-8 plain body."""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from app.mail.errors import InvalidMessage
from app.mail.validation import is_safe_header_value, normalize_address

#: CRLF line ends as SMTP wants them, and 7-bit transfer encodings (quoted-printable or base64 for
#: non-ASCII text, RFC 2047 for headers), so that any server carries the message unchanged.
POLICY = email.policy.SMTP.clone(cte_type="7bit")


def message_id_for(task_id: str | None, domain: str) -> str:
    """A Message-ID that is the same on every attempt of one task, so a retry is the same message."""
    if not task_id or not is_safe_header_value(task_id) or not is_safe_header_value(domain):
        return make_msgid(domain=domain)
    return f"<{task_id}@{domain}>"


def build_message(sender: str | Address, to: Sequence[str], subject: str, body: str, *,
                  message_id: str | None = None, date: datetime | None = None) -> EmailMessage:
    """Return the message, or raise :class:`InvalidMessage` if a header would hold a line break or control
    character or an address is invalid. The body goes in as text only: it never becomes headers."""
    if not to:
        raise InvalidMessage("a message needs at least one recipient")
    for name, value in (("From", str(sender)), ("Subject", subject), ("Message-ID", message_id or ""),
                        *(("To", address) for address in to)):
        if not is_safe_header_value(value):
            raise InvalidMessage(f"{name} must not contain line breaks or control characters: {value!r}")
    try:
        recipients = [normalize_address(address) for address in to]
    except ValueError as exc:
        raise InvalidMessage(f"To: {exc}") from None
    message = EmailMessage(policy=POLICY)
    message["Date"] = format_datetime(date or datetime.now(timezone.utc))
    message["Message-ID"] = message_id or make_msgid()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body, subtype="plain", charset="utf-8")
    return message
