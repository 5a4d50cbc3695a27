"""``app.bugreport()``: what to paste into a bug report, as Celery's, with every secret masked."""

from __future__ import annotations

import platform
import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..redaction import redact_url

#: Celery's mask for a password in a URL, and for a setting whose name says it is a secret.
MASK = "********"
#: Celery's rule: settings whose names contain these hold secrets.
SECRET_NAME = re.compile(r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|DATABASE", re.IGNORECASE)


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "N/A"


def masked(key: str, value: Any) -> str:
    """A setting as the report prints it: URLs without passwords, secrets as stars."""
    if isinstance(value, str):
        return repr(MASK) if SECRET_NAME.search(key) and not key.endswith("_url") and "backend" not in key \
            else repr(redact_url(value, mask=MASK))
    return redact_url(repr(value), mask=MASK)


def bugreport(app: Any) -> str:
    """The adapter's and Python's versions, the platform, the broker and result store, the settings."""
    conf = app.conf
    results = redact_url(str(conf.get("result_backend") or app.broker_url), mask=MASK)
    lines = [
        # "celery:" names the API, not an installed Celery (there may be one, unused, beside us).
        f"software -> celery:app.celery_compat (Celery 5.7's API) rq:{_version('rq')} py:{platform.python_version()}",
        f"            redis:{_version('redis')}",
        f"platform -> system:{platform.system()} arch:{platform.architecture()[0]}",
        f"            kernel version:{platform.release()} imp:{platform.python_implementation()}",
        "loader   -> app.celery_compat (no loader: tasks are found by name, imported by module)",
        f"settings -> transport:redis results:{results}",
        "",
    ]
    lines += [f"{key}: {masked(key, conf[key])}" for key in sorted(conf)]
    return "\n".join(lines) + "\n"
