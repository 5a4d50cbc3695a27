"""The JSON API's answers as pydantic models, for its OpenAPI document (:mod:`app.web.openapi`).

They describe; the views build their answers as plain dicts (app/web/status.py), and
``tests/test_openapi.py`` checks every answer against these descriptions with schemathesis.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Json

from app.web.schemas import STATES


class Document(BaseModel):
    """An OpenAPI document."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    paths: dict[str, Any]


class Error(BaseModel):
    """Why a request was refused."""

    error: str


class RateLimitedError(Error):
    """Over a submit bound; also in the Retry-After header."""

    retry_after: int


class StreamBusy(Error):
    """Too many live streams here: poll ``poll`` instead."""

    poll: str | None = None


class ValidationErrors(BaseModel):
    """Each field or query parameter in error, and why."""

    errors: dict[str, str]


class Submitted(BaseModel):
    """A queued task: poll its status at ``url`` (also the Location header)."""

    id: str
    state: str
    url: str


class Cancelled(BaseModel):
    """REVOKED, or the state it reached if it finished in the meantime."""

    id: str
    state: str


class Progress(BaseModel):
    current: int | float | None = None
    total: int | float | None = None
    percent: int | float | None = None


class TaskError(BaseModel):
    type: str
    message: str
    traceback: str | None


class TaskStatus(BaseModel):
    """Everything known about one task."""

    id: str
    kind: str | None = Field(description="long-running, email, ping, or another task's name")
    arguments: dict[str, Any]
    state: str = Field(description="A Celery state: " + ", ".join(STATES) + ", or a task's custom state")
    progress: Progress | None
    result: Any = Field(description="The task's return value once it succeeded, else null")
    error: TaskError | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    worker: str | None = Field(description="The RQ worker that ran it last")
    last_heartbeat: str | None = Field(description="When that worker last said it was still running it")
    redelivered: int = Field(description="How often it was run again after a worker died")


class TimelineEvent(BaseModel):
    what: str = Field(description="Sent, Retry N, Started, Started (run N), Succeeded, Failed, Cancelled...")
    at: str = Field(description="When, ISO 8601 UTC")
    detail: str = Field(description="A retry's reason, else empty")


class Timeline(BaseModel):
    """What happened to a task so far, oldest first."""

    events: list[TimelineEvent]


class TaskSummary(BaseModel):
    """One row of the task list."""

    id: str
    kind: str | None
    name: str | None = Field(description="The task's registered name")
    queue: str | None
    arguments: str | None = Field(description="Its arguments, shortened")
    state: str
    progress: Progress | None
    worker: str | None
    retries: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    runtime: float | None = Field(description="Seconds its last run took (so far)")
    url: str


class TaskPage(BaseModel):
    """A page of tasks, newest first."""

    tasks: list[TaskSummary]
    next: str | None = Field(description="Pass as `cursor` for the next (older) page")
    prev: str | None = Field(default=None, description="Pass as `after` for the previous (newer) page")


class StatusEvent(BaseModel):
    """``event: status``: the task's status, at once and at each change."""

    event: Literal["status"]
    data: Json[TaskStatus]
    retry: int | None = None


class EndState(BaseModel):
    state: str


class EndEvent(BaseModel):
    """``event: end``: the task finished; the stream closes."""

    event: Literal["end"]
    data: Json[EndState]


class UnavailableEvent(BaseModel):
    """``event: unavailable``: Redis went away; the stream closes (poll the status instead)."""

    event: Literal["unavailable"]
    data: Json[Error]


#: One event of a task's stream.
TASK_EVENTS = (StatusEvent, EndEvent, UnavailableEvent)
