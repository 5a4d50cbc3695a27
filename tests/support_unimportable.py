"""A task module that cannot be imported: it needs a package this project does not install.

tests/test_compat_registration.py sends a task naming this module, to see the worker fail the
task with NotRegistered (as Celery does) instead of leaving it PENDING.
"""

import a_package_this_project_does_not_have  # noqa: F401
