"""The cheaper per-request paths of issue 19 keep what they replaced: access log lines, sessions, headers."""

from __future__ import annotations

import datetime
import io
import logging

import pytest
from flask import Flask, Response
from flask.sessions import SecureCookieSessionInterface
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.instrument.statsd import Statsd

from app.web import security
from app.web.accesslog import AccessLogger


class _Request:
    headers = [("HOST", "127.0.0.1:8000"), ("CONTENT-TYPE", "application/json"), ("X-FORWARDED-FOR", "10.0.0.9")]


class _Response:
    status = "202 ACCEPTED"
    sent = 80
    headers = [("Content-Type", "application/json"), ("Location", "/api/tasks/abc")]


ENVIRON = {
    "REQUEST_METHOD": "POST", "RAW_URI": '/api/tasks/ping?q="x"', "PATH_INFO": "/api/tasks/ping",
    "QUERY_STRING": 'q="x"', "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
    "HTTP_USER_AGENT": 'curl "8"', "HTTP_REFERER": "http://example.test/", "HTTP_AUTHORIZATION": "Basic dXNlcjpwdw==",
    "wsgi.url_scheme": "http", "SCRIPT_NAME": "/prefix",
}


def _line(logger_class: type[Logger], access_log_format: str | None) -> str:
    cfg = Config()
    cfg.set("accesslog", "-")
    if access_log_format is not None:
        cfg.set("access_log_format", access_log_format)
    logger = logger_class(cfg)
    logger.now = lambda: "[01/Dec/2026:20:00:00 +0000]"  # the same second for both
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.access_log.handlers = [handler]
    logger.access(_Response, _Request, dict(ENVIRON), datetime.timedelta(microseconds=1234))
    return stream.getvalue()


@pytest.mark.parametrize("access_log_format", [
    None,  # gunicorn's default, the one gunicorn.conf.py uses
    '%(h)s %(u)s %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(T)s %(D)s %(M)s %(L)s %(p)s "%(a)s"',
    "%(h)s %({x-forwarded-for}i)s %({location}o)s %({script_name}e)s %({missing}i)s",  # gunicorn's full atoms
])
def test_the_access_log_line_is_gunicorns_own(access_log_format):
    line = _line(AccessLogger, access_log_format)
    assert line == _line(Logger, access_log_format)
    assert line.strip() and "-" != line.strip()


def test_with_a_statsd_host_the_cheaper_logger_still_sends_gunicorns_metrics():
    # gunicorn picks its statsd logger only when logger_class is its default: ours must do it
    cfg = Config()
    cfg.set("statsd_host", "127.0.0.1:8125")
    logger = AccessLogger(cfg)
    assert isinstance(logger, Statsd) and isinstance(logger, AccessLogger)
    assert not isinstance(AccessLogger(Config()), Statsd)


def test_the_gunicorn_configuration_uses_the_cheaper_logger_and_keeps_the_access_log():
    namespace: dict = {}
    exec(compile(open("gunicorn.conf.py").read(), "gunicorn.conf.py", "exec"), namespace)
    assert namespace["logger_class"] == "app.web.accesslog.AccessLogger"
    assert namespace["accesslog"] == "-"


def test_sessions_signed_by_flasks_own_interface_are_read_and_a_new_key_is_honoured():
    app = Flask(__name__)
    app.secret_key = "first-key"
    app.config["SECRET_KEY_FALLBACKS"] = []
    ours = security.SessionInterface()
    cookie = SecureCookieSessionInterface().get_signing_serializer(app).dumps({"csrf_token": "t"})
    assert ours.get_signing_serializer(app).loads(cookie) == {"csrf_token": "t"}
    assert ours.get_signing_serializer(app) is ours.get_signing_serializer(app)  # built once

    app.secret_key = "second-key"
    with pytest.raises(Exception, match="Signature"):
        ours.get_signing_serializer(app).loads(cookie)
    app.config["SECRET_KEY_FALLBACKS"] = ["first-key"]
    assert ours.get_signing_serializer(app).loads(cookie) == {"csrf_token": "t"}
    app.secret_key = None
    assert ours.get_signing_serializer(app) is None


def test_a_header_already_on_the_response_is_kept_whatever_its_case():
    response = Response("{}", headers={"content-security-policy": "default-src 'none'"})
    security.add_security_headers(response)
    assert response.headers.getlist("Content-Security-Policy") == ["default-src 'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
