"""The commands about one task: ``call <task>`` (send it; ``--wait`` follows it) and ``result <id>``."""

from __future__ import annotations

import argparse
import json
import pprint
import sys
import time
from datetime import datetime
from typing import Any, TextIO

from .. import states
from ..app.base import Celery
from ..exceptions import TimeoutError
from ..result import AsyncResult
from .base import UsageError, command_parser

#: How often ``call --wait`` reads the task's state.
POLL_INTERVAL = 0.1
BAR_WIDTH = 30


def _json(flag: str, text: str | None, kind: type) -> Any:
    if text is None:
        return kind()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{flag} must be JSON ({exc}): {text!r}") from exc
    if not isinstance(value, kind):
        raise UsageError(f"{flag} must be a JSON {'list' if kind is list else 'object'}: {text!r}")
    return value


def pretty(value: Any) -> str:
    """Celery's ``pretty``: lists and dicts as ``pformat`` shows them, anything else as ``str``."""
    return pprint.pformat(value) if isinstance(value, (list, dict)) else str(value)


def call_command(options: argparse.Namespace, app: Celery) -> int:
    """Send the task called NAME; print its id (``--wait``: its progress, then its result)."""
    parser = command_parser("call", "Send a task by name and print its id.")
    parser.add_argument("name")
    parser.add_argument("-a", "--args", help='positional arguments as a JSON list, e.g. \'[2, 2]\'')
    parser.add_argument("-k", "--kwargs", help='keyword arguments as a JSON object, e.g. \'{"x": 1}\'')
    parser.add_argument("--eta", type=datetime.fromisoformat, help="when to run it (ISO 8601)")
    parser.add_argument("--countdown", type=float, help="run it in this many seconds")
    parser.add_argument("--expires", type=float, help="discard it if not started within this many seconds")
    parser.add_argument("-Q", "--queue", help="the queue (default: the app's routing)")
    parser.add_argument("--serializer", choices=["json"], help="only json: pickle is refused")
    parser.add_argument("--wait", action="store_true", help="show its progress (PROGRESS meta), print its result")
    parser.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    args = parser.parse_args(options.arguments)
    result = app.send_task(args.name, _json("--args", args.args, list), _json("--kwargs", args.kwargs, dict),
                           countdown=args.countdown, eta=args.eta, expires=args.expires, queue=args.queue)
    print(result.id, flush=True)
    if not args.wait:
        return 0
    if not app.control.ping():
        print("warning: no worker is online; the task waits in its queue", file=sys.stderr, flush=True)
    return follow(result, args.timeout, sys.stderr)


def follow(result: AsyncResult, timeout: float | None, out: TextIO) -> int:
    """Show ``result``'s progress on ``out`` until it is ready, then print its outcome; the exit code."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = None
    while not result.ready():
        line = progress_line(result.state, result.info)
        if line != shown:
            out.write(("\r" if out.isatty() else "") + line + ("" if out.isatty() else "\n"))
            out.flush()
            shown = line
        if deadline is not None and time.monotonic() > deadline:
            print(f"\nError: task {result.id} is still {result.state} after {timeout:g} s", file=sys.stderr)
            return 1
        time.sleep(POLL_INTERVAL)
    if out.isatty() and shown is not None:
        out.write("\n")
    return print_outcome(result)


def progress_line(state: str, info: Any) -> str:
    """``[#####.....] 3/10`` from a PROGRESS meta with ``current``/``total``, else the state and its meta."""
    if isinstance(info, dict) and isinstance(info.get("current"), (int, float)) and info.get("total"):
        current, total = info["current"], info["total"]
        filled = int(BAR_WIDTH * min(current / total, 1.0))
        return f"{state} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {current}/{total}"
    return state if not info else f"{state} {info}"


def print_outcome(result: AsyncResult) -> int:
    """Print a ready task's result (stdout) or its failure (stderr); 0 only for SUCCESS."""
    value = result.get(propagate=False)
    if result.state == states.SUCCESS:
        print(pretty(value))
        return 0
    if isinstance(value, BaseException):
        print(f"{result.state}: {type(value).__name__}: {value}", file=sys.stderr)
    else:
        print(f"{result.state}: {pretty(value)}", file=sys.stderr)
    return 1


def result_command(options: argparse.Namespace, app: Celery) -> int:
    """Print the result of the task with id ID (``--traceback``: its traceback)."""
    parser = command_parser("result", "Print a task's result.")
    parser.add_argument("task_id")
    parser.add_argument("-t", "--task", help="the task's name (accepted; results are found by id)")
    parser.add_argument("--traceback", action="store_true", help="print the task's traceback instead")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an unfinished task")
    args = parser.parse_args(options.arguments)
    result = AsyncResult(args.task_id, app=app)
    if args.traceback:
        print(result.traceback or "")
        return 0
    try:
        result.get(timeout=args.timeout, propagate=False)
    except TimeoutError:
        print(f"Error: task {args.task_id} is still {result.state} after {args.timeout:g} s", file=sys.stderr)
        return 1
    return print_outcome(result)
