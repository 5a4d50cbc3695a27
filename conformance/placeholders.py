"""Stand-ins for Celery names the adapter lacks, so one missing name fails only the tests that use it.

The import rewrite (``rewrite.py``) turns ``from celery.x import a, b`` into a call of
:func:`adapter_names` when ``app.celery_compat.x`` lacks ``a`` or ``b``. Each missing name becomes
a :class:`Missing` placeholder, clearly labelled ``adapter lacks celery.x.a``:

* while the test modules are being imported (collection), a placeholder is inert: calling it,
  decorating with it, reading an attribute or subclassing it gives another placeholder, so a
  module that decorates a function with a missing name (``@inspect_command(...)``) still imports;
* from the first test on, any use raises :class:`AdapterMissing` naming the Celery name: that
  test fails, the others in its file still run.

Nothing here pretends to work: a placeholder never returns a value a test could assert on.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Set by the conformance plugin when the first test starts; before that, uses are inert.
collecting = True
#: Every Celery name that was replaced by a placeholder in this run ("celery.x.a").
replaced: set[str] = set()


class AdapterMissing(AttributeError):
    """Raised when a test uses a Celery name that app.celery_compat does not provide.

    An ``AttributeError``, as a missing attribute of the real module would raise, so
    ``getattr(x, name, default)`` and ``hasattr`` behave as they would on a module lacking it.
    """


class _MissingBase:
    """What a class inherits when its base is missing: instantiating it raises."""

    _missing_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AdapterMissing(f"adapter lacks {self._missing_name} (base class of {type(self).__name__})")


class Missing:
    """A placeholder for a Celery name the adapter lacks (see the module docstring)."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _use(self, how: str) -> AdapterMissing:
        return AdapterMissing(f"adapter lacks {self._name} (used: {how})")

    def __repr__(self) -> str:
        return f"<placeholder: adapter lacks {self._name}>"

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            # Protocols and tools (copy, pickle, pytest's fixture scan) probe private names: no placeholder.
            raise AttributeError(attr)
        if collecting:
            return Missing(f"{self._name}.{attr}")
        raise self._use(f".{attr}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if collecting:
            return Missing(f"{self._name}(...)")
        raise self._use("call")

    def __mro_entries__(self, bases: tuple) -> tuple:
        return (type(f"Missing_{self._name.rsplit('.', 1)[-1]}", (_MissingBase,), {"_missing_name": self._name}),)

    def __setattr__(self, attr: str, value: Any) -> None:
        raise self._use(f"set .{attr}")

    def _raise(self, *args: Any, **kwargs: Any) -> Any:
        raise self._use("value")

    __bool__ = __iter__ = __len__ = __contains__ = __getitem__ = __setitem__ = _raise
    __str__ = __int__ = __float__ = __index__ = __enter__ = __exit__ = __fspath__ = _raise
    __eq__ = __lt__ = __gt__ = __add__ = __sub__ = __or__ = __and__ = __await__ = _raise  # type: ignore[assignment]
    __instancecheck__ = __subclasscheck__ = _raise  # isinstance(x, Missing) names what is missing
    __hash__ = object.__hash__  # pytest keeps objects in sets and dicts; hashing is no use of the name


_ABSENT = object()


def adapter_names(module: str, celery_module: str, *names: str) -> Any:
    """The adapter's ``module.<name>`` for each name, or a placeholder where it lacks one.

    Returns one object for one name (``x = adapter_names(m, c, "x")``) or a tuple for several.
    """
    try:
        found = importlib.import_module(module)
    except ImportError:
        found = None
    values = []
    for name in names:
        value = getattr(found, name, _ABSENT) if found is not None else _ABSENT
        if value is _ABSENT and found is not None:
            try:
                value = importlib.import_module(f"{module}.{name}")  # a submodule: `from celery import states`
            except ImportError:
                value = _ABSENT
        if value is _ABSENT:
            replaced.add(f"{celery_module}.{name}")
            value = Missing(f"{celery_module}.{name}")
        values.append(value)
    return values[0] if len(values) == 1 else tuple(values)


def adapter_module(module: str, celery_module: str) -> Any:
    """The adapter's module for ``import celery.x as y``, or a placeholder when it has none."""
    try:
        return importlib.import_module(module)
    except ImportError:
        replaced.add(celery_module)
        return Missing(celery_module)
