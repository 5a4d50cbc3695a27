"""Email tasks, end to end: a real worker process (``python worker.py``) delivering to a real SMTP server."""

from __future__ import annotations

import time

import pytest
from rq.registry import FailedJobRegistry

from app.mail.errors import DeliveryUncertain, InvalidMessage, PermanentDeliveryError
from app.mail.record import DeliveryRecord
from app.tasks.email import send_email
from tests.conftest import wait_for


def finished(result):
    """A wait_for predicate: the task's final state, once it has one."""

    def ready():
        return result.state if result.state in ("SUCCESS", "FAILURE") else None

    return ready


def text_of(message) -> str:
    """The body as the recipient reads it: decoded, with the wire's CRLF line ends back to newlines."""
    return message.get_content().replace("\r\n", "\n")


def states_until_done(result, timeout: float = 30.0) -> list[tuple]:
    """Poll ``result`` until it finishes; return every distinct (state, info) seen, in order."""
    seen: list[tuple] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, info = result.state, result.info
        entry = (state, dict(info) if isinstance(info, dict) else str(info))
        if not seen or seen[-1] != entry:
            seen.append(entry)
        if state in ("SUCCESS", "FAILURE"):
            return seen
        time.sleep(0.02)
    pytest.fail(f"the task did not finish within {timeout} s; states seen: {seen}")


def test_an_email_arrives_with_its_headers_body_and_message_id(smtp_sink, mail_worker):
    # Given a worker delivering to the SMTP server
    mail_worker()
    # When an email is sent
    result = send_email.delay(["ada@example.com"], "Quarterly report", "Hello Ada,\n\nthe report is ready.\n")
    # Then the task succeeds and the server got exactly that message, once
    assert wait_for(finished(result)) == "SUCCESS", result.info
    (mail_from, rcpt_tos, message), = smtp_sink.received
    assert (mail_from, rcpt_tos) == ("jobs@localhost", ["ada@example.com"])
    assert message["From"] == "Background jobs <jobs@localhost>"
    assert (message["To"], message["Subject"]) == ("ada@example.com", "Quarterly report")
    assert message["Date"] is not None
    assert message["Message-ID"] == f"<{result.id}@localhost>" == result.result["message_id"]
    assert text_of(message) == "Hello Ada,\n\nthe report is ready.\n"


def test_non_ascii_subject_and_body_survive_the_trip(smtp_sink, mail_worker):
    # Given a worker, and a subject and body far from ASCII
    mail_worker()
    subject, body = "Grüße aus Zürich – 東京 ✓", "Ünïcödé bödy\nΚαλημέρα, мир! 🎉\n.\nA line that is only a dot.\n"
    # When they are sent
    result = send_email.delay(["jose@example.com"], subject, body)
    # Then they arrive unchanged (the lone dot too)
    assert wait_for(finished(result)) == "SUCCESS", result.info
    message = smtp_sink.messages()[0]
    assert (message["Subject"], text_of(message)) == (subject, body)


def test_several_recipients_each_get_the_message_and_progress_counts_them(smtp_sink, mail_worker):
    # Given a worker and a server slow enough to watch the progress
    mail_worker()
    smtp_sink.delay = 0.3
    recipients = ["a@example.com", "b@example.com", "c@example.com"]
    # When one email goes to three recipients
    result = send_email.delay(recipients, "Team news", "Hi all")
    # Then the progress walks through the steps, counting recipients, to SUCCESS
    seen = states_until_done(result)
    steps = [(info["step"], info["current"], info["total"]) for state, info in seen if state == "PROGRESS"]
    assert {step for step, _, _ in steps} <= {"connecting", "sending", "sent"}  # "connecting" is often too quick
    assert [step for step in steps if step[0] == "sending"] == [("sending", 0, 3), ("sending", 1, 3), ("sending", 2, 3)]
    assert seen[-1][0] == "SUCCESS", seen
    # And each recipient got the same message in its own envelope, with all of them in To
    assert sorted(rcpt for _, rcpts, _ in smtp_sink.received for rcpt in rcpts) == recipients
    assert {message["Message-ID"] for message in smtp_sink.messages()} == {f"<{result.id}@localhost>"}
    assert smtp_sink.messages()[0]["To"] == ", ".join(recipients)


def test_a_server_down_at_first_gets_the_message_exactly_once_after_retries(smtp_sink, mail_worker, redis_conn):
    # Given a worker whose mail server is down, with retries 1, 2, 4, 4 s apart (jittered)
    smtp_sink.stop()
    mail_worker(MAIL_RETRY_MAX="4")
    # When an email is sent
    result = send_email.delay(["ada@example.com"], "Patience", "It will get there.")
    # Then the task is RETRY, saying why and which attempt
    wait_for(lambda: result.state == "RETRY", timeout=20)
    assert "connection refused" in str(result.info) and "attempt 1 of 5" in str(result.info)
    # When the server comes back a couple of seconds later
    time.sleep(2)  # the outage itself, not a wait for a condition
    smtp_sink.start()
    # Then the task succeeds and the message arrived exactly once
    assert wait_for(finished(result), timeout=30) == "SUCCESS", result.info
    assert len(smtp_sink.received) == 1
    # And the delivery is on record, so no later attempt could send it again
    assert DeliveryRecord(redis_conn, result.result["message_id"]).load() == {"ada@example.com": "sent"}


def test_a_550_fails_at_once_with_the_servers_message(app, smtp_sink, mail_worker):
    # Given a server that refuses the recipient permanently
    mail_worker()
    smtp_sink.refuse_rcpt.append("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown")
    # When an email is sent to it
    started = time.monotonic()
    result = send_email.delay(["nobody@example.com"], "Hello?", "Anyone there?")
    # Then the task fails at once, without retrying, with the server's words
    seen = states_until_done(result)
    assert seen[-1][0] == "FAILURE" and "RETRY" not in [state for state, _ in seen]
    assert time.monotonic() - started < 10
    assert isinstance(result.info, PermanentDeliveryError)
    assert "550 5.1.1" in str(result.info) and "User unknown" in str(result.info)
    # And nothing was delivered, and the job stays in RQ's failed registry
    assert smtp_sink.received == []
    celery = app.extensions["celery"]  # the worker moves the job there just after storing FAILURE
    assert wait_for(lambda: result.id in FailedJobRegistry("default", connection=celery.connection).get_job_ids(),
                    timeout=5)


def test_a_421_is_retried_and_the_message_then_arrives_once(smtp_sink, mail_worker):
    # Given a server that answers the message with 421 once, then accepts
    mail_worker()
    smtp_sink.refuse_data.append("421 4.3.2 Service not available, closing transmission channel")
    # When an email is sent
    result = send_email.delay(["ada@example.com"], "Try again", "Later is fine.")
    # Then it goes through RETRY, citing the 421, to SUCCESS, with one message delivered
    seen = states_until_done(result)
    retries = [info for state, info in seen if state == "RETRY"]
    assert retries and "421 4.3.2" in retries[0], seen
    assert seen[-1][0] == "SUCCESS"
    assert len(smtp_sink.received) == 1


def test_a_retry_after_a_partial_delivery_sends_only_to_those_still_waiting(smtp_sink, mail_worker):
    # Given a server that accepts the first recipient, then says "try later" for the second
    mail_worker()
    first, second = "first@example.com", "second@example.com"
    original = smtp_sink.handle_RCPT
    refused_once: list[str] = []

    async def refuse_second_once(server, session, envelope, address, options):
        if address == second and not refused_once:
            refused_once.append(address)
            return "451 4.7.1 Greylisted, come back later"
        return await original(server, session, envelope, address, options)

    smtp_sink.handle_RCPT = refuse_second_once
    # When one email goes to both
    result = send_email.delay([first, second], "Twice?", "Never.")
    # Then after a retry both have it, and the first one only once
    assert wait_for(finished(result), timeout=30) == "SUCCESS", result.info
    assert sorted(rcpt for _, rcpts, _ in smtp_sink.received for rcpt in rcpts) == [first, second]
    assert result.result["sent_before"] == [first]


def test_a_recipient_left_mid_delivery_by_a_lost_attempt_is_not_sent_again(app, smtp_sink, mail_worker, redis_conn):
    # Given an earlier attempt that died while the server was taking the message
    mail_worker()
    task_id = "3f1c2a9e-lost-attempt"
    DeliveryRecord(redis_conn, f"<{task_id}@localhost>").sending("ada@example.com")
    # When the task runs again
    result = send_email.apply_async(args=(["ada@example.com"], "Once", "Only once."), task_id=task_id)
    # Then it fails rather than risk a second copy, and sends nothing
    assert wait_for(finished(result)) == "FAILURE"
    assert isinstance(result.info, DeliveryUncertain) and "not sent again" in str(result.info)
    assert smtp_sink.received == []


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        (["ada@example.com"], "Hi\r\nBcc: victim@example.com"),
        (["ada@example.com"], "Hi\nBcc: victim@example.com"),
        (["ada@example.com\nBcc: victim@example.com"], "Hi"),
        (["ada@example.com\r\n"], "Hi"),
    ],
)
def test_header_injection_handed_straight_to_the_task_fails_and_sends_nothing(smtp_sink, mail_worker, to, subject):
    # Given a worker, and a caller that skipped the web app's validation
    mail_worker()
    # When a line break is smuggled into a header field
    result = send_email.delay(to, subject, "body")
    # Then the task refuses it, and the server never hears of it
    assert wait_for(finished(result)) == "FAILURE"
    assert isinstance(result.info, InvalidMessage)
    assert smtp_sink.received == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": "ada@example.com", "subject": "Hi\r\nBcc: victim@example.com", "body": "b"}, "subject"),
        ({"to": "ada@example.com\nBcc: victim@example.com", "subject": "Hi", "body": "b"}, "to"),
        ({"to": ["ada@example.com", "victim@example.com\r\nX-Evil: 1"], "subject": "Hi", "body": "b"}, "to"),
    ],
)
def test_header_injection_through_the_api_is_a_422_and_nothing_is_queued(client, redis_conn, payload, field):
    # When an injection attempt is posted to the API
    response = client.post("/api/tasks/email", json=payload)
    # Then it is refused with the field's error, and no task was queued
    assert response.status_code == 422
    assert field in response.json["errors"]
    assert redis_conn.llen("rq:queue:default") == 0


def test_a_burst_waits_for_the_shared_send_rate_and_says_so(smtp_sink, mail_worker):
    # Given two workers sharing a send rate of one message per 3 seconds
    mail_worker(MAIL_RATE_LIMIT="1/3s")
    mail_worker(MAIL_RATE_LIMIT="1/3s")
    # When two emails are sent at once
    results = [send_email.delay([f"r{i}@example.com"], f"Burst {i}", "b") for i in range(2)]
    # Then one of them says it is waiting for the send rate
    wait_for(lambda: any(r.state == "PROGRESS" and r.info.get("step") == "waiting" for r in results), timeout=20)
    waiting = next(r.info for r in results if r.state == "PROGRESS" and r.info.get("step") == "waiting")
    assert "send rate" in waiting["message"] and 0 < waiting["wait"] <= 3
    # And both arrive, at least about 3 seconds apart
    for result in results:
        assert wait_for(finished(result), timeout=30) == "SUCCESS", result.info
    first, second = smtp_sink.arrivals
    assert second - first >= 2.5


#: The audit's subject: on Python 3.10-3.12 the email package decodes it when the header is set, then
#: writes the decoded CR LF to the wire, adding Reply-To and Content-Type headers and an HTML body.
ENCODED_INJECTION = ("=?utf-8?q?x=0D=0AReply-To:_a@evil.example=0D=0AContent-Type:_text/html=0D=0A=0D=0A"
                     "<h1>x</h1>?=")
#: Exactly the headers a message of ours has, in order.
EXPECTED_HEADERS = ["Date", "Message-ID", "From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding",
                    "MIME-Version"]


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        (["ada@example.com"], ENCODED_INJECTION),
        (["ada@example.com"], "=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXhhbXBsZS5jb20=?="),  # base64 "x\r\nBcc: victim@..."
        (["ada@example.com"], "Hi =?utf-8?q?there=0ABcc:_victim@example.com?= again"),
        (["ada@example.com"], "inside=?utf-8?q?=0D=0ABcc:_victim@example.com?=a-word"),
        (["ada@example.com"], "=?iso-8859-1?q?next=85line?="),  # NEL, a line break to some readers
        (["ada@example.com"], "=?utf-8?q?line=E2=80=A8separator?="),  # U+2028
        (["ada@example.com"], "=?utf-8?q?nul=00?="),
        (["=?utf-8?q?x=0D=0ABcc=3A_victim=40example.com=0D=0A?=@example.com"], "Hi"),
    ],
)
def test_a_header_that_decodes_to_a_line_break_fails_the_task_and_never_reaches_the_server(
        smtp_sink, mail_worker, to, subject):
    # Given a worker, and a caller that skipped the web app's validation
    mail_worker()
    # When an RFC 2047 encoded-word that decodes to a line break (or another separator) is handed to the task
    result = send_email.delay(to, subject, "body")
    # Then the task refuses it, and the server never hears of it: no Reply-To, no Bcc, no HTML body
    assert wait_for(finished(result)) == "FAILURE", result.info
    assert isinstance(result.info, InvalidMessage)
    assert "decoded" in str(result.info)
    assert smtp_sink.received == []


def test_an_injecting_display_name_in_mail_from_fails_the_task_and_sends_nothing(smtp_sink, mail_worker):
    # Given a worker whose configured sender's display name decodes to a line break and a Bcc header
    mail_worker(MAIL_FROM='"=?utf-8?q?Jobs=0D=0ABcc:_victim@example.com?=" <jobs@localhost>')
    # When an email is sent
    result = send_email.delay(["ada@example.com"], "Hello", "body")
    # Then the task refuses to build the message, and nothing is sent
    assert wait_for(finished(result)) == "FAILURE", result.info
    assert isinstance(result.info, InvalidMessage) and "From" in str(result.info)
    assert smtp_sink.received == []


def test_a_harmless_encoded_word_subject_arrives_with_exactly_the_expected_headers(client, smtp_sink, mail_worker):
    # Given a worker, and an email submitted through the API whose subject is an encoded-word for "Grüße"
    mail_worker()
    response = client.post("/api/tasks/email", json={"to": "ada@example.com", "subject": "=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
                                                     "body": "Hello Ada\n"})
    assert response.status_code == 202, response.json
    # When the worker delivers it
    wait_for(lambda: client.get(f"/api/tasks/{response.json['id']}").json["state"] == "SUCCESS", timeout=30)
    # Then the server got one message with exactly our headers, each once, and the plain body
    (mail_from, rcpt_tos, message), = smtp_sink.received
    assert rcpt_tos == ["ada@example.com"]
    assert list(message.keys()) == EXPECTED_HEADERS
    assert (message["To"], message["Subject"], message.get_content_type()) == ("ada@example.com", "Grüße",
                                                                               "text/plain")
    assert text_of(message) == "Hello Ada\n"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": "ada@example.com", "subject": ENCODED_INJECTION, "body": "b"}, "subject"),
        ({"to": "ada@example.com", "subject": "=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXhhbXBsZS5jb20=?=", "body": "b"},
         "subject"),
        ({"to": ["=?utf-8?q?x=0D=0ABcc=3A_victim=40example.com=0D=0A?=@example.com"], "subject": "Hi", "body": "b"},
         "to"),
    ],
)
def test_an_encoded_word_injection_through_the_api_is_a_422_saying_why(client, redis_conn, payload, field):
    # When the audit's payload is posted to the API
    response = client.post("/api/tasks/email", json=payload)
    # Then it is refused, naming the field and saying the decoded text is the problem; nothing is queued
    assert response.status_code == 422
    assert list(response.json["errors"]) == [field]
    why = response.json["errors"][field]
    assert ("one line" in why or "line breaks" in why) and "encoded-words are decoded" in why
    assert redis_conn.llen("rq:queue:default") == 0
