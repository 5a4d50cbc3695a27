"""The web app under real gunicorn with the production configuration (gunicorn.conf.py), for attack tests.

``serve(redis_url, log_dir, **environment)`` starts ``gunicorn -c gunicorn.conf.py`` on a free
loopback port in production mode, waits for /healthz and yields a :class:`Gunicorn`; it stops
the server (and its workers, in their own session) at the end.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"

USERNAME, PASSWORD = "ops", "correct horse battery"
API_TOKEN = "test-token-0123456789abcdef"
PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "test-secret-key-0123456789",
    "DASHBOARD_USERNAME": USERNAME,
    "DASHBOARD_PASSWORD": PASSWORD,
    "API_TOKENS": API_TOKEN,
}
#: The same, as create_app's test_config takes them (API_TOKENS parsed, as from the environment).
PRODUCTION_SETTINGS = {**PRODUCTION, "API_TOKENS": (API_TOKEN,)}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()}
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


@dataclass
class Gunicorn:
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None,
                timeout: float = 10.0, source: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request on a fresh connection: ``(status, headers, body)``; repeated headers are joined.

        ``source`` is the client's own loopback address (e.g. "127.0.0.2"), to play another client.
        """
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                                source_address=(source, 0) if source else None)
        try:
            all_headers = dict(headers or {})
            data = None
            if body is not None:
                data = json.dumps(body)
                all_headers["Content-Type"] = "application/json"
            connection.request(method, path, data, all_headers)
            response = connection.getresponse()
            merged: dict[str, str] = {}
            for name, value in response.getheaders():  # a repeated header (WWW-Authenticate) joins with ", "
                merged[name] = f"{merged[name]}, {value}" if name in merged else value
            return response.status, merged, response.read()
        finally:
            connection.close()


def _wait_healthy(server: Gunicorn, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log.read_text()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if server.request("GET", "/healthz", timeout=2)[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not become healthy:\n{server.log.read_text()}")


@contextlib.contextmanager
def serve(redis_url: str, log_dir: Path, **environment: str) -> Iterator[Gunicorn]:
    """Run ``gunicorn -c gunicorn.conf.py`` in production mode on ``redis_url``; extra settings as keywords."""
    port = free_port()
    log = log_dir / f"gunicorn-{port}.log"
    env = {**os.environ, **PRODUCTION, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), **environment}
    # Only the bind differs from production: a free loopback port instead of 0.0.0.0:8000.
    process = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}"], cwd=ROOT,
                               env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    server = Gunicorn(port, process, log)
    try:
        _wait_healthy(server, time.monotonic() + 60)
        yield server
    finally:
        process.send_signal(signal.SIGINT)  # a quick shutdown: open streams need not end first
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
