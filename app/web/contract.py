"""One decorated function per API endpoint: its route, its request model, its documented answers.

``Contract.route`` registers the view on the blueprint, validates the JSON body and the query
string into the operation's models before the view runs (a view receives ``body=`` and
``query=``), and records the operation, from which :mod:`app.web.openapi` writes the document.
Validation errors become :class:`app.web.forms.InvalidForm` (the API's ``422 {"errors": ...}``),
a body that is not a JSON object :class:`MalformedRequest` (400).

Why not flask-openapi3 or spectree: both validate in their own wrapper and answer in their own
error format, while this API's 400/422 wording, its CSRF rule for JSON POSTs, its auth and rate
limit hooks and its ``task_id`` converter are the app's; the document also varies with the
deployment's settings (email limits, whether auth is required). pydantic does the work that
matters (validation, JSON Schema); what is left is this module and a 150-line generator.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ValidationError

from app.web import forms
from app.web.forms import InvalidForm


class MalformedRequest(ValueError):
    """Raised when a request body is not a JSON object."""


@dataclass(frozen=True)
class Answer:
    """One documented response: its model (None: no body) and the headers it always carries."""

    description: str
    model: type[BaseModel] | None = None
    headers: tuple[str, ...] = ()
    media_type: str = "application/json"
    #: Several models, any of which the body (or, for an event stream, each event) may be.
    one_of: tuple[type[BaseModel], ...] = ()


@dataclass(frozen=True)
class Operation:
    """An endpoint as the document describes it."""

    method: str
    rule: str
    endpoint: str
    summary: str
    description: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    answers: Mapping[int, Answer]


@dataclass
class Contract:
    """The operations of one blueprint, in the order they were declared."""

    blueprint: Blueprint
    operations: list[Operation] = field(default_factory=list)

    def route(self, method: str, rule: str, *, answers: Mapping[int, Answer], body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register the decorated view for ``method rule``, validating ``body`` and ``query`` before it runs."""

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            summary, _, description = (view.__doc__ or "").strip().partition("\n")

            @functools.wraps(view)
            def endpoint(**path: Any) -> Any:
                if body is not None:
                    path["body"] = validate(body, json_object(allow_empty=getattr(body, "empty_body_allowed", False)))
                if query is not None:
                    path["query"] = validate(query, request.args.to_dict())
                return view(**path)

            self.blueprint.add_url_rule(rule, view_func=endpoint, methods=[method])
            self.operations.append(Operation(method, rule, view.__name__, summary.strip(),
                                             " ".join(description.split()), body, query, answers))
            return endpoint

        return decorate


def json_object(*, allow_empty: bool = False) -> dict[str, Any]:
    """The request's JSON object body; raise :class:`MalformedRequest` (400) for anything else."""
    if allow_empty and not request.get_data(cache=True):
        return {}
    # Parsed here, not by request.get_json(silent=True): its None for every error made a 10,000-digit
    # number read as "not a JSON object". The content type was checked before (the API's CSRF rule).
    try:
        data = json.loads(request.get_data(cache=True))
    except RecursionError:  # the parser's own limit, near a thousand levels
        raise MalformedRequest(f"the request body nests deeper than {forms.MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        why = _json_error(exc)
        raise MalformedRequest(f"the request body must be a JSON object, and is not valid JSON: {why}") from None
    if not isinstance(data, dict):
        raise MalformedRequest("the request body must be a JSON object")
    try:
        forms.check_json_document(data)  # nesting (400), and text no UTF-8 can carry (422 naming the field)
    except forms.TooDeep as exc:
        raise MalformedRequest(str(exc)) from None
    return data


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    if "digits" in str(exc):  # Python's guard against quadratic int parsing (sys.get_int_max_str_digits)
        return f"a number has more than {sys.get_int_max_str_digits()} digits"
    return "it is not UTF-8, UTF-16 or UTF-32 text"


def validate(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    """``data`` as an instance of ``model``, or raise :class:`InvalidForm` naming each field and why."""
    try:
        return model.model_validate(data, context={"config": current_app.config})
    except ValidationError as exc:
        raise InvalidForm(_messages(exc)) from None


def _messages(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "body"
        if error["type"] == "missing":
            message = "is required"
        else:
            message = error["msg"][:1].lower() + error["msg"][1:]
        errors.setdefault(name, message)  # the first reason per field, as the forms show it
    return errors
