"""The OpenAPI 3.1 document of the JSON API, served at ``/api/openapi.json``, generated from the
operations :class:`app.web.contract.Contract` recorded and the models in :mod:`app.web.schemas`.

Nothing here describes an endpoint by hand: a new endpoint is a model and a decorated view, and
appears here by itself. ``tests/test_openapi.py`` fuzzes the API from this document with all of
schemathesis' checks.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.config import DEVELOPMENT
from app.web.answers import Error
from app.web.contract import Answer, Contract, Operation

REF = "#/components/schemas/{model}"

#: The headers answers carry, by name; an Answer lists those it always sends.
HEADERS: dict[str, dict[str, Any]] = {
    "Location": {"description": "The new task's status URL", "required": True, "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before trying again", "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "WWW-Authenticate": {"description": "The schemes to log in with (Basic, Bearer)", "required": True,
                         "schema": {"type": "string"}},
    "Allow": {"description": "The methods this path takes", "required": True, "schema": {"type": "string"}},
}

#: The path parameter of every ``<task_id:task_id>`` rule, as app.web.api.TaskIdConverter matches it.
TASK_ID = {"type": "string", "pattern": "^(?!(?:long-running|email|ping)$)[A-Za-z0-9_-]+$"}


def _common(method: str) -> dict[int, Answer]:
    answers = {
        401: Answer("Outside development: no valid basic-auth login or bearer token", Error, ("WWW-Authenticate",)),
        405: Answer("Wrong method", Error, ("Allow",)),
        503: Answer("Redis is unreachable or out of memory; retry after Retry-After", Error, ("Retry-After",)),
    }
    if method == "POST":
        answers[400] = Answer("The body is not a JSON object (or nests too deep), or was not sent as "
                              "application/json", Error)
        answers[413] = Answer("The body is larger than the server accepts (MAX_CONTENT_LENGTH)", Error)
    return answers


def _models(operations: list[Operation]) -> list[type[BaseModel]]:
    seen: dict[type[BaseModel], None] = {}
    for operation in operations:
        if operation.body is not None:
            seen[operation.body] = None
        for answer in [*_common(operation.method).values(), *operation.answers.values()]:
            for model in (answer.model, *answer.one_of):
                if model is not None:
                    seen[model] = None
    return list(seen)


def _components(models: list[type[BaseModel]], config: Mapping[str, Any]) -> dict[str, Any]:
    _, top = models_json_schema([(model, "validation") for model in models], ref_template=REF)
    schemas = top.get("$defs", {})
    for model in models:
        hook = getattr(model, "document", None)
        if hook is not None and model.__name__ in schemas:
            hook(schemas[model.__name__], config)
    return schemas


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _response(answer: Answer) -> dict[str, Any]:
    response: dict[str, Any] = {"description": answer.description}
    if answer.headers:
        response["headers"] = {name: HEADERS[name] for name in answer.headers}
    if answer.one_of:
        response["content"] = {answer.media_type: {"schema": {"oneOf": [_ref(model) for model in answer.one_of]}}}
    elif answer.model is not None:
        response["content"] = {answer.media_type: {"schema": _ref(answer.model)}}
    return response


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    parameters = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        prop.pop("title", None)
        description = prop.pop("description", None)
        parameter = {"name": name, "in": "query", "required": name in schema.get("required", ()), "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    names = re.findall(r"<(?:[^:>]+:)?([^>]+)>", rule)
    path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)
    return path, [{"name": name, "in": "path", "required": True, "schema": TASK_ID} for name in names]


def _operation(operation: Operation) -> dict[str, Any]:
    path, parameters = _path(operation.rule)
    if operation.query is not None:
        parameters += _query_parameters(operation.query)
    answers = {**_common(operation.method), **operation.answers}
    described: dict[str, Any] = {"operationId": operation.endpoint, "summary": operation.summary}
    if operation.description:
        described["description"] = operation.description
    if parameters:
        described["parameters"] = parameters
    if operation.body is not None:
        described["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(operation.body)}}}
    described["responses"] = {str(code): _response(answers[code]) for code in sorted(answers)}
    return described


def openapi_document(contract: Contract, config: Mapping[str, Any]) -> dict[str, Any]:
    """The API's OpenAPI 3.1 document for a deployment with ``config`` (its email limits, its auth)."""
    prefix = contract.blueprint.url_prefix or ""
    paths: dict[str, dict[str, Any]] = {}
    for operation in contract.operations:
        path, _ = _path(prefix + operation.rule)
        paths.setdefault(path, {})[operation.method.lower()] = _operation(operation)
    open_api = config.get("APP_ENV", DEVELOPMENT) == DEVELOPMENT
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "Background jobs",
            "version": "1.0.0",
            "description": "Submit tasks, follow their progress, cancel or retry them. POST bodies are JSON, sent "
                           "with Content-Type: application/json, which is what exempts them from CSRF tokens. "
                           "Outside development every call needs a basic-auth login or a bearer token.",
        },
        "paths": paths,
        "components": {
            "schemas": _components(_models(contract.operations), config),
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "bearerAuth": {"type": "http", "scheme": "bearer"},
            },
        },
        # In development the API is open: an empty requirement says credentials are optional there.
        "security": [*([{}] if open_api else []), {"basicAuth": []}, {"bearerAuth": []}],
    })
