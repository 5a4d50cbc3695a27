"""Whole programs: a Celery script run as `python script.py` works against `worker.py -A script`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.support import ROOT

SCRIPT = textwrap.dedent('''
    import os
    from app.celery_compat import Celery

    app = Celery("selfprog", broker=os.environ["REDIS_URL"])

    @app.task
    def add(x, y):
        return x + y

    if __name__ == "__main__":
        import selfprog  # a script importing its own module again, as Django-style projects do
        print(add.name, selfprog.add.name)
        print(add.delay(2, 3).get(timeout=15), selfprog.add.delay(4, 5).get(timeout=15))
''')


def test_a_script_that_imports_itself_again_sends_tasks_the_worker_knows(celery_app, redis_url, worker_process,
                                                                         tmp_path):
    # Given a Celery program saved as selfprog.py and a worker started with -A selfprog
    (tmp_path / "selfprog.py").write_text(SCRIPT)
    worker_process("-P", "solo", app="selfprog", pythonpath=(str(tmp_path),))
    # When the program runs as a script
    completed = subprocess.run(
        [sys.executable, "selfprog.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)},
    )
    # Then tasks defined in __main__ carry the app's name, and both copies reach the worker
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split("\n")[:2] == ["selfprog.add selfprog.add", "5 9"]
