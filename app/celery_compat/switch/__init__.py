"""The opt-in import switch: ``import celery`` (and kombu's queue names) resolve to this adapter.

Off by default, so the real ``celery`` stays importable next to the adapter (Celery's parity tests
need both). Turned on by ``install()``: the runner calls it for ``CELERY_COMPAT=1`` or ``--shim``,
and a program that starts itself writes ``import app.celery_compat.shim`` (``celery_compat.shim``
when installed) before its first ``import celery``.

A finder first on ``sys.meta_path`` answers for ``celery``, ``celery.*``, ``kombu`` and ``kombu.*``:
``celery.X`` is this package's ``X`` (``celery.result`` is :mod:`..result`, ``celery.contrib.pytest``
is :mod:`..contrib.pytest`), plus small stand-ins for ``celery.utils.log`` and ``kombu.Queue`` /
``kombu.Exchange``. A Celery module the adapter does not provide fails to import with an error
naming it, never with a half-working module. Without Django installed, ``django.conf:settings``
is the plain settings module ``DJANGO_SETTINGS_MODULE`` names, for ``config_from_object``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

#: The adapter's package: ``app.celery_compat`` in this repository, ``celery_compat`` when installed.
PACKAGE = __name__.rpartition(".")[0]
#: The environment variable the runner reads: ``CELERY_COMPAT=1`` turns the switch on.
ENV_VAR = "CELERY_COMPAT"
#: Names with no module of the same tail in the adapter: their stand-ins, under this package.
STAND_INS = {
    "celery.utils": "utils",
    "celery.utils.log": "utils.log",
    "kombu": "kombu",
    "django": "django",
    "django.conf": "django.conf",
}
#: Top-level names the finder answers for (django only while Django is not installed).
ROOTS = ("celery", "kombu", "django")


def enabled(environ: Mapping[str, str]) -> bool:
    """Does ``environ`` ask for the switch (``CELERY_COMPAT`` set to 1, true, yes or on)?"""
    return environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def target_of(fullname: str) -> str | None:
    """The adapter's module that stands for ``fullname``, or None if the switch leaves it alone.

    Raises ModuleNotFoundError naming a Celery or kombu module the adapter does not provide.
    """
    root = fullname.split(".")[0]
    if root not in ROOTS or (root == "django" and _django_installed()):
        return None
    if fullname in STAND_INS:
        return f"{__name__}.{STAND_INS[fullname]}"
    if root == "celery":
        candidate = PACKAGE + fullname[len("celery"):]
        if _exists(candidate):
            return candidate
    raise ModuleNotFoundError(
        f"No module named {fullname!r}: the Celery import switch maps celery to {PACKAGE}, "
        f"which does not provide {fullname} (see README, Coming from Celery)", name=fullname)


class _AliasLoader(importlib.abc.Loader):
    """Loads a name as an existing module of the adapter: the same object, under two names."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._spec: Any = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias's spec on the module: give it back its own.
        module.__spec__ = self._spec


class CeleryFinder(importlib.abc.MetaPathFinder):
    """The ``sys.meta_path`` entry of the switch."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        module = target_of(fullname)
        if module is None:
            return None
        is_package = hasattr(importlib.import_module(module), "__path__")
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(module), is_package=is_package)


_finder = CeleryFinder()


def install() -> None:
    """Turn the switch on in this process (idempotent).

    Raises RuntimeError if the real celery is already imported: two Celerys in one process
    would send half the tasks where no worker listens.
    """
    real = sys.modules.get("celery")
    if real is not None and real is not sys.modules.get(PACKAGE):
        raise RuntimeError("the real celery is already imported: turn the Celery import switch on "
                           f"(import {PACKAGE}.shim) before anything imports celery")
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Turn the switch off and forget the aliases (for tests)."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [name for name in sys.modules if name.split(".")[0] in ROOTS]:
        if getattr(sys.modules[name], "__name__", "").startswith(PACKAGE):
            del sys.modules[name]


def installed() -> bool:
    return _finder in sys.meta_path


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _django_installed() -> bool:
    return importlib.machinery.PathFinder.find_spec("django") is not None
