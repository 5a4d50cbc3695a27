"""Bar charts as data for an inline SVG drawn server-side (templates/_chart.html).

No script and no library from elsewhere: the Content-Security-Policy allows neither, and a
chart that is only an image says nothing to a screen reader. Each chart therefore comes with its
values as rows of a table, and every bar carries its value as a tooltip.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

#: The plot area inside the SVG's 600 x 134 viewBox (templates/_monitor.html draws the axes there).
LEFT, RIGHT, TOP, BOTTOM = 76, 596, 14, 110


@dataclass(frozen=True)
class Bar:
    """One rectangle: a part (``kind``, a CSS class) of the bar of one time bucket."""

    x: float
    y: float
    width: float
    height: float
    kind: str
    label: str


@dataclass(frozen=True)
class Chart:
    """What the template draws: the bars, the axis' top value, the time span, and the table's rows."""

    id: str
    title: str
    kinds: tuple[str, ...]
    bars: list[Bar]
    top: str
    first: str
    last: str
    rows: list[tuple[str, list[str]]]

    @property
    def empty(self) -> bool:
        return not self.rows


def iso(moment: float) -> str:
    """UTC ISO time with a ``Z``, as the other pages write it (times.js shows it local and relative)."""
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def stacked(chart_id: str, title: str, starts: Sequence[int], values: Sequence[Sequence[float]],
            kinds: tuple[str, ...], fmt: Callable[[float], str] = lambda value: f"{value:g}") -> Chart:
    """A bar per time bucket (``starts``, epoch seconds), each stacked from ``values[i]`` (one per kind).

    The table lists only the buckets with something in them, so a quiet hour reads as one line.
    """
    top = max((sum(parts) for parts in values), default=0.0)
    slot = (RIGHT - LEFT) / max(len(starts), 1)
    scale = (BOTTOM - TOP) / top if top else 0.0
    bars, rows = [], []
    for index, (start, parts) in enumerate(zip(starts, values, strict=True)):
        base = float(BOTTOM)
        for kind, value in zip(kinds, parts, strict=True):
            if value <= 0:
                continue
            height = max(value * scale, 1.0)
            base -= height
            bars.append(Bar(round(LEFT + index * slot + slot * 0.1, 2), round(base, 2), round(slot * 0.8, 2),
                            round(height, 2), kind, f"{iso(start)}: {fmt(value)} {kind}"))
        if any(value > 0 for value in parts):
            rows.append((iso(start), [fmt(value) for value in parts]))
    first, last = (iso(starts[0]), iso(starts[-1])) if starts else ("", "")
    # An id has no spaces (a task or queue name may); the table and the title refer to it.
    return Chart(re.sub(r"[^\w.-]", "-", chart_id), title, kinds, bars, fmt(top), first, last, rows)
