"""Kept for imports of the previous layout (``app/web/api.py`` reads ``META_PREFIX``).

The backend is :mod:`.backends.redis`; pages and APIs read through :mod:`.view`, and keys come
from :mod:`.keys`. Remove this module once nothing imports it.
"""

from __future__ import annotations

from .backends.redis import META_PREFIX as META_PREFIX
from .backends.redis import RedisBackend as RedisBackend
from .backends.redis import meta_key as meta_key
from .backends.redis import pending_meta as pending_meta

__all__ = ["META_PREFIX", "RedisBackend", "meta_key", "pending_meta"]
