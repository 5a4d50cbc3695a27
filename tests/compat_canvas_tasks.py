"""Tasks that reshape the canvas they run in (``replace``, ``add_to_chord``), for the canvas tests."""

from __future__ import annotations

from app.celery_compat import chain, group
from tests.compat_tasks import add, app, mul, record, tsum


@app.task(bind=True)
def replaced_by_chain(self, x):
    """Becomes ``add(x, 1) | mul(10)`` under its own id."""
    return self.replace(chain(add.s(x, 1), mul.s(10)))


@app.task(bind=True)
def replaced_by_group(self, x):
    """Becomes ``group(add(x, 1), add(x, 2))``: its result is the group's list."""
    return self.replace(group(add.s(x, 1), add.s(x, 2)))


@app.task(bind=True)
def adds_to_its_chord(self, x):
    """Adds ``add(x, 100)`` and ``group(...) | tsum`` to the chord it is a header member of."""
    self.add_to_chord(add.s(x, 100))
    self.add_to_chord(group(add.s(1, 1), add.s(2, 2)) | tsum.s())
    return x


@app.task
def records_request_and_error(request, exc, traceback, key):
    """An errback in Celery's (request, exc, traceback) form."""
    record(key, f"{request.id} {type(exc).__name__}")


@app.task(bind=True)
def delivery_priority(self):
    """The priority the message arrived with."""
    return self.request.delivery_info["priority"]
