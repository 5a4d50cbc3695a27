"""The canvas: chain, group, chord, immutable signatures, GroupResult, link and link_error callbacks."""

import json
import os
import time

import redis
from celery import Celery, chain, chord, group
from celery.result import AsyncResult, GroupResult

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("canvas", broker=REDIS_URL, backend=REDIS_URL)
store = redis.Redis.from_url(REDIS_URL)


def record(key, *entry):
    store.rpush(f"canvas:{key}", json.dumps(entry))


def recorded(key, count, timeout=20.0):
    """The entries under ``key`` once there are ``count`` of them (or after ``timeout``), sorted."""
    deadline = time.monotonic() + timeout
    while store.llen(f"canvas:{key}") < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(json.loads(raw) for raw in store.lrange(f"canvas:{key}", 0, -1))


def wait_ready(result, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not AsyncResult(result.id).ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    return AsyncResult(result.id)


@app.task
def add(x, y):
    return x + y


@app.task
def mul(x, y):
    return x * y


@app.task(bind=True)
def fail(self, value, message="chain broke"):
    store.set(f"canvas:pid:{self.request.id}", os.getpid())
    raise ValueError(message, value)


@app.task
def slow_echo(value, seconds):
    time.sleep(seconds)
    return value


@app.task
def collect(values, label="collected"):
    return {"label": label, "values": values}


@app.task
def total(values):
    return sum(values)


@app.task
def note_link(value, tag):
    record("links", tag, value)
    return value


@app.task
def errback_inline(request, exc, traceback):
    same_process = store.get(f"canvas:pid:{request.id}") == str(os.getpid()).encode()
    record("errbacks", "inline", request.id, type(exc).__name__, list(exc.args), traceback is not None, same_process)


@app.task
def errback_queued(task_id):
    record("errbacks", "queued", task_id)


def show_exception(label, exc):
    print(label, type(exc).__name__, exc.args)


def main():
    # chain: with |, with chain(...), and with an immutable signature that ignores the previous result
    result = (add.s(1, 2) | mul.s(10))()
    print("chain with |", result.get(timeout=20), result.state, result.parent.get(timeout=20))
    result = chain(add.s(1, 2), add.s(3), mul.s(2)).apply_async()
    print("chain(...)", result.get(timeout=20))
    walked = []
    node = result
    while node is not None:
        # get() first: real Celery sends a chain's next step before it stores the step's result,
        # so a step's state could still read PENDING after the last step finished
        value = node.get(timeout=20)
        walked.append((AsyncResult(node.id).state, value))
        node = node.parent
    print("chain .parent walking back", walked)
    result = (add.s(1, 1) | add.si(5, 5) | mul.s(3))()
    print("chain with .si()", result.get(timeout=20), result.parent.get(timeout=20))
    result = chain(add.s(2, 2), add.s(1)).delay()
    print("chain delay", result.get(timeout=20))
    result = (add.s(1) | mul.s(2)).delay(3)
    print("chain delay with partial args", result.get(timeout=20))
    print("signature delay with partial args", add.s(10).delay(5).get(timeout=20))

    # chain failing in the middle: the later step is FAILURE with the same exception
    result = (add.s(1, 1) | fail.s() | add.s(100))()
    try:
        result.get(timeout=20)
    except ValueError as exc:
        show_exception("chain failing in the middle get raises", exc)
    last = wait_ready(result)
    print("chain later step", last.state, type(last.result).__name__, last.result.args, last.failed())
    middle = AsyncResult(result.parent.id)
    print("chain failing step", middle.state, type(middle.result).__name__, middle.result.args)
    first = AsyncResult(result.parent.parent.id)
    print("chain first step", first.state, first.result, result.parent.parent.parent)

    # group: results in order, whatever order the members finish in
    result = group(slow_echo.s(i, 0.1 * (4 - i)) for i in range(5))()
    print("group type", type(result).__name__, len(result), result.ready(), result.completed_count())
    print("group get", result.get(timeout=20))
    print("group done", result.ready(), result.successful(), result.failed(), result.completed_count())
    print("group children", [child.state for child in result.results])
    result = group([add.s(1, 1), fail.s(0, "in a group"), add.s(2, 2)]).apply_async()
    values = result.get(timeout=20, propagate=False)
    print("group propagate=False", [type(v).__name__ if isinstance(v, BaseException) else v for v in values])
    try:
        result.get(timeout=20)
    except ValueError as exc:
        show_exception("group get raises", exc)
    print("group with a failure", result.ready(), result.successful(), result.failed(), result.completed_count())

    # GroupResult.save() / GroupResult.restore(id)
    result = group(add.s(i, 10) for i in range(3))()
    result.save()
    restored = GroupResult.restore(result.id)
    print("GroupResult restore", type(restored).__name__, restored.id == result.id,
          [child.id for child in restored.results] == [child.id for child in result.results],
          restored.get(timeout=20))
    print("GroupResult restore unknown", GroupResult.restore("canvas-no-such-group"))

    # chord: the body gets the header results in header order
    result = chord(slow_echo.s(i, 0.1 * (4 - i)) for i in range(5))(collect.s(label="chord"))
    print("chord", result.get(timeout=20), result.state)
    print("chord parent", type(result.parent).__name__, result.parent.get(timeout=20))
    result = chord([add.s(1, 1), add.s(2, 2)], total.s()).apply_async()
    print("chord(header, body)", result.get(timeout=20))
    result = (group(mul.s(i, i) for i in range(4)) | total.s())()
    print("group | callback", result.get(timeout=20))
    result = (group(add.s(i, 1) for i in range(3)) | collect.s() | note_link.s("after chord"))()
    print("group | callback | task", result.get(timeout=20), recorded("links", 1))
    store.delete("canvas:links")

    # chord with a failing header: the body is FAILURE with ChordError, get raises the header's error
    header = [add.s(1, 1), fail.s(0, "header broke").set(task_id="canvas-failing-header"), add.s(2, 2)]
    result = chord(header)(total.s())
    try:
        result.get(timeout=20)
    except ValueError as exc:
        show_exception("chord failing header get raises", exc)
    body = wait_ready(result)
    print("chord body", body.state, type(body.result).__name__, body.result.args, body.failed())

    sig = add.s(20, 1)
    sig.link(note_link.s("through .link()"))
    print("signature .link()", sig.delay().get(timeout=20), recorded("links", 1))
    store.delete("canvas:links")

    # link: every link fires on success, with the result prepended; link_error only on failure
    result = add.apply_async((2, 3), link=[note_link.s("first"), note_link.s("second")],
                             link_error=errback_queued.s())
    print("link", result.get(timeout=20), recorded("links", 2))
    time.sleep(1)
    print("link_error not fired on success", recorded("errbacks", 0))
    result = fail.apply_async((7, "linked failure"), task_id="canvas-linked-failure",
                              link=note_link.s("never"), link_error=[errback_inline.s(), errback_queued.s()])
    show_exception("link_error task", result.get(timeout=20, propagate=False))
    for entry in recorded("errbacks", 2):
        print("link_error", *entry)
    result = fail.apply_async((8, "one errback"), task_id="canvas-si-errback", link_error=errback_queued.si("fixed"))
    result.get(timeout=20, propagate=False)
    print("link_error immutable", recorded("errbacks", 3)[-1])
    time.sleep(1)
    print("link not fired on failure", [entry for entry in recorded("links", 0) if entry[0] == "never"])
