"""What ``make run`` runs: Redis (given or embedded), one worker and the web app, in one foreground log.

    python -m app.launcher

* ``REDIS_URL`` set: that server is used as is. Unset: an embedded Valkey server is started on a
  free port of 127.0.0.1 (a new one each run, so a stale server or another Redis never clashes),
  with its pid file and log under ``VAR_DIR`` (``var/``), and its URL is exported to the children.
* ``SMTP_HOST`` set: email goes to that server. Unset: a mail catcher (``python -m app.mail.catcher``)
  is started on a free port of 127.0.0.1 and the worker delivers to it; the web app shows its mail at /mail.
* The worker (``python worker.py``) and the web app (``flask run`` on 127.0.0.1:``PORT``) each run
  in their own session: the terminal's Ctrl-C reaches only the launcher, which then sends exactly
  one SIGTERM to each, so the worker makes a warm shutdown (finishes its current job) instead of
  the cold one that a second signal would trigger.
* SIGINT or SIGTERM stops everything: web and worker first, then the embedded Redis, by its pid.
  A second signal while waiting forces the worker (cold shutdown), and ``STOP_TIMEOUT`` seconds
  later anything still alive is killed. If any child dies on its own, the rest is stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from app import config
from app.celery_compat.redaction import redact_url
from app.embedded_redis import EmbeddedRedis, EmbeddedRedisError, free_port, is_redis_server, pid_alive

#: Seconds to wait for the worker's warm shutdown before killing what is left.
STOP_TIMEOUT = 60.0

LABEL_WIDTH = 6


class Launcher:
    """Starts and supervises the processes of a development system; see the module docstring."""

    def __init__(self, settings: dict, python: str = sys.executable, out: IO[str] = sys.stdout) -> None:
        self.settings = settings
        self.python = python
        self.out = out
        self.var_dir = Path(settings["VAR_DIR"])
        self.lockfile = self.var_dir / "launcher.pid"
        self.redis: EmbeddedRedis | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stop_requested = threading.Event()
        self.signals_received = 0
        self._write_lock = threading.Lock()
        self._pumps: list[threading.Thread] = []

    # -- output -----------------------------------------------------------------------------
    def log(self, label: str, line: str) -> None:
        """Write one prefixed line to the combined log."""
        with self._write_lock:
            # Children's lines too: whatever quotes a URL, its password is masked here.
            self.out.write(f"{label:<{LABEL_WIDTH}} | {redact_url(line)}\n")
            self.out.flush()

    def _pump(self, label: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.log(label, raw.decode(errors="replace").rstrip())
        stream.close()

    # -- lifecycle --------------------------------------------------------------------------
    def run(self) -> int:
        """Start everything, wait for a signal or a dead child, stop everything; return the exit status."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        status = 0
        try:
            self._claim_var_dir()
            env = self._start_redis()
            self._start_mail_catcher(env)
            self._spawn("worker", [self.python, "worker.py"], env)
            self._spawn(
                "web",
                [self.python, "-m", "flask", "--app", "app", "run", "--host", "127.0.0.1", "--port",
                 str(self.settings["PORT"])],
                env,
            )  # fmt: skip
            port = self.settings["PORT"]
            self.log("launch", f"web app on http://127.0.0.1:{port}/ and the dashboard on /rq/ ; Ctrl-C stops")
            status = self._supervise()
        except (EmbeddedRedisError, OSError) as exc:
            self.log("launch", f"error: {exc}")
            status = 1
        finally:
            self._stop_all()
        return status

    def _claim_var_dir(self) -> None:
        # One launcher per VAR_DIR: a second one would stop the first one's Redis as "stale".
        self.var_dir.mkdir(parents=True, exist_ok=True)
        try:
            other = int(self.lockfile.read_text().strip())
        except (OSError, ValueError):
            other = None
        if other and other != os.getpid() and pid_alive(other):
            raise OSError(f"another launcher (pid {other}) is running with {self.var_dir}; stop it first")
        self.lockfile.write_text(f"{os.getpid()}\n")

    def _start_redis(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PORT=str(self.settings["PORT"]))
        # Not settings["REDIS_URL"]: that holds the default when the variable is unset.
        url = config.from_environ().get("REDIS_URL")
        if url:
            self.log("launch", f"Redis: using REDIS_URL={redact_url(url)} (not started by the launcher)")
            return env
        self.redis = EmbeddedRedis(self.var_dir)
        stale = self.redis.stop_stale()
        if stale:
            self.log("launch", f"stopped a leftover embedded Redis (pid {stale}) from an earlier run")
        self.redis.start()
        self.log(
            "launch",
            f"Redis: embedded {self.redis.version() or self.redis.binary.name} at {self.redis.url} "
            f"(pid {self.redis.pid}, log {self.redis.logfile}); REDIS_URL unset, so it is temporary",
        )
        env["REDIS_URL"] = self.redis.url
        return env

    def _start_mail_catcher(self, env: dict[str, str]) -> None:
        # Like REDIS_URL: the variable, not the setting, says whether the operator named a server.
        if config.from_environ().get("SMTP_HOST"):
            where = f"{self.settings['SMTP_HOST']}:{self.settings['SMTP_PORT']}"
            self.log("launch", f"mail: delivering to SMTP_HOST={where} ({self.settings['SMTP_SECURITY']})")
            return
        port = free_port()
        self._spawn("mail", [self.python, "-m", "app.mail.catcher", "--port", str(port)], env)
        # The catcher asks for no login, so credentials meant for a real server would only make logins fail.
        for name in ("SMTP_USERNAME", "SMTP_PASSWORD"):
            env.pop(name, None)
        env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_SECURITY="none")
        self.log("launch", f"mail: SMTP_HOST unset, so email is caught on 127.0.0.1:{port}, delivered nowhere, "
                           f"and shown on http://127.0.0.1:{self.settings['PORT']}/mail")

    def _spawn(self, label: str, command: Sequence[str], env: dict[str, str]) -> None:
        process = subprocess.Popen(
            command,
            cwd=config.PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # see the module docstring: signals come from the launcher only
        )
        self.children[label] = process
        pump = threading.Thread(target=self._pump, args=(label, process.stdout), daemon=True)
        pump.start()
        self._pumps.append(pump)
        self.log("launch", f"started {label} (pid {process.pid}): {' '.join(command)}")

    def _supervise(self) -> int:
        while not self.stop_requested.wait(0.2):
            for label, process in self.children.items():
                if process.poll() is not None:
                    self.log("launch", f"{label} exited with status {process.returncode}; stopping the rest")
                    return 1
            if self.redis is not None and self.redis.pid is None:
                self.log("launch", "the embedded Redis died; stopping the rest")
                return 1
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals_received += 1
        if self.signals_received == 1:
            self.log("launch", f"{signal.Signals(signum).name} received: stopping (again to force)")
            self.stop_requested.set()
        elif "worker" in self.children and self.children["worker"].poll() is None:
            # rq's second signal is its cold shutdown: the job in progress is abandoned.
            self.log("launch", "forcing the worker to stop now")
            _signal(self.children["worker"], signal.SIGTERM)

    def _stop_all(self) -> None:
        self.stop_requested.set()
        running = {label: p for label, p in self.children.items() if p.poll() is None}
        for process in running.values():
            _signal(process, signal.SIGTERM)
        if "worker" in running:
            self.log("launch", "waiting for the worker to finish its current job")
        deadline = time.monotonic() + STOP_TIMEOUT
        for label, process in self.children.items():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log("launch", f"{label} did not stop within {STOP_TIMEOUT:.0f} s; killing it")
                _signal(process, signal.SIGKILL)
                process.wait()
        for pump in self._pumps:
            pump.join(timeout=2)
        for label in running:
            code = self.children[label].returncode
            how = f"on {signal.Signals(-code).name}" if code < 0 else f"with exit status {code}"
            self.log("launch", f"{label} stopped {how}")
        if self.redis is not None:
            pid = self.redis.pid
            if pid is not None and is_redis_server(pid):
                try:
                    self.redis.stop()
                    self.log("launch", f"stopped the embedded Redis (pid {pid})")
                except EmbeddedRedisError as exc:
                    self.log("launch", f"error: {exc}")
        self.lockfile.unlink(missing_ok=True)
        self.log("launch", "all stopped")


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    # The child leads its own process group; signalling the group also reaches what it forked
    # (the rq work horse, flask's threads are in-process anyway).
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m app.launcher``; takes no arguments, only the environment."""
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        settings = config.load()
    except config.ConfigError as exc:
        print(f"launch | error: {exc}", file=sys.stderr)
        return 1
    return Launcher(settings).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
