"""What every command shares: the program's name, the usage error, a command's parser."""

from __future__ import annotations

import argparse

#: How the command line is run: ``python -m app.celery_compat`` here, ``python -m celery_compat`` installed.
PROG = f"python -m {__name__.rsplit('.', 2)[0]}"
#: Exit code of a command line that cannot be carried out as written (as Celery's click).
EXIT_USAGE = 2


class UsageError(Exception):
    """Raised when the command line cannot be carried out as written (printed as one line, exit 2)."""


def command_parser(name: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"{PROG} {name}", description=description)
