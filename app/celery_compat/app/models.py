"""``@app.task(pydantic=True)``: Pydantic models in and out of a task, as Celery 5.7 does it.

In the worker, each argument annotated with a model class is validated into that model
(``model_validate``), and a model the task returns is stored as ``model_dump()``. On the way
in, a caller may pass model instances: they travel as JSON (``model_dump(mode="json")``).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

# pydantic is imported by the functions, so that only programs with pydantic=True tasks need it.


def _is_model(annotation: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def pydantic_wrapper(fun: Callable, strict: bool = False, context: dict | None = None,
                     dump_kwargs: dict | None = None) -> Callable:
    """``fun`` with model arguments validated and a model result dumped."""
    from pydantic import BaseModel

    signature = inspect.signature(fun)
    hints: dict[str, Any] | None = None

    def annotations() -> dict[str, Any]:
        # Resolved at the first call: a string annotation ("Model", or __future__ annotations)
        # may name a class defined after the task.
        nonlocal hints
        if hints is None:
            try:
                hints = typing.get_type_hints(fun)
            except (NameError, TypeError):
                hints = {name: p.annotation for name, p in signature.parameters.items()}
        return hints

    @functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        for name, value in bound.arguments.items():
            annotation = annotations().get(name)
            if _is_model(annotation) and not isinstance(value, annotation):
                bound.arguments[name] = annotation.model_validate(value, strict=strict, context=context)
        result = fun(*bound.args, **bound.kwargs)
        return result.model_dump(**(dump_kwargs or {})) if isinstance(result, BaseModel) else result

    return wrapper


def dump_models(args: Any, kwargs: Any) -> tuple[Any, Any]:
    """The call's arguments with model instances as JSON-ready dicts."""
    from pydantic import BaseModel

    def dump(value: Any) -> Any:
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value

    new_args = [dump(value) for value in args] if args is not None else None
    new_kwargs = {key: dump(value) for key, value in kwargs.items()} if kwargs is not None else None
    return new_args, new_kwargs
