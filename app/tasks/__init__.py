"""The project's own tasks. A task's name is its dotted path, which the worker imports."""
