"""Arguments and results travel as JSON: which Python types survive the trip, and which are refused."""

import os
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from celery import Celery

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("json_types", broker=REDIS_URL, backend=REDIS_URL)

WHEN = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
NAIVE = datetime(2024, 1, 2, 3, 4, 5)
DAY = date(2024, 1, 2)
PRICE = Decimal("19.90")
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@app.task
def echo(value):
    return value


@app.task
def type_names(*args, **kwargs):
    """What the task itself receives, by type."""
    return {"args": [type(arg).__name__ for arg in args],
            "kwargs": {key: type(value).__name__ for key, value in sorted(kwargs.items())}}


@app.task
def returns_set():
    return {1, 2}


def main():
    for label, value in [
        ("tuple", (1, 2)),
        ("nested tuple", {"pair": (1, (2, 3))}),
        ("int keys", {1: "a", 2: "b"}),
        ("none bool float", [None, True, 1.5]),
        ("unicode", "héllo ✓"),
        ("aware datetime", WHEN),
        ("naive datetime", NAIVE),
        ("date", DAY),
        ("decimal", PRICE),
        ("uuid", ID),
        ("nested", {"when": WHEN, "amounts": [PRICE], "ids": (ID,)}),
    ]:
        back = echo.delay(value).get(timeout=20)
        print(label, repr(back), type(back).__name__, back == value)

    print("inside the task", type_names.delay((1,), {1: 2}, WHEN, PRICE, ID, day=DAY).get(timeout=20))

    try:
        echo.delay(timedelta(seconds=5))
    except Exception as exc:
        print("timedelta argument", type(exc).__name__)

    result = returns_set.delay()
    value = result.get(timeout=20, propagate=False)
    print("set result", result.state, type(value).__name__)
