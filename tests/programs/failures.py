"""Failures: builtin exceptions, a custom exception class of this module, exceptions with several args."""

import os

from celery import Celery

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("failures", broker=REDIS_URL, backend=REDIS_URL)


class PaymentError(Exception):
    """A project's own error, raised in the worker and caught by class on the client."""


class InsufficientFunds(PaymentError):
    def __init__(self, account, missing):
        super().__init__(account, missing)
        self.account = account
        self.missing = missing


@app.task
def divide(a, b):
    return a / b


@app.task
def lookup(key):
    return {"known": 1}[key]


@app.task
def withdraw(account, amount):
    raise InsufficientFunds(account, amount)


@app.task
def decline():
    raise PaymentError("card declined")


@app.task
def several_args():
    raise ValueError("bad input", 42, ["x", "y"], {"field": "name"})


@app.task
def no_args():
    raise RuntimeError()


def main():
    for label, result in [
        ("builtin ZeroDivisionError", divide.delay(1, 0)),
        ("builtin KeyError", lookup.delay("unknown")),
        ("custom with two args", withdraw.delay("acc-1", 25)),
        ("custom base class", decline.delay()),
        ("several args", several_args.delay()),
        ("no args", no_args.delay()),
    ]:
        try:
            result.get(timeout=20)
        except PaymentError as exc:
            print(label, "caught as PaymentError", type(exc).__name__, exc.args,
                  isinstance(exc, InsufficientFunds))
        except Exception as exc:
            print(label, "raised", type(exc).__name__, exc.args)
        print(label, "state", result.state, result.failed(), type(result.result).__name__, result.result.args)
        print(label, "traceback", result.traceback.strip().splitlines()[-1])
