"""JSON on the wire, the way Celery's default serializer (kombu's ``json``) does it.

Tuples become lists and non-string dict keys become strings, while ``datetime``, ``date``,
``time``, ``Decimal``, ``UUID`` and ``bytes`` travel inside ``{"__type__", "__value__"}``
envelopes and come back as themselves. Anything else is refused with :class:`EncodeError`
before a job is written, so a bad argument never reaches Redis. Nothing here pickles.
"""

from __future__ import annotations

import base64
import builtins
import json
import sys
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from .exceptions import DecodeError, EncodeError

_PLAIN = (str, int, float, bool, type(None))


def _envelope(marker: str, value: Any) -> dict:
    return {"__type__": marker, "__value__": value}


def _encode_special(obj: Any) -> Any:
    # datetime before date: a datetime is also a date.
    if isinstance(obj, datetime):
        return _envelope("datetime", obj.isoformat())
    if isinstance(obj, date):
        return _envelope("date", obj.isoformat())
    if isinstance(obj, time):
        return _envelope("time", obj.isoformat())
    if isinstance(obj, Decimal):
        return _envelope("decimal", str(obj))
    if isinstance(obj, uuid.UUID):
        return _envelope("uuid", {"hex": obj.hex})
    if isinstance(obj, (bytes, bytearray)):
        try:
            return _envelope("bytes", bytes(obj).decode("utf-8"))
        except UnicodeDecodeError:
            return _envelope("base64", base64.b64encode(obj).decode("ascii"))
    reducer = getattr(obj, "__json__", None)
    if reducer is not None:
        return to_wire(reducer())
    raise EncodeError(f"Object of type {type(obj).__name__} is not JSON serializable: {obj!r:.80}")


def _encode_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, (int, float)):
        return str(int(key)) if isinstance(key, int) else repr(key)
    raise EncodeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def to_wire(obj: Any) -> Any:
    """Return ``obj`` as plain JSON data (lists, dicts, strings, numbers), or raise EncodeError."""
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, (list, tuple)):
        return [to_wire(item) for item in obj]
    if isinstance(obj, dict):
        return {_encode_key(key): to_wire(value) for key, value in obj.items()}
    return _encode_special(obj)


_DECODERS = {
    "datetime": datetime.fromisoformat,
    "date": lambda value: datetime.fromisoformat(value).date(),
    "time": time.fromisoformat,
    "decimal": Decimal,
    "uuid": lambda value: uuid.UUID(**value),
    "bytes": lambda value: value.encode("utf-8"),
    "base64": lambda value: base64.b64decode(value.encode("ascii")),
}


def from_wire(obj: Any) -> Any:
    """Undo :func:`to_wire`: envelopes become ``datetime``, ``Decimal``, ``UUID``... again."""
    if isinstance(obj, list):
        return [from_wire(item) for item in obj]
    if isinstance(obj, dict):
        if len(obj) == 2 and "__type__" in obj and "__value__" in obj:
            decoder = _DECODERS.get(obj["__type__"])
            if decoder is None:
                raise DecodeError(f"unsupported type envelope {obj['__type__']!r}")
            return decoder(obj["__value__"])
        return {key: from_wire(value) for key, value in obj.items()}
    return obj


def utf8(text: str) -> bytes:
    """``text`` as UTF-8 for Redis, or :class:`EncodeError` (a lone surrogate such as ``"\\ud800"``)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"cannot be stored as UTF-8 JSON: {exc}") from None


def scrub(value: Any) -> Any:
    """``value`` with every string made storable: what UTF-8 cannot encode is written as ``\\udXXX``."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, dict):
        return {scrub(key): scrub(item) for key, item in value.items()}
    return value


def dumps(obj: Any) -> str:
    """Encode ``obj`` to a compact JSON string with Celery's type envelopes."""
    return json.dumps(to_wire(obj), separators=(",", ":"), ensure_ascii=False)


def loads(data: str | bytes | None) -> Any:
    """Decode a string written by :func:`dumps`."""
    if data is None:
        return None
    try:
        return from_wire(json.loads(data))
    except ValueError as exc:
        raise DecodeError(str(exc)) from exc


def exception_to_wire(exc: BaseException) -> dict:
    """Describe an exception as Celery's JSON backends do: type, module and arguments."""
    try:
        message = to_wire(list(exc.args))
    except EncodeError:
        message = [str(exc)]
    return {"exc_type": type(exc).__qualname__, "exc_message": message, "exc_module": type(exc).__module__}


def is_exception_wire(value: Any) -> bool:
    return isinstance(value, dict) and "exc_type" in value and "exc_message" in value


def exception_from_wire(value: dict) -> BaseException:
    """Rebuild an exception: the original class when it is importable here, else a stand-in.

    The stand-in keeps the type's name and module, so ``type(exc).__name__`` and ``str(exc)``
    read as on the worker even where the class does not exist.
    """
    name, module_name = value["exc_type"], value.get("exc_module") or "builtins"
    args = from_wire(value.get("exc_message") or [])
    if not isinstance(args, list):
        args = [args]
    module = builtins if module_name == "builtins" else sys.modules.get(module_name)
    cls = _lookup_qualname(module, name) if module is not None else None
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        cls = _stand_in_class(name, module_name)
    try:
        return cls(*args)
    except Exception:  # a class whose __init__ wants other arguments than its args
        return _unrebuildable(cls, list(args))


class UnpickleableExceptionWrapper(Exception):
    """Raised in place of a task's exception whose class cannot be made again from its arguments.

    Celery's name and fields (``exc_module``, ``exc_cls_name``, ``exc_args``, ``text``); its
    ``__init__`` would not take its own ``args`` back (the case Celery's pickle check catches).
    """

    def __init__(self, exc_module: str, exc_cls_name: str, exc_args: Any, text: str | None = None) -> None:
        self.exc_module, self.exc_cls_name, self.exc_args = exc_module, exc_cls_name, tuple(exc_args)
        self.text = text or f"{exc_cls_name}({', '.join(map(repr, self.exc_args))})"
        super().__init__(exc_module, exc_cls_name, self.exc_args, self.text)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def from_exception(cls, exc: BaseException) -> UnpickleableExceptionWrapper:
        return cls(type(exc).__module__, type(exc).__name__, exc.args, str(exc))


_WRAPPED: dict[type, type | None] = {}


def _unrebuildable(cls: type, args: list) -> BaseException:
    """The exception of a class whose ``__init__`` refuses its own args: an instance of the class
    (so ``except TheClass`` still catches it) that is also Celery's :class:`UnpickleableExceptionWrapper`."""
    if cls not in _WRAPPED:
        try:
            _WRAPPED[cls] = type(cls.__name__, (cls, UnpickleableExceptionWrapper),
                                 {"__module__": cls.__module__, "__str__": UnpickleableExceptionWrapper.__str__})
        except TypeError:  # incompatible layouts (a C-level base): the wrapper alone
            _WRAPPED[cls] = None
    hybrid = _WRAPPED[cls]
    if hybrid is None:
        return UnpickleableExceptionWrapper(cls.__module__, cls.__name__, args)
    exc = hybrid.__new__(hybrid)
    exc.args = tuple(args)
    exc.exc_module, exc.exc_cls_name, exc.exc_args = cls.__module__, cls.__name__, tuple(args)
    exc.text = f"{cls.__name__}({', '.join(map(repr, args))})"
    return exc


def _lookup_qualname(module: Any, qualname: str) -> Any:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


_STAND_INS: dict[tuple[str, str], type] = {}


def _stand_in_class(name: str, module_name: str) -> type:
    key = (module_name, name)
    if key not in _STAND_INS:
        cls = type(name.rsplit(".", 1)[-1], (Exception,), {"__module__": module_name})
        _STAND_INS[key] = cls
    return _STAND_INS[key]
