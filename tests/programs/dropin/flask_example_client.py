"""Drive Flask's own Celery example (examples/celery, unchanged) through its views, as its page does.

Run from the example's directory with ``src`` on the path: turns the switch on with the one-line
import, builds the app with ``task_app.create_app()`` and posts to /tasks/add, /tasks/block and
/tasks/process as the example's index.html does, polling /tasks/result/<id> like its JavaScript.
Prints one JSON line per poll answer that differs from the previous one: {"task", "answer"}.
"""

# ruff: noqa: I001 - the switch must come before the example's imports, whatever the sorting says
import app.celery_compat.shim  # noqa: F401 - the one-line switch

import json
import sys
import time

from task_app import create_app

DEADLINE = 60.0


def follow(client, task: str, result_id: str, until_ready: bool = True) -> None:
    seen = None
    deadline = time.monotonic() + (DEADLINE if until_ready else 7.0)
    while time.monotonic() < deadline:
        answer = client.get(f"/tasks/result/{result_id}").get_json()
        if answer != seen:
            print(json.dumps({"task": task, "answer": answer}), flush=True)
            seen = answer
        if answer["ready"]:
            return
        time.sleep(0.05)
    if until_ready:
        sys.exit(f"{task} not ready within {DEADLINE} s")


client = create_app().test_client()
ids = {
    "add": client.post("/tasks/add", data={"a": 2, "b": 3}).get_json()["result_id"],
    "process": client.post("/tasks/process", data={"total": 3}).get_json()["result_id"],
    "block": client.post("/tasks/block").get_json()["result_id"],
}
print(json.dumps({"ids": ids}), flush=True)
follow(client, "add", ids["add"])
follow(client, "process", ids["process"])
# block runs with the example's task_ignore_result=True: as under Celery, it never shows ready.
follow(client, "block", ids["block"], until_ready=False)
