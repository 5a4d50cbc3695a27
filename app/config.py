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
    settings.update(from_environ(environ))
    settings.update(test_config or {})
    validate(settings)
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
