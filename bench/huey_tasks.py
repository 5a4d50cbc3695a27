"""The no-op task for Huey 3.5 (a benchmark-only extra, bench/requirements.txt), results in Redis."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from huey import RedisHuey

_url = urlparse(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
huey = RedisHuey("bench", host=_url.hostname, port=_url.port or 6379, db=int(_url.path.strip("/") or 0))


@huey.task()
def noop(x):
    return x
