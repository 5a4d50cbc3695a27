"""A user's program in a project with its own `app`, `tasks` and `worker`, next to the installed adapter.

Run from the project's directory with only the installed adapter on PYTHONPATH: prints where its
own modules came from, then the result of a task a worker ran.
"""

# ruff: noqa: I001 - the switch must come before the project's imports, whatever the sorting says
import celery_compat.shim  # noqa: F401 - the one-line switch

import app
import tasks
import worker

print(app.__file__)
print(worker.ROLE)
print(tasks.add.delay(2, 3).get(timeout=30))
