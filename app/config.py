"""Configuration: every setting, its safe development default, and the one place that reads the environment.

``create_app`` layers :class:`Defaults`, then :func:`from_environ`, then its ``test_config``, and
finally calls :func:`validate`, which refuses to run in production with development secrets.
The launcher and the worker read the same settings through :func:`from_environ`, so an operator
sets each variable once, under the name other tools already use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

#: The project checkout; ``var/`` under it holds the embedded Redis' pid file, log and data.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEVELOPMENT = "development"
PRODUCTION = "production"

#: Stands in for a real secret in development only; :func:`validate` rejects it in production.
DEV_SECRET_KEY = "dev-only-insecure-secret-key"


class ConfigError(RuntimeError):
    """Raised when the environment describes a configuration that is unsafe or unreadable."""


class Defaults:
    """Settings that make a fresh checkout work on a laptop with nothing configured."""

    #: "development" or "production". Production demands real secrets and protects /rq.
    APP_ENV = DEVELOPMENT

    #: Signs sessions and CSRF tokens. Anyone who knows it can forge both, hence the production check.
    SECRET_KEY = DEV_SECRET_KEY

    #: Where the queue, the results and the workers' heartbeats live. The launcher replaces it with
    #: the embedded server's URL when it is unset; run alone, the app expects a local Redis.
    REDIS_URL = "redis://127.0.0.1:6379/0"

    #: Seconds to wait for Redis to connect or answer. Short, so that an outage turns into a 503
    #: within a few seconds instead of a request that hangs: a server that accepts connections but
    #: never answers costs about four times this (connection handshake and one retry, see app/redis.py).
    REDIS_SOCKET_TIMEOUT = 1.0

    #: Port of the web app started by ``make run`` (the launcher binds 127.0.0.1 only).
    PORT = 5000

    #: Basic-auth credentials for the dashboard at /rq. Unset in development, where /rq is open;
    #: required in production, where the dashboard can delete and requeue jobs.
    DASHBOARD_USERNAME: str | None = None
    DASHBOARD_PASSWORD: str | None = None

    #: Holds the embedded Redis' pid file, log and working directory.
    VAR_DIR = str(PROJECT_ROOT / "var")

    #: Queue the web app enqueues to and the worker listens on.
    QUEUE = "default"

    #: Redis Sentinel for failover: "host:port,host:port" of the sentinels and the master's name.
    #: When set, every part finds the current master through them and REDIS_URL only lends its
    #: database number and password.
    REDIS_SENTINELS: str | None = None
    REDIS_SENTINEL_MASTER = "mymaster"
    #: Submits (the API, the forms, .delay() in the web app and its worker) wait until this many
    #: replicas have the task (Redis WAIT), so an acknowledged task survives a failover; 0 = do not
    #: wait. Fewer replicas within REDIS_WAIT_TIMEOUT seconds is an error (a 503 for a submit).
    REDIS_WAIT_REPLICAS = 0
    REDIS_WAIT_TIMEOUT = 0.5

    #: /healthz says "degraded" (and pages show a banner) when tasks wait, workers are connected,
    #: yet none was taken for this many seconds: the stuck system that a ping cannot see.
    STUCK_AFTER_SECONDS = 120.0

    # --- input limits (issue 12): refused before any per-item work, so a huge request costs nothing ---
    #: Largest request body Flask reads, in bytes; larger ones get a 413 before any parsing. An email
    #: body may be 100 kB, which JSON escaping can inflate several times, so 1 MiB leaves room.
    MAX_CONTENT_LENGTH = 1024 * 1024
    #: Addresses one email may go to; each costs an SMTP transaction. More is a mailing list, not a task.
    MAIL_MAX_RECIPIENTS = 50
    #: Characters in a subject, as typed; mail clients cut long ones anyway.
    MAIL_MAX_SUBJECT_LENGTH = 200
    #: Bytes of an email's body in UTF-8; 100 kB of text is a long letter, not an attachment.
    MAIL_MAX_BODY_BYTES = 100 * 1024
    # --- end of input limits ---

    #: The mail server email tasks deliver to. The launcher replaces it with its own mail catcher
    #: when the variable is unset (the caught mail is shown at /mail); run alone, a worker expects
    #: one on 127.0.0.1:1025, e.g. ``python -m app.mail.catcher``.
    SMTP_HOST = "127.0.0.1"
    SMTP_PORT = 1025
    #: Credentials for servers that require a login. Never logged; set them only in the environment.
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: str | None = None
    #: "starttls" (port 587), "ssl" (implicit TLS, port 465) or "none". None is only for the catcher
    #: on loopback: anything else would send the password and the mail in clear text.
    SMTP_SECURITY = "none"
    #: Seconds to wait for the mail server to connect or answer, so a silent server is a retry, not a hang.
    SMTP_TIMEOUT = 10.0
    #: The sender of every email; its domain also names the Message-IDs.
    MAIL_FROM = "Background jobs <jobs@localhost>"
    #: At most this many messages per period for all workers together, like Celery's rate_limit:
    #: "30/m", "1/s", "500/h", "10/5s". Unset: no limit. Providers block senders that burst past theirs.
    MAIL_RATE_LIMIT: str | None = None
    #: Seconds before the first retry of a temporary failure; each retry waits twice as long (with jitter,
    #: between half and all of it), at most MAIL_RETRY_MAX. With 4 retries, 10 s rides out outages of 75 s.
    MAIL_RETRY_BASE = 10.0
    MAIL_RETRY_MAX = 300.0

    # --- web security: who may use the app, how much, and how the server holds up (README, Security) ---
    #: HTTP basic-auth credentials for the pages, the API and /metrics outside development. Unset,
    #: they are the dashboard's, so one admin account opens everything and the browser asks once.
    APP_USERNAME: str | None = None
    APP_PASSWORD: str | None = None
    #: Bearer tokens for programs calling the API ("Authorization: Bearer <token>"), comma-separated.
    #: Each also has its own submit rate limit. Outside development each must be 16+ characters.
    API_TOKENS: tuple[str, ...] = ()
    #: A bearer token that opens /metrics and nothing else: what Prometheus is given.
    METRICS_TOKEN: str | None = None
    #: True: /metrics needs no credentials at all (a scraper on a private network, nothing else).
    METRICS_PUBLIC = False
    #: Reverse proxies in front of the app whose X-Forwarded-For/-Proto to believe. 0 trusts none:
    #: anyone could otherwise pick their own address and dodge the rate limit.
    PROXY_COUNT = 0
    #: Submits per client (API token, else address) per period, as "60/m", "10/s", "500/h", "10/5s";
    #: "off" for none. Unset: off in development, PRODUCTION_DEFAULTS in production.
    SUBMIT_RATE_LIMIT: str | None = None
    #: Refuse submits while this many tasks wait in the queue, whoever sends them; 0 for no bound.
    MAX_QUEUED_TASKS = 0
    #: gunicorn.conf.py: worker processes and threads per process (every request, stream or not, takes one).
    WEB_WORKERS = 2
    WEB_THREADS = 8
    #: Live task streams one process serves at once; more get 503 and the page polls instead. At most
    #: half of WEB_THREADS, so streams can never take every thread and starve /healthz and the pages.
    EVENT_STREAMS_PER_WORKER = 4
    #: A stream ends after this long even if its task has not, freeing its thread; the browser reconnects.
    EVENT_STREAM_MAX_SECONDS = 60
    # --- end of web security ---


#: Where development's defaults would be unsafe in production; the environment still wins over these.
PRODUCTION_DEFAULTS: dict[str, Any] = {"SUBMIT_RATE_LIMIT": "60/m", "MAX_QUEUED_TASKS": 10_000}


def _tokens(raw: str) -> tuple[str, ...]:
    return tuple(token.strip() for token in raw.split(",") if token.strip())


def boolean(raw: str) -> bool:
    """Parse 1/0, true/false, yes/no, on/off; raise :class:`ValueError` otherwise."""
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


#: Environment variable -> (config key, parser). The parser turns the string into the config's type.
_ENVIRONMENT: dict[str, tuple[str, Any]] = {
    "APP_ENV": ("APP_ENV", str),
    "SECRET_KEY": ("SECRET_KEY", str),
    "REDIS_URL": ("REDIS_URL", str),
    "REDIS_SOCKET_TIMEOUT": ("REDIS_SOCKET_TIMEOUT", float),
    "PORT": ("PORT", int),
    "DASHBOARD_USERNAME": ("DASHBOARD_USERNAME", str),
    "DASHBOARD_PASSWORD": ("DASHBOARD_PASSWORD", str),
    "VAR_DIR": ("VAR_DIR", str),
    "REDIS_SENTINELS": ("REDIS_SENTINELS", str),
    "REDIS_SENTINEL_MASTER": ("REDIS_SENTINEL_MASTER", str),
    "REDIS_WAIT_REPLICAS": ("REDIS_WAIT_REPLICAS", int),
    "REDIS_WAIT_TIMEOUT": ("REDIS_WAIT_TIMEOUT", float),
    "STUCK_AFTER_SECONDS": ("STUCK_AFTER_SECONDS", float),
    # input limits (issue 12)
    "MAX_CONTENT_LENGTH": ("MAX_CONTENT_LENGTH", int),
    "MAIL_MAX_RECIPIENTS": ("MAIL_MAX_RECIPIENTS", int),
    "MAIL_MAX_SUBJECT_LENGTH": ("MAIL_MAX_SUBJECT_LENGTH", int),
    "MAIL_MAX_BODY_BYTES": ("MAIL_MAX_BODY_BYTES", int),
    "SMTP_HOST": ("SMTP_HOST", str),
    "SMTP_PORT": ("SMTP_PORT", int),
    "SMTP_USERNAME": ("SMTP_USERNAME", str),
    "SMTP_PASSWORD": ("SMTP_PASSWORD", str),
    "SMTP_SECURITY": ("SMTP_SECURITY", str.lower),
    "SMTP_TIMEOUT": ("SMTP_TIMEOUT", float),
    "MAIL_FROM": ("MAIL_FROM", str),
    "MAIL_RATE_LIMIT": ("MAIL_RATE_LIMIT", str),
    "MAIL_RETRY_BASE": ("MAIL_RETRY_BASE", float),
    "MAIL_RETRY_MAX": ("MAIL_RETRY_MAX", float),
    # web security
    "APP_USERNAME": ("APP_USERNAME", str),
    "APP_PASSWORD": ("APP_PASSWORD", str),
    "API_TOKENS": ("API_TOKENS", _tokens),
    "METRICS_TOKEN": ("METRICS_TOKEN", str),
    "METRICS_PUBLIC": ("METRICS_PUBLIC", boolean),
    "PROXY_COUNT": ("PROXY_COUNT", int),
    "SUBMIT_RATE_LIMIT": ("SUBMIT_RATE_LIMIT", str),
    "MAX_QUEUED_TASKS": ("MAX_QUEUED_TASKS", int),
    "WEB_WORKERS": ("WEB_WORKERS", int),
    "WEB_THREADS": ("WEB_THREADS", int),
    "EVENT_STREAMS_PER_WORKER": ("EVENT_STREAMS_PER_WORKER", int),
    "EVENT_STREAM_MAX_SECONDS": ("EVENT_STREAM_MAX_SECONDS", float),
}


def defaults() -> dict[str, Any]:
    """Return the :class:`Defaults` as a plain dict."""
    return {key: value for key, value in vars(Defaults).items() if key.isupper()}


def from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the settings the environment sets, parsed to their types (empty values are ignored).

    ``FLASK_ENV`` is accepted for ``APP_ENV`` because Flask users still set it by habit.
    """
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    if environ.get("FLASK_ENV"):
        settings["APP_ENV"] = environ["FLASK_ENV"]
    for variable, (key, parse) in _ENVIRONMENT.items():
        raw = environ.get(variable, "").strip()
        if not raw:
            continue
        try:
            settings[key] = parse(raw)
        except ValueError:
            raise ConfigError(f"{variable}={raw!r} is not a valid {parse.__name__}") from None
    return settings


def load(test_config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the defaults overlaid by the environment, then by ``test_config``, validated."""
    settings = defaults()
    overrides = {**from_environ(environ), **(test_config or {})}
    if overrides.get("APP_ENV") == PRODUCTION:
        settings.update(PRODUCTION_DEFAULTS)
    settings.update(overrides)
    validate(settings)
    validate_web_security(settings)
    return settings


def validate(settings: MutableMapping[str, Any]) -> None:
    """Raise :class:`ConfigError` if ``settings`` are inconsistent or unsafe for their environment."""
    env = settings.get("APP_ENV")
    if env not in (DEVELOPMENT, PRODUCTION):
        raise ConfigError(f"APP_ENV must be {DEVELOPMENT!r} or {PRODUCTION!r}, not {env!r}")
    if not 0 < int(settings["PORT"]) < 65536:
        raise ConfigError(f"PORT must be between 1 and 65535, not {settings['PORT']}")
    if float(settings["REDIS_SOCKET_TIMEOUT"]) <= 0:
        raise ConfigError("REDIS_SOCKET_TIMEOUT must be a positive number of seconds")
    if settings.get("SMTP_SECURITY", "none") not in ("starttls", "ssl", "none"):
        raise ConfigError(f"SMTP_SECURITY must be starttls, ssl or none, not {settings['SMTP_SECURITY']!r}")
    if not 0 < int(settings.get("SMTP_PORT", 1025)) < 65536:
        raise ConfigError(f"SMTP_PORT must be between 1 and 65535, not {settings['SMTP_PORT']}")
    if settings.get("REDIS_SENTINELS"):
        sentinel_hosts(settings["REDIS_SENTINELS"])  # raises ConfigError when malformed
    _validate_replica_wait(settings)
    if float(settings.get("STUCK_AFTER_SECONDS", 1)) <= 0:
        raise ConfigError("STUCK_AFTER_SECONDS must be a positive number of seconds")
    _validate_limits(settings)
    if env != PRODUCTION:
        return
    missing = [
        name
        for name in ("SECRET_KEY", "DASHBOARD_USERNAME", "DASHBOARD_PASSWORD")
        if not settings.get(name) or (name == "SECRET_KEY" and settings[name] == DEV_SECRET_KEY)
    ]
    if missing:
        raise ConfigError(f"refusing to start in production without {', '.join(missing)} set in the environment")


def _validate_limits(settings: Mapping[str, Any]) -> None:
    # input limits (issue 12): a zero or negative limit would refuse everything, or nothing.
    for name in ("MAX_CONTENT_LENGTH", "MAIL_MAX_RECIPIENTS", "MAIL_MAX_SUBJECT_LENGTH", "MAIL_MAX_BODY_BYTES"):
        if settings.get(name) is not None and int(settings[name]) <= 0:
            raise ConfigError(f"{name} must be a positive whole number, not {settings[name]}")


def _validate_replica_wait(settings: MutableMapping[str, Any]) -> None:
    replicas = int(settings.get("REDIS_WAIT_REPLICAS") or 0)
    if replicas < 0:
        raise ConfigError("REDIS_WAIT_REPLICAS must be 0 (do not wait) or a number of replicas")
    # WAIT blocks on the socket: past the socket timeout, a slow replica would look like a dead master.
    if replicas and not 0 < float(settings.get("REDIS_WAIT_TIMEOUT", 0.5)) < float(settings["REDIS_SOCKET_TIMEOUT"]):
        raise ConfigError("REDIS_WAIT_TIMEOUT must be positive and shorter than REDIS_SOCKET_TIMEOUT")


def sentinel_hosts(value: str) -> list[tuple[str, int]]:
    """Parse ``REDIS_SENTINELS`` ("host:port,host:port") into addresses, or raise :class:`ConfigError`."""
    hosts = []
    for entry in (part.strip() for part in value.split(",")):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"REDIS_SENTINELS entries must be host:port, not {entry!r}")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def broker_url(settings: Mapping[str, Any]) -> str:
    """The URL the task queue uses: ``REDIS_URL``, or Celery's ``sentinel://`` form when Sentinel is set."""
    if not settings.get("REDIS_SENTINELS"):
        return settings["REDIS_URL"]
    from urllib.parse import urlsplit

    base = urlsplit(settings["REDIS_URL"])
    auth = f":{base.password}@" if base.password else ""
    db = base.path or "/0"
    return ";".join(f"sentinel://{auth}{host}:{port}{db}" for host, port in sentinel_hosts(settings["REDIS_SENTINELS"]))


def page_credentials(settings: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (username, password) that open the pages and the API: APP_*, else the dashboard's; None if unset."""
    if settings.get("APP_USERNAME") or settings.get("APP_PASSWORD"):
        pair = (settings.get("APP_USERNAME"), settings.get("APP_PASSWORD"))
    else:
        pair = (settings.get("DASHBOARD_USERNAME"), settings.get("DASHBOARD_PASSWORD"))
    return (pair[0], pair[1]) if pair[0] and pair[1] else None


def validate_web_security(settings: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for authentication, rate-limit or server settings that cannot work.

    Run by :func:`load` after :func:`validate`, so that a missing SECRET_KEY is reported first.
    """
    from app.mail.ratelimit import RateLimit

    threads, streams = int(settings.get("WEB_THREADS", 8)), int(settings.get("EVENT_STREAMS_PER_WORKER", 4))
    if int(settings.get("WEB_WORKERS", 2)) < 1 or threads < 2:
        raise ConfigError("WEB_WORKERS must be at least 1 and WEB_THREADS at least 2")
    if not 0 <= streams <= threads // 2:
        raise ConfigError(f"EVENT_STREAMS_PER_WORKER must be between 0 and half of WEB_THREADS ({threads // 2})")
    if float(settings.get("EVENT_STREAM_MAX_SECONDS", 60)) <= 0:
        raise ConfigError("EVENT_STREAM_MAX_SECONDS must be a positive number of seconds")
    if int(settings.get("MAX_QUEUED_TASKS", 0)) < 0 or int(settings.get("PROXY_COUNT", 0)) < 0:
        raise ConfigError("MAX_QUEUED_TASKS and PROXY_COUNT must not be negative")
    rate = settings.get("SUBMIT_RATE_LIMIT")
    if rate and rate != "off":
        try:
            RateLimit.parse(rate)
        except ValueError as exc:
            raise ConfigError(f"SUBMIT_RATE_LIMIT: {exc}") from None
    if settings.get("APP_ENV") == PRODUCTION:
        _validate_production_access(settings)


def _validate_production_access(settings: Mapping[str, Any]) -> None:
    if bool(settings.get("APP_USERNAME")) != bool(settings.get("APP_PASSWORD")):
        raise ConfigError("set both APP_USERNAME and APP_PASSWORD, or neither (then the dashboard's are used)")
    if page_credentials(settings) is None:
        raise ConfigError("refusing to start in production without APP_USERNAME and APP_PASSWORD "
                          "(or DASHBOARD_USERNAME and DASHBOARD_PASSWORD) set in the environment")
    if any(len(token) < 16 for token in settings.get("API_TOKENS") or ()):
        raise ConfigError("every API token in API_TOKENS must be at least 16 characters long")
    if settings.get("METRICS_TOKEN") is not None and len(settings["METRICS_TOKEN"]) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters long")
