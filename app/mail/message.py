"""Building the message: ``EmailMessage`` with Date, Message-ID, From, To, Subject and a UTF-8 plain body.

Whatever goes in, the bytes that go out are checked to hold exactly these headers, each on its own
line, reading back as what was asked for, and the same body: the check does not trust the runtime's
``email`` package, whose header folding let decoded line breaks through on Python 3.10 to 3.12.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid

from app.mail.errors import InvalidMessage
from app.mail.validation import is_safe_header_value, normalize_address

#: CRLF line ends as SMTP wants them, and 7-bit transfer encodings (quoted-printable or base64 for
#: non-ASCII text, RFC 2047 for headers), so that any server carries the message unchanged.
POLICY = email.policy.SMTP.clone(cte_type="7bit")

#: The headers a message of ours has, each once; anything else on the wire was smuggled in.
HEADERS = ("date", "message-id", "from", "to", "subject", "content-type", "content-transfer-encoding",
           "mime-version")
#: A header field's name (RFC 5322: printable ASCII but the colon).
_FIELD_NAME = re.compile(rb"[!-9;-~]+")


def message_id_for(task_id: str | None, domain: str) -> str:
    """A Message-ID that is the same on every attempt of one task, so a retry is the same message."""
    if not task_id or not is_safe_header_value(task_id) or not is_safe_header_value(domain):
        return make_msgid(domain=domain)
    return f"<{task_id}@{domain}>"


def build_message(sender: str | Address, to: Sequence[str], subject: str, body: str, *,
                  message_id: str | None = None, date: datetime | None = None) -> EmailMessage:
    """Return the message, or raise :class:`InvalidMessage` if a header would hold a line break or control
    character (as given or once decoded) or an address is invalid. The body goes in as text only: it
    never becomes headers. The serialised message is checked before it is returned (:func:`wire_bytes`)."""
    if not to:
        raise InvalidMessage("a message needs at least one recipient")
    sender_parts = (sender.display_name, sender.addr_spec) if isinstance(sender, Address) else ()
    for name, value in (("From", str(sender)), *(("From", part) for part in sender_parts), ("Subject", subject),
                        ("Message-ID", message_id or "")):
        if not is_safe_header_value(value, address=name == "From"):
            raise InvalidMessage(f"{name} must not contain line breaks or control characters, "
                                 f"as given or once decoded: {ascii(value)}")
    try:
        recipients = [normalize_address(address) for address in to]
    except ValueError as exc:
        raise InvalidMessage(f"To: {exc}") from None
    message = EmailMessage(policy=POLICY)
    try:
        message["Date"] = format_datetime(date or datetime.now(timezone.utc))
        message["Message-ID"] = message_id or make_msgid()
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
    except ValueError as exc:  # the email package's own refusals (some versions check more than others)
        raise InvalidMessage(f"a header cannot be written safely: {exc}") from None
    message.set_content(body, subtype="plain", charset="utf-8")
    _check_reads_back(wire_bytes(message), recipients, str(message["Subject"]), message.get_content())
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as it goes to the server, or :class:`InvalidMessage` unless its header section is
    exactly :data:`HEADERS`, once each, every line a header or the folded continuation of one."""
    data = message.as_bytes()
    head, blank, _ = data.partition(b"\r\n\r\n")
    if not blank:
        raise InvalidMessage("the serialised message has no blank line after its headers")
    names = []
    for number, line in enumerate(head.split(b"\r\n")):
        if not line.isascii() or b"\r" in line or b"\n" in line or b"\0" in line:
            raise InvalidMessage(f"header line {number + 1} holds a bare line break or a non-ASCII byte")
        if line[:1] in (b" ", b"\t") and number > 0:
            continue  # folded: the rest of the header above
        name, colon, _ = line.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise InvalidMessage(f"header line {number + 1} is neither a header nor a folded continuation")
        names.append(name.decode("ascii").lower())
    if sorted(names) != sorted(HEADERS):
        raise InvalidMessage(f"the serialised headers would be {', '.join(names)}, not {', '.join(HEADERS)}")
    return data


def _check_reads_back(data: bytes, recipients: list[str], subject: str, body: str) -> None:
    # What a recipient's software reads must be what was set (``subject`` and ``body`` as the email
    # package holds them): a header that re-parses differently, or a body that changed, means something was
    # smuggled through the folding.
    parsed = BytesParser(policy=email.policy.default).parsebytes(data)
    addresses = [address.addr_spec for address in parsed["To"].addresses] if parsed["To"] is not None else []
    if str(parsed["Subject"]) != subject or addresses != recipients:
        raise InvalidMessage("the serialised Subject or To would read differently from what was asked for")
    if parsed.get_content_type() != "text/plain" or parsed.get_content().replace("\r\n", "\n") != body.replace(
            "\r\n", "\n"):
        raise InvalidMessage("the serialised body would read differently from what was asked for")
