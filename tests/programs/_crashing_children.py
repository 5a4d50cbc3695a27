"""A prefork supervisor whose work processes all die as they start: ``python _crashing_children.py FILE``.

Not a Celery program (the leading underscore keeps it out of the parity test).

Each start appends a line to FILE; the test counts them.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

from app.celery_compat import Celery
from app.celery_compat.worker import Supervisor


def crash(slot: object, index: int) -> None:
    with open(sys.argv[1], "a") as starts:
        starts.write(f"{index}\n")
    os._exit(1)


if __name__ == "__main__":
    app = Celery("crashing", broker="redis://127.0.0.1:1/0", set_as_current=False)
    options = SimpleNamespace(concurrency=1, burst=False, grace_period=1.0)
    sys.exit(Supervisor(app, options, crash).run())
