"""The compatibility measure: Celery example programs print the same under real Celery and under the adapter.

Each module in ``tests/programs/`` is plain Celery code (``from celery import ...``) with tasks and a
``main()`` that submits them and prints only deterministic outcomes. A test runs one program twice,
each time in its own temporary directory and on its own freshly flushed Redis:

1. as written, with ``celery -A <prog> worker -P prefork -c 2`` (real Celery 5.7, a test dependency);
2. with its imports rewritten by :func:`rewrite_imports` (``from celery`` becomes
   ``from app.celery_compat``, ``import celery`` becomes ``import app.celery_compat as celery``),
   with ``python worker.py -A <prog> -P prefork -c 2`` (the default pool).

Both clients run ``python -c "import <prog>; <prog>.main()"`` while their worker is up, and their
stdouts must be identical; a failure shows the diff. The two runs go side by side (two threads, two
Redis servers) to keep the file's runtime down.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.support import ROOT, stop_workers, wait_for

PROGRAMS = Path(__file__).resolve().parent / "programs"
CELERY = Path(sys.executable).with_name("celery")
WORKER_START_TIMEOUT = 60
CLIENT_TIMEOUT = 180

#: Programs whose worker must consume more than the default queue (passed as ``-Q`` to both workers).
QUEUES = {"calling": "celery,reports", "routing": "celery,reports,bulk"}
#: Programs whose worker must also run the periodic task scheduler (``-B`` on both workers).
BEAT = {"periodic"}


def rewrite_imports(source: str) -> str:
    """Point a Celery program at the adapter: the only change a user makes, module for module.

    ``from celery import X`` -> ``from app.celery_compat import X``;
    ``from celery.result import X`` -> ``from app.celery_compat.result import X`` (likewise
    ``.exceptions``, ``.states``, ``.signals``); ``import celery`` -> ``import app.celery_compat as celery``.
    """
    source = re.sub(r"^(\s*)from celery(?=[.\s])", r"\1from app.celery_compat", source, flags=re.MULTILINE)
    source = re.sub(r"^(\s*)import celery\s*$", r"\1import app.celery_compat as celery", source, flags=re.MULTILINE)
    leftover = re.search(r"^\s*(from|import) celery\b.*$", source, flags=re.MULTILINE)
    assert leftover is None, f"rewrite_imports does not handle: {leftover.group(0)!r}"
    return source


@dataclass
class Run:
    """What one side printed, plus its worker's log for when something goes wrong."""

    stdout: str
    stderr: str
    returncode: int
    worker_log: str


def program_names() -> list[str]:
    return sorted(path.stem for path in PROGRAMS.glob("*.py") if not path.name.startswith("_"))


def celery_worker_answers(url: str) -> bool:
    """True once a real Celery worker answers a broadcast ping, so it also hears revokes from then on."""
    from celery import Celery

    probe = Celery("parity-probe", broker=url, backend=url, set_as_current=False)
    try:
        return bool(probe.control.ping(timeout=0.5))
    finally:
        probe.close()


def rq_workers_registered(url: str, count: int) -> Callable[[], bool]:
    from rq import Worker

    def registered() -> bool:
        connection = redis.Redis.from_url(url)
        try:
            return Worker.count(connection=connection) >= count
        finally:
            connection.close()

    return registered


def run_program(name: str, workdir: Path, server, adapter: bool) -> Run:
    """Run ``name`` with a worker of one kind on ``server`` (flushed first) and capture the client's output."""
    source = (PROGRAMS / f"{name}.py").read_text()
    workdir.mkdir()
    (workdir / f"{name}.py").write_text(rewrite_imports(source) if adapter else source)
    conn = server.client()
    conn.flushall()
    conn.close()
    pythonpath = os.pathsep.join([str(ROOT), str(workdir)] if adapter else [str(workdir)])
    env = {**os.environ, "REDIS_URL": server.url, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"}
    queues = ["-Q", QUEUES[name]] if name in QUEUES else []
    beat = ["-B"] if name in BEAT else []
    if adapter:
        command = [sys.executable, str(ROOT / "worker.py"), "-A", name, "-u", server.url, "-P", "prefork", "-c", "2",
                   "-l", "WARNING", *queues, *beat]
        ready = rq_workers_registered(server.url, 2)
    else:
        command = [str(CELERY), "-A", name, "worker", "-P", "prefork", "-c", "2", "--loglevel", "WARNING",
                   "--without-gossip", "--without-mingle", *queues, *beat]

        def ready() -> bool:
            return celery_worker_answers(server.url)

    log = workdir / "worker.log"
    with open(log, "wb") as log_file:
        worker = subprocess.Popen(command, cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        wait_for(lambda: worker.poll() is not None or ready(), WORKER_START_TIMEOUT, interval=0.1,
                 describe=lambda: f"{' '.join(command[:4])} not ready; worker log:\n{log.read_text()[-4000:]}")
        assert worker.poll() is None, f"worker exited early:\n{log.read_text()[-4000:]}"
        client = subprocess.run([sys.executable, "-c", f"import {name}; {name}.main()"], cwd=workdir, env=env,
                                capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    finally:
        stop_workers([worker])
    return Run(client.stdout, client.stderr, client.returncode, log.read_text())


@pytest.fixture(scope="module")
def two_servers(start_redis_server) -> Iterator[tuple]:
    """One Redis server for the Celery side and one for the adapter side, so the two runs can overlap."""
    yield start_redis_server(), start_redis_server()


@pytest.mark.parametrize("program", program_names())
def test_the_program_prints_the_same_under_real_celery_and_under_the_adapter(program, two_servers, tmp_path):
    # Given a Celery program, and the same program pointed at the adapter
    celery_server, adapter_server = two_servers
    # When each runs against its own worker
    with ThreadPoolExecutor(max_workers=2) as pool:
        celery_future = pool.submit(run_program, program, tmp_path / "celery", celery_server, False)
        adapter_future = pool.submit(run_program, program, tmp_path / "adapter", adapter_server, True)
        celery_run, adapter_run = celery_future.result(), adapter_future.result()
    # Then real Celery ran it cleanly (otherwise the program itself is wrong)
    assert celery_run.returncode == 0 and celery_run.stdout, (
        f"the program failed under real Celery:\n{celery_run.stderr}\n--- worker log ---\n{celery_run.worker_log}")
    # And the adapter printed exactly the same lines
    diff = "\n".join(difflib.unified_diff(celery_run.stdout.splitlines(), adapter_run.stdout.splitlines(),
                                          "real celery", "app.celery_compat", lineterm=""))
    assert adapter_run.stdout == celery_run.stdout and adapter_run.returncode == 0, (
        f"{diff}\n--- adapter client stderr ---\n{adapter_run.stderr[-4000:]}\n"
        f"--- adapter worker log ---\n{adapter_run.worker_log[-4000:]}")
