"""Input validation shared by the HTML form and the JSON API: one set of rules, two front doors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange

#: Bounds of a long-running task, in seconds. An hour is long enough to watch, short enough to
#: stay inside the worker's job timeout.
MIN_DURATION = 1
MAX_DURATION = 3600


class InvalidForm(ValueError):
    """Raised when submitted data breaks a rule; ``errors`` maps each field to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


class LongRunningForm(FlaskForm):
    """The HTML form on the index page; Flask-WTF adds and checks its CSRF token."""

    duration = IntegerField(
        "Duration (seconds)",
        default=10,
        validators=[InputRequired(), NumberRange(min=MIN_DURATION, max=MAX_DURATION)],
    )


def duration_error(value: Any) -> str | None:
    """Return why ``value`` is not an acceptable task duration, or ``None`` if it is."""
    # bool is an int subclass: JSON true must not quietly become a one-second task.
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number of seconds"
    if not MIN_DURATION <= value <= MAX_DURATION:
        return f"must be between {MIN_DURATION} and {MAX_DURATION}"
    return None


def parse_long_running(data: Mapping[str, Any]) -> int:
    """Return the duration of a long-running task from a JSON object, or raise :class:`InvalidForm`."""
    if "duration" not in data:
        raise InvalidForm({"duration": "is required"})
    error = duration_error(data["duration"])
    if error:
        raise InvalidForm({"duration": error})
    return data["duration"]
