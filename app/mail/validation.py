"""Checking an email request before anything is queued: the rules the web form, the API and the task share.

``validate_email_request`` never raises for bad input: it returns the cleaned values and a
field-to-message dict, which the API turns into a 422 and the form shows next to its fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from email_validator import EmailNotValidError, validate_email

MAX_RECIPIENTS = 50
MAX_SUBJECT_LENGTH = 200
#: In UTF-8 bytes, which is what travels; 100 kB of text is a long letter, not an attachment.
MAX_BODY_BYTES = 100 * 1024

#: C0 controls (CR and LF among them), DEL and C1 controls, plus Unicode's line and paragraph separators,
#: which some mail software also treats as line breaks.
HEADER_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: A body may hold tabs and line breaks, and nothing else from the control ranges.
BODY_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: How the "to" field of a form separates several addresses.
ADDRESS_SEPARATORS = re.compile(r"[,;]")


def is_safe_header_value(value: str) -> bool:
    """Whether ``value`` can go into a header as it is: no line breaks, no control characters."""
    return HEADER_FORBIDDEN.search(value) is None


def normalize_address(address: str) -> str:
    """Return ``address`` in the ASCII form SMTP carries (domain lowercased, IDN in punycode).

    Raises :class:`ValueError` with a readable reason. Deliverability (DNS) is not checked: that
    is slow, and the mail server says so anyway.
    """
    if not is_safe_header_value(address):
        raise ValueError("must not contain line breaks or control characters")
    try:
        result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.ascii_email or result.normalized


def validate_email_request(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return ``(clean, errors)`` for ``{"to", "subject", "body"}`` from a form or a JSON object.

    ``clean`` is ``{"to": [address, ...], "subject": str, "body": str}`` (complete only when
    ``errors`` is empty); ``errors`` maps each bad field to a message. ``to`` is one string of
    addresses separated by commas or semicolons, or a list of strings. Other keys (a CSRF token)
    are ignored.
    """
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, check in (("to", _recipients), ("subject", _subject), ("body", _body)):
        try:
            clean[field] = check(data.get(field))
        except ValueError as exc:
            errors[field] = str(exc)
    return clean, errors


def _recipients(value: Any) -> list[str]:
    if value is None or value == "" or value == []:
        raise ValueError("is required")
    if isinstance(value, str):
        # Checked before splitting: "a@example.com\nBcc: b@example.com" must be refused, not split.
        if not is_safe_header_value(value):
            raise ValueError("must not contain line breaks or control characters")
        parts = ADDRESS_SEPARATORS.split(value)
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        if not all(is_safe_header_value(item) for item in value):
            raise ValueError("must not contain line breaks or control characters")
        parts = value
    else:
        raise ValueError("must be a string of addresses or a list of strings")
    addresses: list[str] = []
    for part in parts:
        part = part.strip()
        if not part and isinstance(value, str):
            continue  # "a@example.com, " is one address
        try:
            address = normalize_address(part)
        except ValueError as exc:
            raise ValueError(f"{part!r}: {exc}" if part else "contains an empty address") from None
        if address.lower() not in (seen.lower() for seen in addresses):
            addresses.append(address)
    if not addresses:
        raise ValueError("is required")
    if len(addresses) > MAX_RECIPIENTS:
        raise ValueError(f"may name at most {MAX_RECIPIENTS} addresses, not {len(addresses)}")
    return addresses


def _subject(value: Any) -> str:
    if value is None:
        raise ValueError("is required")
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not is_safe_header_value(value):
        raise ValueError("must be one line, without control characters")
    value = value.strip()
    if not value:
        raise ValueError("is required")
    if len(value) > MAX_SUBJECT_LENGTH:
        raise ValueError(f"must be at most {MAX_SUBJECT_LENGTH} characters, not {len(value)}")
    return value


def _body(value: Any) -> str:
    if value is None:
        raise ValueError("is required")
    if not isinstance(value, str):
        raise ValueError("must be a string")
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if BODY_FORBIDDEN.search(value):
        raise ValueError("must not contain control characters other than tabs and line breaks")
    if not value.strip():
        raise ValueError("is required")
    size = len(value.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise ValueError(f"must be at most {MAX_BODY_BYTES // 1024} kB, not {size / 1024:.0f} kB")
    return value
