"""Helpers of the drop-in tests (issue 16): Celery projects written to disk, commands run to completion."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import redis

from tests.support import ROOT, wait_for, wait_until

#: Test programs of the drop-in tests (a directory on the workers' path, not a package).
PROGRAMS = ROOT / "tests" / "programs" / "dropin"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: source}`` under ``root`` (dedented), creating directories; return ``root``."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
    return root


def run(args: list[str], cwd: Path = ROOT, timeout: float = 90, input: str | None = None,
        **env: str) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` to completion with this repository (and ``PYTHONPATH`` extras) importable.

    ``input`` is what is typed at it; without it, its stdin is empty (never the test's terminal).
    """
    path = os.pathsep.join(filter(None, (str(ROOT), env.pop("PYTHONPATH", ""))))
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          input=input or "", env={**os.environ, **env, "PYTHONPATH": path})


def pip_install_adapter(target: Path) -> Path:
    """``pip install`` the adapter distribution (pyproject.toml) into ``target``; return its ``bin``.

    From a copy of the files the distribution needs, so that the build's leftovers (build/) never
    land in the repository. Into a target directory rather than a new virtualenv: the dependencies
    (rq, redis) are the project's own, already installed, and nothing is fetched but the build backend.
    """
    source = target.parent / "adapter-source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "app" / "celery_compat", source / "app" / "celery_compat",
                    ignore=shutil.ignore_patterns("__pycache__"))
    completed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                                str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return target / "bin"


def start_cli_worker(args: list[str], env: dict[str, str], log_path: Path, connection: redis.Redis,
                     module: str = "app.celery_compat", cwd: Path = ROOT) -> subprocess.Popen:
    """Start ``python -m <module> ARGS`` (a ``worker`` command) and return once its worker registered."""
    from rq import Worker

    before = Worker.count(connection=connection)
    path = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH", ""))))
    process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env={**os.environ, **env,
                               "PYTHONPATH": path}, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    wait_for(lambda: Worker.count(connection=connection) > before or process.poll() is not None, timeout=60)
    assert process.poll() is None, log_path.read_text()
    settle(log_path)
    return process


def settle(log_path: Path) -> None:
    """Wait (up to 30 s, best effort) until a started worker finished RQ's start-up.

    A SIGTERM in the middle of it can leave a solo worker hanging until stop_workers kills it
    20 s later; a test stopping its worker soon after the start would pay that.
    """
    wait_until(lambda: b"cleaning registries" in log_path.read_bytes(), timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_json(url: str, form: dict[str, object] | None = None) -> dict:
    """GET ``url`` (POST ``form`` when given) and decode its JSON answer."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    with urllib.request.urlopen(url, data=data, timeout=10) as answer:
        return json.loads(answer.read())


def answers_until(url: str, done: Callable[[dict], bool], timeout: float) -> list[dict]:
    """Poll ``url`` as a page's JavaScript would; return each answer that differs from the previous one."""
    answers: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = http_json(url)
        if not answers or answer != answers[-1]:
            answers.append(answer)
        if done(answer):
            break
        time.sleep(0.05)
    return answers
