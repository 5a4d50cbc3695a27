"""Sending an email in the background: SMTP delivery, retried with backoff, never sent twice, rate limited.

    send_email.delay(["ada@example.com"], "Hello", "Body text")

Steps reported as ``PROGRESS`` (``info["step"]``): ``waiting`` (for the shared send rate),
``connecting``, ``sending`` (``current``/``total`` recipients), ``sent``. A temporary failure
(server unreachable, timeout, 4xx) is ``RETRY`` with the reason and the attempt, up to 5 attempts;
a permanent one (5xx, invalid message) is ``FAILURE`` at once.
"""

from __future__ import annotations

import random
import time
from typing import Any

import redis

from app.celery_compat import Task, shared_task
from app.mail.errors import DeliveryError, DeliveryUncertain, InvalidMessage, TemporaryDeliveryError
from app.mail.message import build_message, message_id_for, wire_bytes
from app.mail.ratelimit import RateLimit, SendRateLimiter
from app.mail.record import SENDING, SENT, DeliveryRecord
from app.mail.settings import MailSettings, mail_settings
from app.mail.smtp import smtp_session, transmit
from app.mail.validation import validate_email_request

MAX_RETRIES = 4  # five attempts in all

#: The longest single sleep while waiting for the send rate, so the state's countdown stays fresh.
RATE_POLL_SECONDS = 2.0


# acks_late + reject_on_worker_lost: a task whose worker died runs again; the delivery record makes
# that safe. Retries are explicit (not autoretry_for) because their delays are settings, read at run time.
@shared_task(bind=True, name="app.tasks.email.send_email", max_retries=MAX_RETRIES, track_started=True,
             acks_late=True, reject_on_worker_lost=True)
def send_email(self: Task, to: list[str], subject: str, body: str) -> dict[str, Any]:
    """Send one message to every address in ``to``; return its Message-ID and who got it."""
    settings = mail_settings()
    clean, errors = validate_email_request({"to": to, "subject": subject, "body": body}, settings.limits)
    if errors:
        raise InvalidMessage("; ".join(f"{field} {message}" for field, message in errors.items()))
    recipients = clean["to"]
    message_id = message_id_for(self.request.id, settings.sender_domain)
    message = build_message(settings.sender_header(), recipients, clean["subject"], clean["body"],
                            message_id=message_id)
    conn = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        record = DeliveryRecord(conn, message_id)
        sent_before = _check_record(record.load(), recipients)
        if len(sent_before) < len(recipients):
            if settings.rate_limit:
                _wait_for_send_slot(self, SendRateLimiter(conn, RateLimit.parse(settings.rate_limit)),
                                    len(sent_before), len(recipients))
            try:
                _deliver(self, settings, record, wire_bytes(message), recipients, sent_before)
            except TemporaryDeliveryError as exc:
                raise _retry(self, settings, exc) from exc
    finally:
        conn.close()
    _progress(self, "sent", len(recipients), len(recipients))
    return {
        "message_id": message_id,
        "to": recipients,
        "sent_before": sorted(sent_before),
        "message": f"Sent to {len(recipients)} recipient{'s' if len(recipients) != 1 else ''}",
    }


def _check_record(record: dict[str, str], recipients: list[str]) -> set[str]:
    uncertain = [recipient for recipient in recipients if record.get(recipient) == SENDING]
    if uncertain:
        raise DeliveryUncertain(
            f"an earlier attempt was interrupted while the server was taking the message for {', '.join(uncertain)}; "
            "it may have been delivered, so it is not sent again")
    return {recipient for recipient in recipients if record.get(recipient) == SENT}


def _wait_for_send_slot(task: Task, limiter: SendRateLimiter, current: int, total: int) -> None:
    while True:
        wait = limiter.try_acquire()
        if wait <= 0:
            return
        _progress(task, "waiting", current, total, wait=round(wait, 1),
                  message=f"waiting {wait:.0f} s for the send rate ({limiter.limit})")
        time.sleep(min(wait, RATE_POLL_SECONDS))


def _deliver(task: Task, settings: MailSettings, record: DeliveryRecord, data: bytes, recipients: list[str],
             sent_before: set[str]) -> None:
    _progress(task, "connecting", len(sent_before), len(recipients))
    with smtp_session(settings) as smtp:
        for current, recipient in enumerate(recipients):
            if recipient in sent_before:
                continue
            _progress(task, "sending", current, len(recipients))
            try:
                reply = transmit(smtp, settings.sender_address, recipient, data,
                                 before_last_line=lambda recipient=recipient: record.sending(recipient))
            except DeliveryUncertain:
                raise
            except DeliveryError:
                record.clear(recipient)  # refused, so certainly not delivered: a retry may send it
                raise
            record.sent(recipient, reply)


def _retry(task: Task, settings: MailSettings, exc: TemporaryDeliveryError) -> BaseException:
    attempt = task.request.retries + 1
    if attempt > MAX_RETRIES:
        return TemporaryDeliveryError(f"{exc} (attempt {attempt} of {MAX_RETRIES + 1}, giving up)")
    # Exponential backoff with "equal jitter": between half and all of base * 2**retries, so that
    # tasks failing together do not come back together, yet never retry at once.
    delay = min(settings.retry_max, settings.retry_base * 2 ** task.request.retries)
    countdown = delay / 2 + random.uniform(0, delay / 2)
    reason = TemporaryDeliveryError(f"{exc} (attempt {attempt} of {MAX_RETRIES + 1}, next in {countdown:.0f} s)")
    return task.retry(exc=reason, countdown=countdown, throw=False)


def _progress(task: Task, step: str, current: int, total: int, **extra: Any) -> None:
    meta = {"step": step, "current": current, "total": total, "percent": round(100 * current / total), **extra}
    task.update_state(state="PROGRESS", meta=meta)
