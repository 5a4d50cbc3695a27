"""The worker side: the ``python worker.py`` command, its pools, and the RQ adapter of tasks.

It imports the client side (:mod:`..app`) and the modules below both; nothing outside this
subpackage imports it, except the two fixed paths every queued job names
(:mod:`..execution` for the entry point, :mod:`..recovery` for the failure callback).

* :mod:`.cli`: the command (Celery's and RQ's flags), its pools and ``main``;
* :mod:`.job`: the entry point, reading the message and mapping the trace's outcome to RQ;
* :mod:`.lean`: the lean worker (prefork children and solo), :mod:`.classes`: RQ-based classes;
* :mod:`.pool`: the prefork supervisor; :mod:`.recovery`: a dead worker's tasks;
* :mod:`.guard`: :class:`TaskJob`, what a worker agrees to run from Redis.
"""

from __future__ import annotations

from .classes import HEARTBEAT_INTERVAL as HEARTBEAT_INTERVAL
from .classes import HEARTBEAT_TTL as HEARTBEAT_TTL
from .classes import ForkingWorker as ForkingWorker
from .classes import InProcessWorker as InProcessWorker
from .classes import Slot as Slot
from .classes import raise_terminated as raise_terminated
from .cli import MAINTENANCE_INTERVAL as MAINTENANCE_INTERVAL
from .cli import POOLS as POOLS
from .cli import WORKER_TTL as WORKER_TTL
from .cli import build_parser as build_parser
from .cli import load_app as load_app
from .cli import main as main
from .cli import make_worker as make_worker
from .cli import queue_names as queue_names
from .cli import rq_queues as rq_queues
from .cli import run_processes as run_processes
from .cli import run_worker as run_worker
from .guard import RefusedJob as RefusedJob
from .guard import TaskJob as TaskJob
from .lean import LeanWorker as LeanWorker
from .pool import Supervisor as Supervisor
from .pool import child_main as child_main

__all__ = [
    "main", "build_parser", "load_app", "queue_names", "rq_queues", "make_worker", "run_worker", "run_processes",
    "POOLS", "WORKER_TTL", "MAINTENANCE_INTERVAL", "HEARTBEAT_INTERVAL", "HEARTBEAT_TTL",
    "LeanWorker", "InProcessWorker", "ForkingWorker", "Slot", "Supervisor", "child_main", "raise_terminated",
    "TaskJob", "RefusedJob",
]
