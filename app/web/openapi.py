"""The OpenAPI 3 document of the JSON API, served at ``/api/openapi.json``.

Written by hand next to the endpoints it describes; ``tests/test_openapi.py`` fuzzes the API from it
with schemathesis, which fails when an answer leaves the document (a status, a field, a type).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from app.web.forms import DEFAULT_PAGE_SIZE, MAX_DURATION, MAX_PAGE_SIZE, MIN_DURATION

_STATES = ["PENDING", "STARTED", "PROGRESS", "RETRY", "SUCCESS", "FAILURE", "REVOKED"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_TASK_ID = {"name": "task_id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}}

_COMMON = {
    "401": _error("Outside development: no valid basic-auth login or bearer token"),
    "405": _error("Wrong method"),
    "503": _error("Redis is unreachable; retry after the Retry-After header's seconds"),
}

_SUBMITTED = {
    "202": {
        **_json(_ref("Submitted"), "Queued; poll the status at `url` (also the Location header)"),
        "headers": {"Location": {"schema": {"type": "string"}, "description": "The status URL"}},
    },
    "400": _error("The body is not a JSON object, or not sent as application/json"),
    "413": _error("The body is larger than the server accepts"),
    "422": _json(_ref("ValidationErrors"), "A field is missing, of the wrong type or out of range"),
    "429": _error("Over SUBMIT_RATE_LIMIT or MAX_QUEUED_TASKS; retry after the Retry-After header's seconds"),
    **_COMMON,
}

_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "ValidationErrors": {
        "type": "object",
        "required": ["errors"],
        "properties": {"errors": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
    "Submitted": {
        "type": "object",
        "required": ["id", "state", "url"],
        "properties": {"id": {"type": "string"}, "state": {"type": "string"}, "url": {"type": "string"}},
    },
    "LongRunningRequest": {
        "type": "object",
        "required": ["duration"],
        "properties": {"duration": {"type": "integer", "minimum": MIN_DURATION, "maximum": MAX_DURATION}},
    },
    "PingRequest": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,100}$",
                                 "description": "batch:anything; the task records it as run"}},
    },
    "EmailRequest": {
        "type": "object",
        "required": ["to", "subject", "body"],
        "properties": {
            "to": {
                "description": "One address, several separated by commas, or a list (at most 50)",
                "oneOf": [
                    {"type": "string", "minLength": 3},
                    {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1,
                     "maxItems": 50},
                ],
            },
            "subject": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\r\\n]*$"},
            # The limit is 100 KiB of UTF-8: exact for ASCII; text in other scripts reaches it sooner.
            "body": {"type": "string", "minLength": 1, "maxLength": 100 * 1024,
                     "description": "At most 100 KiB in UTF-8"},
        },
    },
    "Progress": {
        "type": ["object", "null"],
        "properties": {
            "current": {"type": ["integer", "null"]},
            "total": {"type": ["integer", "null"]},
            "percent": {"type": ["integer", "null"]},
        },
    },
    "TaskError": {
        "type": ["object", "null"],
        "required": ["type", "message", "traceback"],
        "properties": {
            "type": {"type": "string"},
            "message": {"type": "string"},
            "traceback": {"type": ["string", "null"]},
        },
    },
    "TaskStatus": {
        "type": "object",
        "required": ["id", "kind", "arguments", "state", "progress", "result", "error", "created_at", "started_at",
                     "finished_at", "worker", "last_heartbeat", "redelivered"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": ["string", "null"], "description": "long-running, email, or another task's name"},
            "arguments": {"type": "object"},
            "state": {"type": "string", "enum": _STATES},
            "progress": _ref("Progress"),
            "result": {"description": "The task's return value once it succeeded, else null"},
            "error": _ref("TaskError"),
            "created_at": {"type": ["string", "null"], "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "worker": {"type": ["string", "null"], "description": "The RQ worker that ran it last"},
            "last_heartbeat": {"type": ["string", "null"],
                               "description": "When that worker last said it was still running it"},
            "redelivered": {"type": "integer", "description": "How often it was run again after a worker died"},
        },
    },
    "TaskSummary": {
        "type": "object",
        "required": ["id", "kind", "state", "progress", "created_at", "finished_at", "url"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": ["string", "null"]},
            "state": {"type": "string"},
            "progress": _ref("Progress"),
            "created_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": ["string", "null"]},
            "url": {"type": "string"},
            "name": {"type": ["string", "null"], "description": "The task's registered name"},
            "queue": {"type": ["string", "null"]},
            "arguments": {"type": ["string", "null"], "description": "Its arguments, shortened to 200 characters"},
            "worker": {"type": ["string", "null"], "description": "The worker that ran it last"},
            "retries": {"type": "integer"},
            "started_at": {"type": ["string", "null"]},
            "runtime": {"type": ["number", "null"], "description": "Seconds its last run took (so far)"},
        },
    },
    "TaskPage": {
        "type": "object",
        "required": ["tasks", "next"],
        "properties": {
            "tasks": {"type": "array", "items": _ref("TaskSummary")},
            "next": {"type": ["string", "null"], "description": "Pass as `cursor` for the next (older) page"},
            "prev": {"type": ["string", "null"], "description": "Pass as `after` for the previous (newer) page"},
        },
    },
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Background jobs",
        "version": "1.0.0",
        "description": "Submit tasks, follow their progress, cancel or retry them. POST bodies are JSON, "
                       "sent with Content-Type: application/json, which is what exempts them from CSRF tokens.",
    },
    "paths": {
        "/api/tasks/long-running": {
            "post": {
                "operationId": "submitLongRunning",
                "summary": "Queue a task that works for `duration` seconds, reporting progress",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("LongRunningRequest")}}},
                "responses": _SUBMITTED,
            }
        },
        "/api/tasks/email": {
            "post": {
                "operationId": "submitEmail",
                "summary": "Queue an email",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EmailRequest")}}},
                "responses": _SUBMITTED,
            }
        },
        "/api/tasks/ping": {
            "post": {
                "operationId": "submitPing",
                "summary": "Queue the smallest task (an end-to-end check); it records its token and returns pong",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PingRequest")}}},
                "responses": _SUBMITTED,
            }
        },
        "/api/tasks": {
            "get": {
                "operationId": "listTasks",
                "summary": "Recent tasks, newest first",
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["", *_STATES]},
                     "description": "Only tasks in this state; empty for any"},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                                "default": DEFAULT_PAGE_SIZE}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"},
                     "description": "The `next` of the previous page: older tasks"},
                    {"name": "after", "in": "query", "schema": {"type": "string"},
                     "description": "The `prev` of the previous page: newer tasks (not with `cursor`)"},
                    {"name": "name", "in": "query", "schema": {"type": "string", "maxLength": 200},
                     "description": "Only tasks of this name"},
                    {"name": "queue", "in": "query", "schema": {"type": "string", "maxLength": 200},
                     "description": "Only tasks sent to this queue"},
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
                     "description": "Only tasks whose arguments contain this text (any case)"},
                    {"name": "id", "in": "query", "schema": {"type": "string", "maxLength": 200},
                     "description": "Only the task with this id"},
                ],
                "responses": {
                    "200": _json(_ref("TaskPage"), "A page of tasks"),
                    "422": _json(_ref("ValidationErrors"), "A parameter is invalid"),
                    **_COMMON,
                },
            }
        },
        "/api/tasks/{task_id}": {
            "get": {
                "operationId": "getTask",
                "summary": "A task's state, progress, result or error",
                "parameters": [_TASK_ID],
                "responses": {
                    "200": _json(_ref("TaskStatus"), "The task's status"),
                    "404": _error("No task has this id"),
                    **_COMMON,
                },
            }
        },
        "/api/tasks/{task_id}/events": {
            "get": {
                "operationId": "taskEvents",
                "summary": "Server-Sent Events: `status` (a TaskStatus) at once and on each change, then `end`",
                "parameters": [_TASK_ID],
                "responses": {
                    "200": {"description": "The event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                    "404": _error("No task has this id"),
                    **_COMMON,
                    "503": _json(
                        {"type": "object", "required": ["error"],
                         "properties": {"error": {"type": "string"}, "poll": {"type": "string"}}},
                        "Redis is unreachable, or this process serves its most streams already: "
                        "poll `poll` instead; retry after the Retry-After header's seconds",
                    ),
                },
            }
        },
        "/api/tasks/{task_id}/cancel": {
            "post": {
                "operationId": "cancelTask",
                "summary": "Stop a waiting or running task",
                "parameters": [_TASK_ID],
                "responses": {
                    "202": _json({"type": "object", "required": ["id", "state"],
                                  "properties": {"id": {"type": "string"}, "state": {"type": "string"}}},
                                 "Cancelled (or it finished in the meantime: `state` says which)"),
                    "400": _error("Sent without Content-Type: application/json and without a CSRF token"),
                    "404": _error("No task has this id"),
                    "409": _error("The task has already finished"),
                    **_COMMON,
                },
            }
        },
        "/api/tasks/{task_id}/retry": {
            "post": {
                "operationId": "retryTask",
                "summary": "Submit a failed or cancelled task again, as a new task",
                "parameters": [_TASK_ID],
                "responses": {
                    "202": _json(_ref("Submitted"), "The new task"),
                    "400": _error("Sent without Content-Type: application/json and without a CSRF token"),
                    "404": _error("No task has this id"),
                    "409": _error("The task neither failed nor was cancelled"),
                    "429": _error("Over SUBMIT_RATE_LIMIT or MAX_QUEUED_TASKS; retry after Retry-After"),
                    **_COMMON,
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            }
        },
    },
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {
            "basicAuth": {"type": "http", "scheme": "basic"},
            "bearerAuth": {"type": "http", "scheme": "bearer"},
        },
    },
    # Outside development only; in development the API is open (see the README's Security section).
    "security": [{}, {"basicAuth": []}, {"bearerAuth": []}],
}


def openapi_document(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The API's OpenAPI 3.1 document, with the email limits this deployment is configured with."""
    document = copy.deepcopy(_DOCUMENT)
    if config is not None:
        email = document["components"]["schemas"]["EmailRequest"]["properties"]
        recipients = config["MAIL_MAX_RECIPIENTS"]
        email["to"]["description"] = f"One address, several separated by commas, or a list (at most {recipients})"
        email["to"]["oneOf"][1]["maxItems"] = recipients
        email["subject"]["maxLength"] = config["MAIL_MAX_SUBJECT_LENGTH"]
        email["body"]["maxLength"] = config["MAIL_MAX_BODY_BYTES"]
        email["body"]["description"] = f"At most {config['MAIL_MAX_BODY_BYTES']} bytes in UTF-8"
    return document
