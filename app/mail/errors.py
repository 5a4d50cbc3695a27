"""The mail package's errors: what a task retries, what it gives up on at once."""

from __future__ import annotations


class MailError(Exception):
    """Raised for any failure to build or deliver an email."""


class InvalidMessage(MailError, ValueError):
    """Raised when a message would carry a bad address or a header with line breaks or control characters."""


class DeliveryError(MailError):
    """Raised when the mail server could not be reached or refused the message."""


class TemporaryDeliveryError(DeliveryError):
    """Raised when the server is unreachable, times out or answers 4xx: the same message may go through later."""


class PermanentDeliveryError(DeliveryError):
    """Raised when the server answers 5xx (or the TLS setup is wrong): sending again would fail again."""


class DeliveryUncertain(PermanentDeliveryError):
    """Raised when the connection broke after the whole message was sent: it may have been accepted."""
