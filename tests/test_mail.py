"""The mail package on its own: validation, message building, settings, the send rate, the catcher and /mail."""

from __future__ import annotations

import smtplib

import pytest

from app import config
from app.mail import mailbox
from app.mail.catcher import start as start_catcher
from app.mail.errors import InvalidMessage, PermanentDeliveryError, TemporaryDeliveryError
from app.mail.message import build_message, message_id_for
from app.mail.ratelimit import RateLimit, SendRateLimiter
from app.mail.settings import mail_settings
from app.mail.smtp import translate
from app.mail.validation import MAX_BODY_BYTES, validate_email_request
from tests.conftest import wait_for

VALID = {"to": "ada@example.com", "subject": "Hello", "body": "Hi Ada"}


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("ada@example.com", ["ada@example.com"]),
        ("Ada@Example.COM", ["Ada@example.com"]),
        (" ada@example.com , grace@example.com; ", ["ada@example.com", "grace@example.com"]),
        (["ada@example.com", "ADA@example.com"], ["ada@example.com"]),
        ("jose@bücher.de", ["jose@xn--bcher-kva.de"]),
    ],
)
def test_valid_recipients_are_normalized(to, expected):
    clean, errors = validate_email_request({**VALID, "to": to})
    assert (errors, clean["to"]) == ({}, expected)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"to": None}, "to", "is required"),
        ({"to": " , "}, "to", "is required"),
        ({"to": "not-an-address"}, "to", "'not-an-address'"),
        ({"to": "Ada <ada@example.com>"}, "to", "display name"),
        ({"to": "ada@example.com\nBcc: victim@example.com"}, "to", "line breaks"),
        ({"to": ["ada@example.com\r\n"]}, "to", "line breaks"),
        ({"to": ["ada@example.com", 7]}, "to", "list of strings"),
        ({"to": ",".join(f"u{i}@example.com" for i in range(51))}, "to", "at most 50"),
        ({"subject": None}, "subject", "is required"),
        ({"subject": "   "}, "subject", "is required"),
        ({"subject": 42}, "subject", "must be a string"),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject", "one line"),
        ({"subject": "Hi\nthere"}, "subject", "one line"),
        ({"subject": "tab\there"}, "subject", "control characters"),
        ({"subject": "nul\x00"}, "subject", "control characters"),
        ({"subject": "line\u2028separator"}, "subject", "one line"),
        ({"subject": "x" * 201}, "subject", "at most 200"),
        ({"body": ""}, "body", "is required"),
        ({"body": ["a"]}, "body", "must be a string"),
        ({"body": "bell\x07"}, "body", "control characters"),
        ({"body": "é" * (MAX_BODY_BYTES // 2 + 1)}, "body", "at most 100 kB"),
    ],
)
def test_invalid_requests_get_one_message_per_field(changes, field, message):
    clean, errors = validate_email_request({**VALID, **changes})
    assert list(errors) == [field]
    assert message in errors[field]


def test_a_valid_request_keeps_multiline_bodies_and_ignores_other_fields():
    # Given a form post with a CSRF token and a body with Windows line ends
    data = {**VALID, "body": "line 1\r\nBcc: not-a-header@example.com\r\n", "csrf_token": "abc"}
    # When it is validated
    clean, errors = validate_email_request(data)
    # Then the body keeps its lines (they stay body text) and only the three fields come out
    assert errors == {}
    assert clean == {"to": ["ada@example.com"], "subject": "Hello", "body": "line 1\nBcc: not-a-header@example.com\n"}


@pytest.mark.parametrize(
    ("sender", "to", "subject"),
    [
        ("jobs@localhost", ["ada@example.com"], "Hi\r\nBcc: victim@example.com"),
        ("jobs@localhost", ["ada@example.com\nBcc: victim@example.com"], "Hi"),
        ("jobs@localhost\r\nBcc: victim@example.com", ["ada@example.com"], "Hi"),
        ("jobs@localhost", [], "Hi"),
        ("jobs@localhost", ["not an address"], "Hi"),
    ],
)
def test_the_message_builder_refuses_what_would_inject_headers(sender, to, subject):
    with pytest.raises(InvalidMessage):
        build_message(sender, to, subject, "body")


def test_the_body_never_becomes_headers():
    # Given a body that looks like headers
    message = build_message("jobs@localhost", ["ada@example.com"], "Hi", "Bcc: victim@example.com\r\n\r\nX: y")
    # Then the message has no such header, and the body is still all there
    assert message["Bcc"] is None and message["X"] is None
    assert "Bcc: victim@example.com" in message.get_content()


def test_a_task_keeps_its_message_id_across_attempts():
    first, again = message_id_for("abc-123", "example.com"), message_id_for("abc-123", "example.com")
    assert first == again == "<abc-123@example.com>"
    assert message_id_for(None, "example.com") != message_id_for(None, "example.com")


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("30/m", 30, 60), ("1/s", 1, 1), ("500/h", 500, 3600), ("10/5s", 10, 5), (" 2 / 3m ", 2, 180)],
)
def test_rate_limits_read_like_celerys(text, count, period):
    assert RateLimit.parse(text) == RateLimit(count, period)


@pytest.mark.parametrize("text", ["", "30", "0/m", "30/d", "x/m", "10/0s", "-1/s"])
def test_malformed_rate_limits_are_refused(text):
    with pytest.raises(ValueError, match="is not a rate"):
        RateLimit.parse(text)


def test_the_send_rate_is_shared_and_says_how_long_to_wait(redis_conn):
    # Given two limiters (two workers) on one Redis, sharing 2 messages per second
    first, second = (SendRateLimiter(redis_conn, RateLimit(2, 1)) for _ in range(2))
    # When three messages want to go at once
    waits = [first.try_acquire(), second.try_acquire(), first.try_acquire()]
    # Then two go, and the third is told to wait up to a second
    assert waits[:2] == [0, 0] and 0 < waits[2] <= 1
    # And once that time has passed, it may go
    assert wait_for(lambda: second.try_acquire() == 0, timeout=3)


def test_mail_settings_come_from_the_same_loader_as_the_app():
    # Given an environment naming a real provider
    environ = {"SMTP_HOST": "smtp.example.com", "SMTP_PORT": "587", "SMTP_SECURITY": "STARTTLS",
               "SMTP_USERNAME": "apikey", "SMTP_PASSWORD": "s3cret", "MAIL_FROM": "Shop <shop@example.com>",
               "MAIL_RATE_LIMIT": "30/m"}
    # When the mail settings are read
    settings = mail_settings(config.load(environ=environ))
    # Then they are parsed, and the password never shows in their repr
    assert (settings.host, settings.port, settings.security) == ("smtp.example.com", 587, "starttls")
    assert (settings.sender_address, settings.sender_domain, settings.rate_limit) == (
        "shop@example.com", "example.com", "30/m")
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [({"SMTP_SECURITY": "tls"}, "SMTP_SECURITY"), ({"SMTP_PORT": "0"}, "SMTP_PORT"), ({"SMTP_PORT": "x"}, "SMTP_PORT")],
)
def test_bad_smtp_settings_are_refused_at_start(environ, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ=environ)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectionRefusedError(111, "Connection refused"), TemporaryDeliveryError),
        (TimeoutError("timed out"), TemporaryDeliveryError),
        (smtplib.SMTPServerDisconnected("gone"), TemporaryDeliveryError),
        (smtplib.SMTPConnectError(421, b"too busy"), TemporaryDeliveryError),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), PermanentDeliveryError),
        (smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no such user")}), PermanentDeliveryError),
        (smtplib.SMTPRecipientsRefused({"a@example.com": (450, b"mailbox busy")}), TemporaryDeliveryError),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), PermanentDeliveryError),
    ],
)
def test_smtp_failures_are_temporary_or_permanent(exc, kind):
    assert type(translate(exc, "connecting")) is kind


def test_the_catcher_keeps_what_it_receives_for_the_mail_page(redis_conn):
    # Given a catcher storing into Redis, as `python -m app.mail.catcher` does
    from app.embedded_redis import free_port

    def keep(content: bytes, sender: str, rcpts: list[str]) -> None:
        mailbox.store(redis_conn, mailbox.parse(content, sender, rcpts))

    port = free_port()
    catcher = start_catcher(keep, port=port)
    try:
        # When two messages are sent to it
        for subject in ("First", "Second – ünïcode"):
            message = build_message("jobs@localhost", ["ada@example.com"], subject, "Body of " + subject)
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                smtp.send_message(message)
    finally:
        catcher.stop()
    # Then the mailbox has both, newest first, decoded
    caught = mailbox.recent(redis_conn)
    assert [m["subject"] for m in caught] == ["Second – ünïcode", "First"]
    assert caught[0]["body"] == "Body of Second – ünïcode\n" and caught[0]["rcpt_tos"] == ["ada@example.com"]


def test_an_email_from_the_form_is_delivered_by_a_worker_and_shown_on_the_mail_page(client, mail_catcher, mail_worker):
    # Given a worker delivering to the development mail catcher
    mail_worker(SMTP_PORT=str(mail_catcher))
    # When the email form is submitted
    response = client.post("/tasks/email", data={"to": "ada@example.com", "subject": "From the form", "body": "Hi Ada"})
    task_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    # Then the task succeeds and /mail shows the message
    wait_for(lambda: client.get(f"/api/tasks/{task_id}").json["state"] == "SUCCESS", timeout=20)
    page = client.get("/mail").get_data(as_text=True)
    assert "From the form" in page and "Hi Ada" in page and f"&lt;{task_id}@localhost&gt;" in page


def test_the_mail_page_shows_caught_mail_newest_first_and_escaped(client, redis_conn):
    # Given two caught messages, one trying to smuggle in HTML
    for subject, body in (("Older", "plain"), ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")):
        content = build_message("jobs@localhost", ["ada@example.com"], subject, body).as_bytes()
        mailbox.store(redis_conn, mailbox.parse(content, "jobs@localhost", ["ada@example.com"]))
    # When /mail is opened
    page = client.get("/mail").get_data(as_text=True)
    # Then the newest comes first, and nothing is rendered as HTML
    assert page.index("&lt;script&gt;") < page.index("Older")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_mail_page_exists_only_in_development(make_app, redis_url, redis_conn):
    production = make_app(redis_url, APP_ENV="production", SECRET_KEY="k" * 32, DASHBOARD_USERNAME="admin",
                          DASHBOARD_PASSWORD="pw")
    assert production.test_client().get("/mail").status_code == 404


def test_the_navigation_links_the_mail_page_where_it_exists(make_app, redis_url, redis_conn):
    development = make_app(redis_url).test_client().get("/").get_data(as_text=True)
    assert 'href="/mail">Mail</a>' in development
    production = make_app(redis_url, APP_ENV="production", SECRET_KEY="k" * 32, DASHBOARD_USERNAME="admin",
                          DASHBOARD_PASSWORD="pw").test_client()
    page = production.get("/", headers={"Authorization": "Basic YWRtaW46cHc="}).get_data(as_text=True)
    assert "New task" in page and 'href="/mail"' not in page


AUDIT_SUBJECT = ("=?utf-8?q?x=0D=0AReply-To:_a@evil.example=0D=0AContent-Type:_text/html=0D=0A=0D=0A"
                 "<h1>x</h1>?=")


def test_the_builder_checks_the_serialised_headers_even_if_every_check_before_it_let_the_subject_through(
        monkeypatch):
    # Given checks that let everything through, as a runtime whose email package decodes differently might
    import app.mail.message as message_module

    monkeypatch.setattr(message_module, "is_safe_header_value", lambda value, **options: True)
    # When the audit's subject is built into a message, Then the serialised headers give it away
    with pytest.raises(InvalidMessage, match="serialised headers would be .*reply-to"):
        build_message("jobs@localhost", ["ada@example.com"], AUDIT_SUBJECT, "body")


def test_the_builder_refuses_a_recipient_that_would_read_back_as_another_address(monkeypatch):
    # Given an address check that lets an encoded-word local part through
    import app.mail.message as message_module

    monkeypatch.setattr(message_module, "normalize_address", lambda address: address)
    # When it is built into a message, Then the To header would read differently, and the builder says so
    with pytest.raises(InvalidMessage, match="Subject or To would read differently"):
        build_message("jobs@localhost", ["=?utf-8?q?victim?=@example.com"], "Hi", "body")


def test_the_wire_check_refuses_any_header_we_did_not_set():
    # Given a built message to which someone added a header later
    message = build_message("jobs@localhost", ["ada@example.com"], "Hi", "body")
    message["Bcc"] = "victim@example.com"
    # When it is serialised for the wire, Then it is refused
    from app.mail.message import wire_bytes

    with pytest.raises(InvalidMessage, match="bcc"):
        wire_bytes(message)


@pytest.mark.parametrize(
    ("subject", "why"),
    [
        (AUDIT_SUBJECT, "encoded-words are decoded"),
        ("=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXhhbXBsZS5jb20=?=", "encoded-words are decoded"),
        ("=?utf-16?b?AA0ACg==?=", "encoded-words are decoded"),  # CR LF in another charset
        ("=?x-unknown?q?a=0Ab?=", "encoded-words are decoded"),  # an unknown charset still decodes its ASCII
        ("=?utf-8?q?a=1Cb?=", "encoded-words are decoded"),  # FS, a line separator to str.splitlines
        ("x\ud800", "lone surrogate"),
    ],
)
def test_a_subject_is_judged_by_what_it_decodes_to(subject, why):
    clean, errors = validate_email_request({**VALID, "subject": subject})
    assert list(errors) == ["subject"] and why in errors["subject"]


@pytest.mark.parametrize("subject", ["=?utf-8?q?Gr=C3=BC=C3=9Fe?=", "Price =?? ok ?=", "a = b? yes", "Grüße – 東京"])
def test_subjects_that_decode_to_one_line_of_text_are_accepted(subject):
    clean, errors = validate_email_request({**VALID, "subject": subject})
    assert errors == {} and clean["subject"] == subject
