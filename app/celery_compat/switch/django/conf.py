"""``django.conf.settings`` without Django: the module ``DJANGO_SETTINGS_MODULE`` names, read lazily."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

__all__ = ["settings"]


class LazySettings:
    """Django's lazy settings object, reduced to a plain module's attributes."""

    def _module(self) -> ModuleType:
        name = os.environ.get("DJANGO_SETTINGS_MODULE")
        if not name:
            raise ImportError("django.conf.settings: DJANGO_SETTINGS_MODULE is not set (Django is not installed, "
                              "so the settings are the plain module it names)")
        return importlib.import_module(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._module(), name)

    def __dir__(self) -> list[str]:
        return [name for name in dir(self._module()) if name.isupper()]


settings = LazySettings()
