"""What a header value reads as once decoded, and whether that could break the header apart.

A subject such as ``=?utf-8?q?x=0D=0AReply-To:_a@evil.example?=`` is harmless text on the way in,
but Python's ``email`` package (3.10 to 3.12 at least) decodes RFC 2047 encoded-words when the header
is set, then writes the decoded CR LF to the wire: a new header line. So a value is judged by every
form it can take: as given, as the ``email`` package decodes it, and as a lenient reader decodes
each encoded-word on its own (even inside a word, where RFC 2047 says not to).
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import re
from collections.abc import Iterator

#: C0 controls (CR, LF, VT, FF, NUL, FS, GS, RS among them), DEL and the C1 controls (NEL among them),
#: and Unicode's line and paragraph separators: each ends a line for some mail software, and none
#: belongs in a header.
FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: Surrogate code points: never valid text; a decoder leaves them for bytes it could not decode.
SURROGATES = re.compile(r"[\ud800-\udfff]")
#: An RFC 2047 encoded-word, loosely: readers accept whitespace inside the encoded text.
ENCODED_WORD = re.compile(r"=\?([^?]*)\?([bBqQ])\?(.*?)\?=", re.DOTALL)

#: What the checks below answer.
SAFE, NOT_TEXT, BREAKS_AS_GIVEN, BREAKS_ONCE_DECODED = "safe", "not text", "breaks as given", "breaks once decoded"


class UndecodableHeader(ValueError):
    """Raised when the ``email`` package refuses to decode a value, which it does when the result would be unsafe."""


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point, which UTF-8 (and so Redis, SMTP, a page) cannot carry."""
    return SURROGATES.search(text) is not None


def decoded_forms(value: str, *, address: bool = False) -> Iterator[str]:
    """Every text ``value`` may read as: as given, as the ``email`` package decodes it (as an address
    header's parts when ``address``), and each encoded-word decoded on its own.

    Raises :class:`UndecodableHeader` when the ``email`` package refuses the value.
    """
    yield value
    yield from _encoded_words(value)
    try:
        yield str(email.policy.default.header_factory("subject", value))
        if address:
            header = email.policy.default.header_factory("to", value)
            for part in header.addresses:
                yield from (part.display_name, part.username, part.domain)
    except Exception as exc:  # noqa: BLE001 - any refusal by the parser means "not safe to write"
        raise UndecodableHeader(f"{type(exc).__name__}: {exc}") from None


def check_header_value(value: str, *, address: bool = False) -> str:
    """Return :data:`SAFE`, or why ``value`` must not go into a header: :data:`NOT_TEXT` (a lone
    surrogate), :data:`BREAKS_AS_GIVEN` or :data:`BREAKS_ONCE_DECODED` (a line break or control character)."""
    if has_lone_surrogate(value):
        return NOT_TEXT
    if FORBIDDEN.search(value):
        return BREAKS_AS_GIVEN
    try:
        for text in decoded_forms(value, address=address):
            if FORBIDDEN.search(text) or has_lone_surrogate(text):
                return BREAKS_ONCE_DECODED
    except UndecodableHeader:
        return BREAKS_ONCE_DECODED
    return SAFE


def _encoded_words(value: str) -> Iterator[str]:
    for charset, encoding, text in ENCODED_WORD.findall(value):
        raw = _decode_word(encoding, text)
        if raw is None:
            continue
        # The ASCII bytes as they are: CR and LF are CR and LF in any charset a reader may fall back to.
        yield raw.decode("ascii", "ignore")
        try:
            yield raw.decode(charset.partition("*")[0] or "ascii", "replace")
        except LookupError:
            continue  # an unknown charset: readers fall back to something ASCII-compatible, as above


def _decode_word(encoding: str, text: str) -> bytes | None:
    data = text.encode("utf-8", "surrogatepass")
    try:
        if encoding in "bB":
            data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
            return base64.b64decode(data + b"=" * (-len(data) % 4))
        return binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return None
