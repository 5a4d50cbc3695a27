"""Celery's backend base classes, as far as code outside the adapter names them.

``BaseKeyValueStoreBackend`` is what Celery's Redis backend derives from; projects (and
Celery's own tests) check ``isinstance(app.backend, BaseKeyValueStoreBackend)``.
"""

from __future__ import annotations

from typing import Any


class BaseKeyValueStoreBackend:
    """A result backend that keeps each result under its own key (Redis here)."""

    def _apply_chord_incr(self, *args: Any, **kwargs: Any) -> None:
        """Celery's generic chord counter; the Redis backend counts chords itself (``chord_part``)."""
        raise NotImplementedError("_apply_chord_incr: the Redis backend counts chords with chord_part")
