"""Start a worker: ``python worker.py`` (the project's tasks) or ``python worker.py -A proj`` (yours).

Takes Celery's worker flags (``-Q``, ``-c``, ``-P``, ``--loglevel``, ...) and RQ's (``-u``, ``--burst``,
queue names); ``python worker.py --help`` lists them. Celery's habit ``python worker.py -A proj worker
-l INFO`` works too: ``worker`` is the command, not a queue. Celery's other commands (``beat``,
``inspect``, ``call``, ...) are ``python -m app.celery_compat -A proj <command>``.
"""

from __future__ import annotations

import sys

from app.celery_compat.worker import main


def project_celery():
    """The Celery app of the web project, built from the same configuration as the web app."""
    from app import create_app

    return create_app().extensions["celery"]


if __name__ == "__main__":
    argv = sys.argv[1:]
    wants_other_app = any(arg in ("-A", "--app") or arg.startswith(("-A", "--app=")) for arg in argv)
    sys.exit(main(argv, default_app=None if wants_other_app else project_celery()))
