"""A Celery project for the command-line tests, written against Celery (run with the switch on)."""

import os
import time

from celery import Celery

app = Celery("cliproj", broker=os.environ["DROPIN_BROKER"])
app.conf.beat_schedule = {"tick": {"task": "cliproj.add", "schedule": 0.5, "args": (1, 1)}}


@app.task
def add(x, y):
    return x + y


@app.task(bind=True)
def progress(self, n):
    for i in range(n):
        self.update_state(state="PROGRESS", meta={"current": i + 1, "total": n})
        time.sleep(0.5)
    return {"current": n, "total": n}


@app.task
def boom():
    raise ValueError("boom")
