"""Input validation shared by the HTML form and the JSON API: one set of rules, two front doors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange

from app.web import history

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
    # bool is an int subclass: JSON true must not quietly become a one-second task. 10.0 is a whole
    # number to JSON Schema (and so to clients generated from the OpenAPI document).
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        return "must be a whole number of seconds"
    if not MIN_DURATION <= value <= MAX_DURATION:
        return f"must be between {MIN_DURATION} and {MAX_DURATION}"
    return None


class EmailForm(FlaskForm):
    """The email form on the index page. Flask-WTF checks its CSRF token; the mail package checks the rest."""

    to = StringField("To", description="One address, or several separated by commas")
    subject = StringField("Subject")
    body = TextAreaField("Message")


def parse_email(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``{"to": [...], "subject", "body"}`` from a form or JSON object, or raise :class:`InvalidForm`.

    The rules belong to the mail package (``app.mail.validation``), which the worker's task shares.
    """
    from flask import current_app

    from app.mail.validation import Limits, validate_email_request

    clean, errors = validate_email_request(data, Limits.from_settings(current_app.config))
    if errors:
        raise InvalidForm(dict(errors))
    return clean


#: How deep a JSON body may nest. The API's bodies are flat objects; the parser itself would fail
#: with a RecursionError (a 500) somewhere near a thousand levels.
MAX_JSON_DEPTH = 20


NOT_TEXT = "must be valid Unicode text (it holds a lone surrogate such as \\ud800)"
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class TooDeep(ValueError):
    """Raised when a JSON document nests deeper than :data:`MAX_JSON_DEPTH`."""


def check_json_document(data: Any) -> None:
    """Raise :class:`TooDeep` if ``data`` (parsed JSON) nests too deep, or :class:`InvalidForm` naming each
    field whose text (a key or a string anywhere in it) holds a lone surrogate such as ``"\\ud800"``.

    Such text is valid JSON yet no UTF-8 can carry it: accepted, it would break the task's result,
    its page and its log lines later, so it is refused at the door. Walks without recursion.
    """
    errors: dict[str, str] = {}
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        field, value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise TooDeep(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                name = field or key
                if _SURROGATE.search(key):
                    errors[name.encode("utf-8", "backslashreplace").decode()] = NOT_TEXT
                stack.append((name, item, depth + 1))
        elif isinstance(value, list):
            stack.extend((field, item, depth + 1) for item in value)
        elif isinstance(value, str) and _SURROGATE.search(value):
            errors[field.encode("utf-8", "backslashreplace").decode()] = NOT_TEXT
    if errors:
        raise InvalidForm(errors)


#: Bounds of one page of the task list.
#: The longest name, queue, id or search text the task list accepts.
MAX_FILTER_LENGTH = 200
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


def parse_task_query(args: Mapping[str, str]) -> history.Query:
    """The task list's query string as a :class:`history.Query`, or raise :class:`InvalidForm`.

    The rules are the API's model (:class:`app.web.schemas.TaskQuery`), so the page and the API
    read a query alike. ``cursor`` (the previous page's ``next``) goes to older tasks, ``after``
    (its ``prev``) to newer; an empty value means "any" or "none", as the list page's filters send it.
    """
    # Imported here: the model reads this module's bounds.
    from app.web.contract import validate
    from app.web.schemas import TaskQuery

    to_dict = getattr(args, "to_dict", None)
    return task_query(validate(TaskQuery, to_dict() if to_dict is not None else dict(args)))


def task_query(query: Any) -> history.Query:
    """The :class:`history.Query` of a valid :class:`app.web.schemas.TaskQuery`."""
    from app.web.schemas import moment_seconds

    texts = {field: getattr(query, field).strip() or None for field in ("name", "queue", "id", "q")}
    before = float(query.cursor) if query.cursor else None
    after = float(query.after) if query.after and before is None else None  # with both, cursor wins
    return history.Query(state=query.state or None, name=texts["name"], queue=texts["queue"], task_id=texts["id"],
                         search=texts["q"], limit=query.limit, before=before, after=after,
                         since=_from_1970(moment_seconds(query.since)), until=_from_1970(moment_seconds(query.until)))


def _from_1970(seconds: float | None) -> float | None:
    # No task was sent before 1970: a range that starts earlier starts then, so the links and the
    # live list's URL the page writes with it carry no negative time (which the API refuses).
    return None if seconds is None else max(0.0, seconds)


def in_zone(args: Mapping[str, str]) -> dict[str, str]:
    """The list page's query with its ``datetime-local`` times given the reader's offset from UTC.

    The page's script puts the browser's time zone (an IANA name) in ``tz``; without it (no script,
    or an unknown name) the times are read as UTC. A time that carries an offset is left as it is.
    """
    from app.web.schemas import LOCAL_TIME

    values = dict(args.items())
    zone: tzinfo = timezone.utc
    try:
        zone = ZoneInfo(values.get("tz", "")[:64]) if values.get("tz") else timezone.utc
    except (ValueError, OSError, ZoneInfoNotFoundError):  # a hand-made URL ("Europe" is a folder): read as UTC
        pass
    for field in ("since", "until"):
        value = values.get(field, "")
        if re.fullmatch(LOCAL_TIME.removesuffix("$"), value):
            values[field] = _with_offset(datetime.fromisoformat(value), zone)
    return values


def _with_offset(naive: datetime, zone: tzinfo) -> str:
    # The offset in whole minutes, as the API writes it: before 1900 a zone's local mean time has seconds too.
    offset = naive.replace(tzinfo=zone).utcoffset() or timedelta(0)
    return naive.replace(tzinfo=timezone(timedelta(minutes=round(offset.total_seconds() / 60)))).isoformat()


def check_range(query: history.Query) -> None:
    """Raise :class:`InvalidForm` for a range that ends before it begins (the list page says so)."""
    if query.since is not None and query.until is not None and query.since >= query.until:
        raise InvalidForm({"since": "must be earlier than Sent until"})
