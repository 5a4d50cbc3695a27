"""Celery's ``celery.utils.serialization`` names a program may catch or call."""

from __future__ import annotations

from ..serialization import UnpickleableExceptionWrapper as UnpickleableExceptionWrapper
from ..serialization import exception_from_wire, exception_to_wire

__all__ = ["UnpickleableExceptionWrapper", "exception_from_wire", "exception_to_wire"]
