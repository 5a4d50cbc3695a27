"""Finding the Celery app that ``-A`` names, the way ``celery -A`` finds it.

Celery's forms all work: ``proj`` (a module or package holding ``app`` or ``celery``, or any
Celery instance, else its ``proj.celery`` submodule), ``proj.celery``, ``proj:app`` and
``proj.module:attribute``. Whatever goes wrong ends in :class:`AppNotFound` with one line
naming the module and the reason, which the commands print instead of a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from types import ModuleType
from typing import Any

from ..app.base import Celery


class AppNotFound(Exception):
    """Raised when ``-A`` names no module that imports, or a module holding no Celery app."""


def find_app(spec: str) -> Celery:
    """The Celery app ``spec`` names (see the module's docstring), or :class:`AppNotFound`."""
    # `celery -A proj` finds proj in the current directory, as `python -m` does.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, colon, attribute = spec.partition(":")
    if colon:
        found = getattr(_import(module_name, spec), attribute, None)
        if found is None:
            raise AppNotFound(f"-A {spec}: module {module_name!r} has no attribute {attribute!r}")
        return _checked(found, spec)
    try:
        found = _import(module_name, spec)
    except AppNotFound:
        # `proj.app` may be an attribute rather than a module.
        parent, _, attribute = module_name.rpartition(".")
        found = getattr(_import(parent, spec), attribute, None) if parent and _importable(parent) else None
        if found is None:
            raise
    return _checked(_search(found, spec) if isinstance(found, ModuleType) else found, spec)


def _search(module: ModuleType, spec: str) -> Any:
    """Celery's order: ``module.app``, ``module.celery``, then ``module.celery`` the submodule, then any app."""
    for name in ("app", "celery"):
        found = getattr(module, name, None)
        if _is_celery(found):
            return found
    if hasattr(module, "__path__") and _importable(f"{module.__name__}.celery"):
        return _search(_import(f"{module.__name__}.celery", spec), spec)
    for found in vars(module).values():
        if _is_celery(found):
            return found
    raise AppNotFound(f"-A {spec}: module {module.__name__!r} holds no Celery app "
                      "(looked for `app`, `celery`, a `celery` submodule, and any Celery instance)")


def _checked(found: Any, spec: str) -> Celery:
    if isinstance(found, Celery):
        return found
    if _is_celery(found):
        raise AppNotFound(f"-A {spec}: the app is a real celery.Celery, not the adapter's: run with the switch "
                          "(CELERY_COMPAT=1 or --shim) so that `import celery` gives the adapter")
    raise AppNotFound(f"-A {spec}: {type(found).__name__} object is not a Celery app")


def _is_celery(value: Any) -> bool:
    return any(cls.__name__ == "Celery" for cls in type(value).__mro__)


def _importable(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def _import(module_name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        where = f" (while importing {module_name!r})" if exc.name != module_name else ""
        raise AppNotFound(f"-A {spec}: no module named {exc.name!r}{where}") from exc
    except Exception as exc:  # noqa: BLE001 - any error in the user's module becomes one line
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        raise AppNotFound(f"-A {spec}: importing {module_name!r} raised {type(exc).__name__}: {exc} "
                          f"({frame.filename}:{frame.lineno})") from exc
