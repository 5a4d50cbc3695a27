"""A task's traceback as an operator reads it: the error, then the task's own frames, then ours.

A task's traceback starts with the frames of whatever ran it (the adapter's trace, the lean
worker, RQ's worker) and ends with the user's frames and the message, so a dashboard showed five
frames of plumbing before anything useful. :func:`user_first` keeps every line, only in another
order: the error's last line first, then each exception's frames from the task's code, then the
runner's frames under a heading that names them.
"""

from __future__ import annotations

import re
from pathlib import Path

import rq

from app import celery_compat

#: Files whose frames belong to the machinery that runs a task, not to the task.
RUNNER_ROOTS = (str(Path(celery_compat.__file__).resolve().parent), str(Path(rq.__file__).resolve().parent))

#: The line that heads a traceback, and the ones that join a chained exception to the next.
_HEADER = "Traceback (most recent call last):"
_CHAIN = re.compile(r"^(During handling of the above exception|The above exception was the direct cause)")
_FRAME = re.compile(r'^  File "([^"]+)", line \d+')

RUNNER_HEADING = "Frames of the worker that ran the task (app.celery_compat, rq):"


#: The same, as a worker elsewhere (another host, container or checkout) spells their paths.
_RUNNER_PATH = re.compile(r"[/\\]app[/\\]celery_compat[/\\]|[/\\]site-packages[/\\]rq[/\\]")


def _is_runner(path: str) -> bool:
    if _RUNNER_PATH.search(path):
        return True
    try:
        resolved = str(Path(path).resolve())
    except (OSError, ValueError):
        return False
    return resolved.startswith(RUNNER_ROOTS)


def _frames(lines: list[str]) -> list[list[str]]:
    """Group a traceback's body into frames: a ``File`` line and the indented lines under it."""
    frames: list[list[str]] = []
    for line in lines:
        if _FRAME.match(line) or not frames:
            frames.append([line])
        else:
            frames[-1].append(line)
    return frames


def _reorder_block(block: list[str]) -> tuple[list[str], list[str]]:
    """One exception's lines reordered: (its header, user frames and message; its runner frames)."""
    if _HEADER not in block:
        return block, []
    start = block.index(_HEADER)
    body = block[start + 1:]
    # The exception's own lines are the first ones, after the frames, that are not indented.
    end = next((i for i, line in enumerate(body) if line and not line.startswith(" ")), len(body))
    frames, message = _frames(body[:end]), body[end:]
    ours = [bool((m := _FRAME.match(frame[0])) and _is_runner(m.group(1))) for frame in frames]
    user = [frame for frame, is_ours in zip(frames, ours, strict=True) if not is_ours]
    runner = [frame for frame, is_ours in zip(frames, ours, strict=True) if is_ours]
    return block[:start + 1] + [line for frame in user for line in frame] + message, \
        [line for frame in runner for line in frame]


def _blocks(lines: list[str]) -> list[list[str]]:
    """Split a chained traceback into its exceptions (each separator line starts the next block)."""
    blocks: list[list[str]] = [[]]
    for line in lines:
        if _CHAIN.match(line):
            blocks.append([])
        blocks[-1].append(line)
    return blocks


def user_first(text: str | None) -> str | None:
    """The traceback with the error first, then the task's frames, then the runner's; same lines otherwise."""
    if not text or _HEADER not in text:
        return text
    lines = text.rstrip("\n").split("\n")
    summary = next((line for line in reversed(lines) if line and not line.startswith(" ")), "")
    shown: list[str] = [summary, ""]
    runner: list[str] = []
    for block in _blocks(lines):
        mine, theirs = _reorder_block(block)
        shown += mine
        runner += theirs
    if runner:
        shown += ["", RUNNER_HEADING, *runner]
    return "\n".join(shown) + "\n"


def summary(text: str | None, max_lines: int = 8) -> str | None:
    """The start of :func:`user_first` for a list of jobs, where the whole would make a page metres long."""
    ordered = user_first(text)
    if ordered is None:
        return None
    lines = ordered.rstrip("\n").split("\n")
    if RUNNER_HEADING in lines:
        lines = lines[:lines.index(RUNNER_HEADING)]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines on the job's page)"]
    return "\n".join(lines)
