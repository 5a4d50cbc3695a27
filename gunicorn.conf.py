"""gunicorn's configuration for production: the one place the server is set up.

Used by the Dockerfile, docker-compose.yml and the README's command, all the same way:
``gunicorn -c gunicorn.conf.py`` (any command-line option still wins, e.g. ``-b 127.0.0.1:9000``).
Workers and threads come from ``WEB_WORKERS`` and ``WEB_THREADS``, read by app/config.py like
every other setting, which also checks that live event streams can take at most half of a
process' threads (``EVENT_STREAMS_PER_WORKER``): streams never starve the pages or /healthz.
"""

from app import config as _config  # "config" itself is a gunicorn setting

_settings = {**_config.defaults(), **_config.from_environ()}

wsgi_app = "app:create_app()"
bind = ["0.0.0.0:8000"]
# Threads, not sync workers: a live task page holds its request for up to EVENT_STREAM_MAX_SECONDS,
# while idle keep-alive connections wait in the worker's poller without a thread.
worker_class = "gthread"
workers = int(_settings["WEB_WORKERS"])
threads = int(_settings["WEB_THREADS"])
# A worker that misses its heartbeat this long is restarted; streams do not block the heartbeat.
timeout = 30
# On shutdown, requests get this long to finish; open streams are then cut and their browsers reconnect.
graceful_timeout = 30
keepalive = 5
# One line per request on stdout, gunicorn's default format, for operators (docker logs, journald).
# Kept on although it costs CPU on every request: app.web.accesslog.AccessLogger writes the same
# line for about 18 us instead of gunicorn's 35 us (issue 19); without it, a deployment behind a
# proxy that logs requests anyway would save those too (set accesslog = None in a copy of this file).
accesslog = "-"
logger_class = "app.web.accesslog.AccessLogger"
