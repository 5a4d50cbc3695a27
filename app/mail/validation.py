"""Checking an email request before anything is queued: the rules the web form, the API and the task share.

``validate_email_request`` never raises for bad input: it returns the cleaned values and a
field-to-message dict, which the API turns into a 422 and the form shows next to its fields.
Sizes are checked first, before any per-address or per-character work, so that an oversized
request costs a few string operations however large it is (it used to cost a thread for minutes).
Header fields are judged by what they decode to (:mod:`app.mail.headers`), not only as typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email

from app import config
from app.mail.headers import (
    BREAKS_AS_GIVEN,
    ENCODED_WORD,
    FORBIDDEN,
    NOT_TEXT,
    SAFE,
    check_header_value,
    has_lone_surrogate,
)

#: The defaults of the MAIL_MAX_* settings, whose why-comments are in app/config.py.
MAX_RECIPIENTS = config.Defaults.MAIL_MAX_RECIPIENTS
MAX_SUBJECT_LENGTH = config.Defaults.MAIL_MAX_SUBJECT_LENGTH
MAX_BODY_BYTES = config.Defaults.MAIL_MAX_BODY_BYTES
#: RFC 5321's limit on a forward path, which bounds the length of one address.
MAX_ADDRESS_LENGTH = 254

#: A body may hold tabs and line breaks, and nothing else from the control ranges.
BODY_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: How the "to" field of a form separates several addresses.
ADDRESS_SEPARATORS = re.compile(r"[,;]")

NOT_TEXT_MESSAGE = "must be valid Unicode text (it holds a lone surrogate such as \\ud800)"


@dataclass(frozen=True)
class Limits:
    """How big an email request may be; :meth:`from_settings` reads them from the app's config."""

    max_recipients: int = MAX_RECIPIENTS
    max_subject_length: int = MAX_SUBJECT_LENGTH
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Limits:
        """The limits the ``MAIL_MAX_*`` settings give, the defaults for those unset."""
        return cls(
            max_recipients=int(settings.get("MAIL_MAX_RECIPIENTS", MAX_RECIPIENTS)),
            max_subject_length=int(settings.get("MAIL_MAX_SUBJECT_LENGTH", MAX_SUBJECT_LENGTH)),
            max_body_bytes=int(settings.get("MAIL_MAX_BODY_BYTES", MAX_BODY_BYTES)),
        )

    @property
    def max_to_length(self) -> int:
        """The longest "to" string worth reading: every address at its longest, plus a separator and a space."""
        return self.max_recipients * (MAX_ADDRESS_LENGTH + 2)


def is_safe_header_value(value: str, *, address: bool = False) -> bool:
    """Whether ``value`` can go into a header: valid text without line breaks or control characters,
    as given and once its RFC 2047 encoded-words are decoded."""
    return check_header_value(value, address=address) == SAFE


def normalize_address(address: str) -> str:
    """Return ``address`` in the ASCII form SMTP carries (domain lowercased, IDN in punycode).

    Raises :class:`ValueError` with a readable reason. Deliverability (DNS) is not checked: that
    is slow, and the mail server says so anyway.
    """
    if len(address) > MAX_ADDRESS_LENGTH:
        raise ValueError(f"is longer than {MAX_ADDRESS_LENGTH} characters")
    verdict = check_header_value(address, address=True)
    if verdict != SAFE:
        raise ValueError(_header_message(verdict, "must not contain line breaks or control characters"))
    if ENCODED_WORD.search(address):  # it would read as another address in the To header
        raise ValueError("must not contain an encoded-word (=?charset?...?=)")
    try:
        result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.ascii_email or result.normalized


def validate_email_request(data: Mapping[str, Any],
                           limits: Limits | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Return ``(clean, errors)`` for ``{"to", "subject", "body"}`` from a form or a JSON object.

    ``clean`` is ``{"to": [address, ...], "subject": str, "body": str}`` (complete only when
    ``errors`` is empty); ``errors`` maps each bad field to a message. ``to`` is one string of
    addresses separated by commas or semicolons, or a list of strings. Other keys (a CSRF token)
    are ignored. ``limits`` defaults to :class:`Limits`' defaults.
    """
    limits = limits or Limits()
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, check in (("to", _recipients), ("subject", _subject), ("body", _body)):
        try:
            clean[field] = check(data.get(field), limits)
        except ValueError as exc:
            errors[field] = str(exc)
    return clean, errors


def _header_message(verdict: str, breaks: str) -> str:
    if verdict == NOT_TEXT:
        return NOT_TEXT_MESSAGE
    if verdict == BREAKS_AS_GIVEN:
        return breaks
    return f"{breaks}, also once its =?charset?...?= encoded-words are decoded"


def _address_parts(value: Any, limits: Limits) -> list[str]:
    """The addresses ``value`` names, unchecked, after the checks that cost next to nothing: type, size, count,
    and line breaks as typed (before splitting or stripping: "a@example.com\nBcc: b@example.com" is refused)."""
    if isinstance(value, str):
        if len(value) > limits.max_to_length:
            raise ValueError(f"is too long: {len(value)} characters, for at most {limits.max_recipients} addresses")
        items = [value]
        parts = [part.strip() for part in ADDRESS_SEPARATORS.split(value)]
        parts = [part for part in parts if part]  # "a@example.com, " is one address
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
        parts = [item.strip() for item in value]
    else:
        raise ValueError("must be a string of addresses or a list of strings")
    if len(parts) > limits.max_recipients:
        raise ValueError(f"may name at most {limits.max_recipients} addresses, not {len(parts)}")
    if any(has_lone_surrogate(item) for item in items):
        raise ValueError(NOT_TEXT_MESSAGE)
    if any(FORBIDDEN.search(item) for item in items):
        raise ValueError("must not contain line breaks or control characters")
    return parts


def _recipients(value: Any, limits: Limits) -> list[str]:
    if value is None or value == "" or value == []:
        raise ValueError("is required")
    addresses: list[str] = []
    seen: set[str] = set()
    wrong: list[str] = []  # every bad address, not only the first: the sender fixes them in one go
    for part in _address_parts(value, limits):
        if not part:
            raise ValueError("contains an empty address")
        try:
            address = normalize_address(part)
        except ValueError as exc:
            wrong.append(f"{part[:MAX_ADDRESS_LENGTH]!r}: {exc}")
            continue
        if address.lower() not in seen:
            seen.add(address.lower())
            addresses.append(address)
    if wrong:
        raise ValueError("; ".join(wrong))
    if not addresses:
        raise ValueError("is required")
    return addresses


def _subject(value: Any, limits: Limits) -> str:
    if value is None:
        raise ValueError("is required")
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > limits.max_subject_length:
        raise ValueError(f"must be at most {limits.max_subject_length} characters, not {len(value)}")
    verdict = check_header_value(value)
    if verdict != SAFE:
        raise ValueError(_header_message(verdict, "must be one line, without control characters"))
    value = value.strip()
    if not value:
        raise ValueError("is required")
    return value


def _body(value: Any, limits: Limits) -> str:
    if value is None:
        raise ValueError("is required")
    if not isinstance(value, str):
        raise ValueError("must be a string")
    # Every character takes at least one byte: more characters than bytes allowed is too big already.
    if len(value) > limits.max_body_bytes:
        raise ValueError(f"must be at most {limits.max_body_bytes // 1024} kB, not {len(value) / 1024:.0f} kB or more")
    if has_lone_surrogate(value):
        raise ValueError(NOT_TEXT_MESSAGE)
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if BODY_FORBIDDEN.search(value):
        raise ValueError("must not contain control characters other than tabs and line breaks")
    if not value.strip():
        raise ValueError("is required")
    size = len(value.encode("utf-8"))
    if size > limits.max_body_bytes:
        raise ValueError(f"must be at most {limits.max_body_bytes // 1024} kB, not {size / 1024:.0f} kB")
    return value
