"""The JSON API's requests as pydantic models: the API validates with them, and the OpenAPI document
(:mod:`app.web.openapi`) is generated from them, so the two cannot drift apart. The answers'
models are in :mod:`app.web.answers`.

Request fields check their rules in a ``BeforeValidator`` that reuses the rules the HTML forms
and the mail task share (their messages included), then against the exact syntax the document
states (``SUBJECT``, ``ADDRESS``, ...): whatever the document allows is accepted, whatever it
refuses is refused.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from app.mail.validation import Limits, validate_email_request
from app.web.forms import (
    DEFAULT_PAGE_SIZE,
    MAX_DURATION,
    MAX_FILTER_LENGTH,
    MAX_PAGE_SIZE,
    MIN_DURATION,
    duration_error,
)
from app.web.status import ALL_STATES

STATES = ALL_STATES
#: A state to filter the task list by, or empty for any.
StateFilter = Literal[("", *ALL_STATES)]
#: A ping's token.
TOKEN = r"^[A-Za-z0-9_.:-]{1,100}$"

# The syntax the API documents, as ECMA-262 regular expressions that Python's re reads the same way.
# An address is the plain ASCII form every mail system takes: letters, digits and . _ + - ' before
# the @, dotted labels after it; the special-use top-level domains email_validator refuses are
# left out, so that every address the document allows is one the mail task accepts.
_LABEL = r"[A-Za-z0-9]{1,15}(?:-[A-Za-z0-9]{1,15}){0,2}"
_SPECIAL_TLD = "|".join("".join(f"[{c.upper()}{c}]" for c in tld)
                        for tld in ("arpa", "invalid", "local", "localhost", "onion", "test"))
ADDRESS = (rf"[A-Za-z0-9_+'-]{{1,30}}(?:\.[A-Za-z0-9_+'-]{{1,30}}){{0,1}}"
           rf"@(?:{_LABEL}\.){{1,3}}(?!(?:{_SPECIAL_TLD})$)[A-Za-z]{{2,20}}")
#: Between two addresses of one string: a comma or a semicolon, with spaces around it.
_SEPARATOR = r" {0,2}[,;] {0,2}"
#: A subject is one line of text that is not all spaces.
_LINE = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
SUBJECT = rf"^{_LINE}*[^\s\x00-\x1f\x7f-\x9f\u2028\u2029]{_LINE}*$"
#: A body may hold tabs and line breaks, no other control character, and not only white space.
_TEXT = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
BODY = rf"^{_TEXT}*[^\s\x00-\x08\x0b\x0c\x0e-\x1f\x7f]{_TEXT}*$"
#: A page cursor: the ``next`` or ``prev`` of a page (a send time), or empty for none.
CURSOR = r"^(?:[0-9]{1,15}(?:\.[0-9]{1,15})?)?$"
# A moment: epoch seconds, or an ISO 8601 date and time with its offset from UTC. The date is spelled
# so that only real ones match (February 29 in leap years only), so every match converts.
_EPOCH = r"[0-9]{1,12}(?:\.[0-9]{1,6})?"
_DAY = (r"[1-9][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
        r"|(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)-02-29")
_CLOCK = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
#: A time without its offset, as a ``datetime-local`` input sends it (the list page adds the reader's zone).
LOCAL_TIME = rf"^(?:{_DAY})T{_CLOCK}$"
#: A bound of the task list's time range, or empty for none.
MOMENT = rf"^(?:{_EPOCH}|(?:{_DAY})T{_CLOCK}(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?$"


def recipients_pattern(max_recipients: int) -> str:
    """The documented syntax of ``to`` as one string of at most ``max_recipients`` addresses."""
    return rf"^{ADDRESS}(?:{_SEPARATOR}{ADDRESS}){{0,{max_recipients - 1}}}$"


def _refuse(why: str) -> PydanticCustomError:
    # The message goes in the context: a template would read braces in it as placeholders.
    return PydanticCustomError("rule", "{why}", {"why": why})


def _matches(pattern: str, value: str) -> bool:
    # As JSON Schema reads ``pattern`` (ECMA-262), where $ is the very end: Python's $ also matches
    # before a final newline, so the match must reach the end.
    found = re.search(pattern, value)
    return found is not None and found.end() == len(value)


def _rule(check: Callable[[Any, ValidationInfo], Any]) -> BeforeValidator:
    """A field validator from ``check(value, info)``, which returns the clean value or raises ValueError(why)."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        try:
            return check(value, info)
        except ValueError as exc:
            raise _refuse(str(exc)) from None

    return BeforeValidator(validate)


class ApiModel(BaseModel):
    """A request of the API: unknown fields are ignored, as they always were."""

    model_config = ConfigDict(extra="ignore", regex_engine="python-re")

    #: An empty body stands for ``{}`` (for actions whose body carries nothing yet).
    empty_body_allowed: ClassVar[bool] = False

    @classmethod
    def document(cls, schema: dict[str, Any], config: Mapping[str, Any]) -> None:
        """Adjust the model's schema in the document to this deployment's settings; most have none."""


# --- requests ---------------------------------------------------------------------------------------------

def _duration(value: Any, info: ValidationInfo) -> int:
    error = duration_error(value)
    if error:
        raise ValueError(error)
    return int(value)


class LongRunningRequest(ApiModel):
    """Queue a task that works for ``duration`` seconds, reporting its progress."""

    duration: Annotated[int, Field(ge=MIN_DURATION, le=MAX_DURATION, description="Seconds"), _rule(_duration)]


def _token(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str) or not _matches(TOKEN, value):
        raise ValueError("is required: 1 to 100 letters, digits or . _ : -")
    return value


class PingRequest(ApiModel):
    """Queue the smallest task, an end-to-end check."""

    token: Annotated[str, Field(pattern=TOKEN,
                                description="batch:anything; the task records it as run"), _rule(_token)]


def _limits(info: ValidationInfo) -> Limits:
    return Limits.from_settings((info.context or {}).get("config", {}))


def _mail_rule(field: str) -> Callable[[Any, ValidationInfo], Any]:
    # The mail package's rules first (their messages, the same as the form's), then the documented syntax.
    def check(value: Any, info: ValidationInfo) -> Any:
        limits = _limits(info)
        clean, errors = validate_email_request({field: value}, limits)
        if field in errors:
            raise ValueError(errors[field])
        _check_syntax(field, value, limits)
        return clean[field]

    return check


def _check_syntax(field: str, value: Any, limits: Limits) -> None:
    if field == "to":
        items = value if isinstance(value, list) else [value]
        pattern = rf"^{ADDRESS}$" if isinstance(value, list) else recipients_pattern(limits.max_recipients)
        for item in items:
            if not _matches(pattern, item):
                raise ValueError(f"{item[:254]!r}: the API takes plain ASCII addresses such as name@example.com, "
                                 "separated by commas (see its OpenAPI document)")
    elif not _matches(SUBJECT if field == "subject" else BODY, value):
        raise ValueError("must be text without control characters" if field == "body" else
                         "must be one line, without control characters")


class EmailRequest(ApiModel):
    """Queue an email to one or more recipients.

    The limits are the deployment's (``MAIL_MAX_*``): the validators read them from the request's
    context and :meth:`document` writes them into the schema.
    """

    to: Annotated[str | list[str], Field(description="One address, several separated by commas or semicolons, "
                                                     "or a list"), _rule(_mail_rule("to"))]
    subject: Annotated[str, Field(min_length=1, pattern=SUBJECT), _rule(_mail_rule("subject"))]
    body: Annotated[str, Field(min_length=1, pattern=BODY), _rule(_mail_rule("body"))]

    @classmethod
    def document(cls, schema: dict[str, Any], config: Mapping[str, Any]) -> None:
        limits = Limits.from_settings(config)
        properties = schema["properties"]
        text, listed = properties["to"]["anyOf"]
        text["pattern"] = recipients_pattern(limits.max_recipients)
        listed.update(minItems=1, maxItems=limits.max_recipients)
        listed["items"]["pattern"] = rf"^{ADDRESS}$"
        properties["to"]["description"] = ("One address, several separated by commas or semicolons, or a list; "
                                           f"at most {limits.max_recipients}, each a plain ASCII address")
        properties["subject"]["maxLength"] = limits.max_subject_length
        # The limit is in bytes of UTF-8: exact for ASCII; text in other scripts reaches it sooner.
        properties["body"]["maxLength"] = limits.max_body_bytes
        properties["body"]["description"] = f"At most {limits.max_body_bytes} bytes in UTF-8"


class ActionRequest(ApiModel):
    """The body of Cancel and Retry: a JSON object, empty for now (an empty body counts as ``{}``)."""

    empty_body_allowed: ClassVar[bool] = True


def _state(value: Any, info: ValidationInfo) -> str:
    if value not in ("", *STATES):
        raise ValueError(f"must be one of {', '.join(STATES)}")
    return value


def _limit(value: Any, info: ValidationInfo) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]{1,18}", value):
        raise ValueError("must be a whole number")
    if not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise ValueError(f"must be between 1 and {MAX_PAGE_SIZE}")
    return int(value)


def _cursor(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str) or not _matches(CURSOR, value):
        raise ValueError("must be the 'next' or 'prev' value of a previous page")
    return value


def _moment(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str) or not _matches(MOMENT, value):
        raise ValueError("must be a date and time with its offset from UTC, such as 2026-12-01T17:00:00+01:00, "
                         "or seconds since 1970")
    return value


def moment_seconds(value: str) -> float | None:
    """A valid ``since`` or ``until`` in seconds since 1970, or None when empty."""
    if not value:
        return None
    if "T" not in value:
        return float(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _text(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str) or len(value) > MAX_FILTER_LENGTH:
        raise ValueError(f"must be at most {MAX_FILTER_LENGTH} characters")
    return value


_Filter = Annotated[str, Field(max_length=MAX_FILTER_LENGTH), _rule(_text)]


class TaskQuery(ApiModel):
    """The task list's query string. Empty values mean "any"; with both cursors, ``cursor`` wins."""

    state: Annotated[StateFilter, Field(description="Only tasks in this state; empty for any"), _rule(_state)] = ""
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE, description="Tasks per page"),
                     _rule(_limit)] = DEFAULT_PAGE_SIZE
    cursor: Annotated[str, Field(pattern=CURSOR, description="The `next` of the previous page: older tasks"),
                      _rule(_cursor)] = ""
    after: Annotated[str, Field(pattern=CURSOR, description="The `prev` of the previous page: newer tasks "
                                                           "(ignored with `cursor`)"), _rule(_cursor)] = ""
    name: Annotated[_Filter, Field(description="Only tasks of this name")] = ""
    queue: Annotated[_Filter, Field(description="Only tasks sent to this queue")] = ""
    q: Annotated[_Filter, Field(description="Only tasks whose arguments contain this text (any case)")] = ""
    id: Annotated[_Filter, Field(description="Only the task with this id")] = ""
    since: Annotated[str, Field(pattern=MOMENT, description="Only tasks sent at or after this time: ISO 8601 with "
                                "its offset (`2026-12-01T17:00:00+01:00`, `...Z`) or seconds since 1970; "
                                "empty for no bound. The cursors page within the range"), _rule(_moment)] = ""
    until: Annotated[str, Field(pattern=MOMENT, description="Only tasks sent before this time (exclusive), "
                                "written as `since`; a range that ends before it begins holds no task"),
                     _rule(_moment)] = ""
