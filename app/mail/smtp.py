"""Delivering over SMTP with smtplib: a session (plain, STARTTLS or implicit TLS), one envelope per recipient.

Every failure comes out as one of :mod:`app.mail.errors`: temporary (unreachable, timeout, 4xx),
permanent (5xx, TLS misconfigured), or uncertain (the connection broke after the whole message
was sent, so the server may have accepted it). The envelope is spoken step by step, rather than
with ``sendmail``, precisely to tell the uncertain case apart from the others.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from app.mail.errors import DeliveryError, DeliveryUncertain, PermanentDeliveryError, TemporaryDeliveryError
from app.mail.settings import MailSettings

#: RFC 5321 4.5.2: a line starting with a period gets one more, so it cannot end the message early.
_LEADING_PERIOD = re.compile(rb"^\.", re.MULTILINE)


@contextmanager
def smtp_session(settings: MailSettings) -> Iterator[smtplib.SMTP]:
    """Connect, say EHLO, start TLS and log in as ``settings`` say; QUIT at the end.

    Raises :class:`TemporaryDeliveryError` or :class:`PermanentDeliveryError` if any of it fails.
    """
    where = f"{settings.host}:{settings.port}"
    try:
        if settings.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    except (smtplib.SMTPException, OSError) as exc:
        raise translate(exc, f"connecting to {where}") from exc
    try:
        try:
            smtp.ehlo()
            if settings.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            raise translate(exc, f"setting up the session with {where}") from exc
        yield smtp
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def transmit(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes, before_last_line: Callable[[], None]) -> str:
    """Send ``data`` (a whole message, CRLF line ends) to one ``recipient``; return the server's reply.

    ``before_last_line`` is called just before the final "." that commits the message: from then
    on, a broken connection raises :class:`DeliveryUncertain`, since the server may have taken it.
    """
    code, reply = smtp.mail(sender)
    if code != 250:
        raise _refused(code, reply, f"MAIL FROM:<{sender}>")
    code, reply = smtp.rcpt(recipient)
    if code not in (250, 251):
        raise _refused(code, reply, f"RCPT TO:<{recipient}>")
    code, reply = smtp.docmd("DATA")
    if code != 354:
        raise _refused(code, reply, "DATA")
    stuffed = _LEADING_PERIOD.sub(b"..", data)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    try:
        smtp.send(stuffed)
    except OSError as exc:  # without the final ".", the server discards what it got
        raise translate(exc, f"sending the message to {recipient}") from exc
    before_last_line()
    try:
        smtp.send(b".\r\n")
        code, reply = smtp.getreply()
    except OSError as exc:
        raise DeliveryUncertain(
            f"the connection broke after the message to {recipient} was sent ({type(exc).__name__}: {exc}); "
            "it may have been delivered, so it is not sent again") from exc
    if code != 250:
        raise _refused(code, reply, f"the message to {recipient}")
    return _text(reply)


def translate(exc: BaseException, doing: str) -> DeliveryError:
    """The mail error that ``exc`` (from smtplib, ssl or a socket) means, worded with what we were ``doing``."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPResponseException):
        return _refused(exc.smtp_code, exc.smtp_error, doing)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        address, (code, reply) = next(iter(exc.recipients.items()))
        return _refused(code, reply, f"{doing} (RCPT TO:<{address}>)")
    if isinstance(exc, (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError)):
        return PermanentDeliveryError(f"{doing}: {exc}")
    if isinstance(exc, TimeoutError):
        return TemporaryDeliveryError(f"{doing}: no answer within the timeout")
    if isinstance(exc, ConnectionRefusedError):
        return TemporaryDeliveryError(f"{doing}: connection refused")
    return TemporaryDeliveryError(f"{doing}: {type(exc).__name__}: {exc}")


def _refused(code: int, reply: bytes | str, doing: str) -> DeliveryError:
    kind = TemporaryDeliveryError if 400 <= code < 500 or code < 0 else PermanentDeliveryError
    return kind(f"{doing}: the server answered {code} {_text(reply)}")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
