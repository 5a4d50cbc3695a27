"""gunicorn's access log, the same lines for less CPU: ``logger_class`` in gunicorn.conf.py.

gunicorn builds, for every request, a dictionary of every request header, response header and
WSGI environ entry (``{name}i``, ``{name}o``, ``{name}e`` atoms), then copies it to escape quotes,
only to print the nine fields of its default format. That was about 30 us of the ~1 ms a
``POST /api/tasks/ping`` costs the server (issue 19). This logger gives gunicorn only the fields
the format can name when the format names no header or environ entry (the default does not), so
the line is the same; a format that does (``access_log_format`` with ``{...}``) gets gunicorn's
full dictionary as before.
"""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any

from gunicorn import glogging
from gunicorn.instrument.statsd import Statsd

#: The environ entries gunicorn's own atoms read (``_get_user`` reads the Authorization header).
_ENVIRON_KEYS = ("REMOTE_ADDR", "REQUEST_METHOD", "RAW_URI", "SERVER_PROTOCOL", "PATH_INFO", "QUERY_STRING",
                 "HTTP_REFERER", "HTTP_USER_AGENT", "HTTP_AUTHORIZATION")


class AccessLogger(glogging.Logger):
    """gunicorn's logger; its access atoms leave out headers and environ when the format cannot use them."""

    def __new__(cls, cfg: Any) -> AccessLogger:
        # gunicorn switches to its statsd logger only when logger_class is its default one: with
        # --statsd-host set, this one must send the metrics too, or they would silently stop.
        if cls is AccessLogger and getattr(cfg, "statsd_host", None):
            return super().__new__(StatsdAccessLogger)
        return super().__new__(cls)

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any],
              request_time: datetime.timedelta) -> dict[str, Any]:
        if "{" in self.cfg.access_log_format:
            return super().atoms(resp, req, environ, request_time)
        few = {key: environ[key] for key in _ENVIRON_KEYS if key in environ}
        bare = SimpleNamespace(status=resp.status, sent=getattr(resp, "sent", None), headers=())
        return super().atoms(bare, (), few, request_time)


class StatsdAccessLogger(AccessLogger, Statsd):
    """The cheaper access log and gunicorn's statsd metrics (``--statsd-host``)."""
