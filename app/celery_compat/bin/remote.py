"""The commands that talk to running workers or queues: ``inspect``, ``control``, ``status``, ``purge``.

``inspect <method>`` calls ``app.control.inspect(...).<method>()`` and ``control <method>`` calls
``app.control.<method>(...)``, then print the replies as Celery does (``->  worker: OK`` and
the reply, ``--json`` for JSON). A method the adapter does not offer is an error naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..app.base import Celery
from ..app.control import purge_queue
from .base import UsageError, command_parser

#: Celery's exit code when no worker replies (EX_UNAVAILABLE).
EXIT_NO_REPLY = 69


def _parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = command_parser(name, description)
    parser.add_argument("-t", "--timeout", type=float, default=1.0, help="seconds to wait for replies")
    parser.add_argument("-d", "--destination", help="comma-separated worker names")
    parser.add_argument("-j", "--json", action="store_true", help="print the replies as JSON")
    return parser


def _print_replies(replies: Any, as_json: bool) -> int:
    """Celery's layout: one ``->  name: OK`` block per worker, then how many answered."""
    if isinstance(replies, list):  # control replies: [{name: reply}, ...]
        replies = {name: reply for entry in replies for name, reply in entry.items()}
    if not replies:
        print("Error: No nodes replied within time constraint", file=sys.stderr)
        return EXIT_NO_REPLY
    if as_json:
        print(json.dumps(replies, default=str))
        return 0
    for name, reply in replies.items():
        print(f"->  {name}: OK")
        for line in json.dumps(reply, indent=4, default=str).splitlines():
            print(f"        {line}")
    count = len(replies)
    print(f"\n{count} node{'s' if count != 1 else ''} online.")
    return 0


def _method(owner: Any, name: str, what: str) -> Any:
    method = getattr(owner, name, None) if not name.startswith("_") else None
    if not callable(method):
        offered = sorted(attr for attr in dir(owner) if not attr.startswith("_") and callable(getattr(owner, attr)))
        raise UsageError(f"{what} method {name!r} is not provided by this adapter (provided: {', '.join(offered)})")
    return method


def _arguments(values: list[str]) -> list[Any]:
    """Positional arguments as Celery's CLI takes them: JSON where it parses, else the string."""
    parsed = []
    for value in values:
        try:
            parsed.append(json.loads(value))
        except ValueError:
            parsed.append(value)
    return parsed


def inspect_command(options: argparse.Namespace, app: Celery) -> int:
    parser = _parser("inspect", "Ask the running workers: app.control.inspect().<method>().")
    parser.add_argument("method")
    parser.add_argument("arguments", nargs="*")
    args = parser.parse_args(options.arguments)
    inspector = app.control.inspect(destination=_destination(args), timeout=args.timeout)
    replies = _method(inspector, args.method, "inspect")(*_arguments(args.arguments))
    return _print_replies(replies, args.json)


def control_command(options: argparse.Namespace, app: Celery) -> int:
    parser = _parser("control", "Tell the workers: app.control.<method>(...).")
    parser.add_argument("method")
    parser.add_argument("arguments", nargs="*")
    args = parser.parse_args(options.arguments)
    if args.method in ("inspect", "purge"):
        raise UsageError(f"control {args.method}: use the `{args.method}` command")
    method = _method(app.control, args.method, "control")
    replies = method(*_arguments(args.arguments), destination=_destination(args))
    if replies is None:  # revoke and friends answer nothing: they take effect through Redis
        print(f"{args.method}: done")
        return 0
    return _print_replies(replies, args.json)


def status_command(options: argparse.Namespace, app: Celery) -> int:
    parser = _parser("status", "Which workers are online (a ping to each).")
    args = parser.parse_args(options.arguments)
    replies = app.control.inspect(destination=_destination(args), timeout=args.timeout).ping()
    if not replies:
        return _print_replies(replies, args.json)
    if args.json:
        return _print_replies(replies, True)
    for name in replies:
        print(f"->  {name}: OK")
    print(f"\n{len(replies)} node{'s' if len(replies) != 1 else ''} online.")
    return 0


def purge_command(options: argparse.Namespace, app: Celery) -> int:
    """Delete the waiting tasks of the app's queues (or ``-Q``), after a yes unless ``-f``."""
    parser = command_parser("purge", "Delete all waiting tasks.")
    parser.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    parser.add_argument("-Q", "--queues", help="comma-separated queues (default: all the app's queues)")
    parser.add_argument("-X", "--exclude-queues", help="comma-separated queues to leave alone")
    args = parser.parse_args(options.arguments)
    excluded = set(filter(None, (args.exclude_queues or "").split(",")))
    names = [name for name in (filter(None, args.queues.split(",")) if args.queues else app.amqp.queues)
             if name not in excluded]
    if not args.force:
        print(f"WARNING: This will remove all tasks from queue{'s' if len(names) != 1 else ''}: "
              f"{', '.join(names)}.\n         There is no undo for this operation!\n\n"
              "(to skip this prompt use the -f option)")
        try:
            answer = input("Are you sure you want to delete all tasks (yes/NO)? ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Aborted: nothing was purged.")
            return 1
    purged = 0
    for name in names:
        purged += purge_queue(app, name)
    print(f"Purged {purged} message{'s' if purged != 1 else ''} from {len(names)} known task "
          f"queue{'s' if len(names) != 1 else ''}.")
    return 0


def _destination(args: argparse.Namespace) -> list[str] | None:
    return args.destination.split(",") if args.destination else None
