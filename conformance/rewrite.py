"""The mechanical rewrite: every ``celery`` import of Celery's suite becomes an ``app.celery_compat`` import.

Only import statements change, never a test body. ``celery.x`` maps to ``app.celery_compat.x``
(so ``celery.contrib.pytest`` to ``app.celery_compat.contrib.pytest``). Where the adapter has the
module and every imported name, the statement stays a plain import:

    from celery.canvas import signature   ->   from app.celery_compat.canvas import signature

Where it lacks one, the statement becomes one call that binds the same names, the missing ones
to labelled placeholders (see ``placeholders.py``), so the file still imports:

    from celery.worker import state as worker_state
    ->  from conformance.placeholders import adapter_names as _adapter_names; \
worker_state = _adapter_names("app.celery_compat.worker", "celery.worker", "state")

A rewritten statement keeps its first line; the lines it spanned stay as blank lines, so line
numbers in tracebacks match Celery's file.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass, field
from pathlib import Path

ADAPTER = "app.celery_compat"
PLACEHOLDER_IMPORT = "from conformance.placeholders import adapter_module as _adapter_module, " \
                     "adapter_names as _adapter_names"


def adapter_name(celery_module: str) -> str:
    """``celery`` -> ``app.celery_compat``; ``celery.x.y`` -> ``app.celery_compat.x.y``."""
    return ADAPTER + celery_module[len("celery"):]


def is_celery(module: str | None) -> bool:
    return module is not None and (module == "celery" or module.startswith("celery."))


def _module(name: str) -> object | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _has(module: object, module_name: str, name: str) -> bool:
    return hasattr(module, name) or _module(f"{module_name}.{name}") is not None


@dataclass
class Rewrite:
    """What the rewrite of one file did: plain rewrites and statements that needed placeholders."""

    path: str
    plain: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)


def _from_import(node: ast.ImportFrom, report: Rewrite) -> str:
    celery_module = node.module or ""
    target = adapter_name(celery_module)
    module = _module(target)
    names = [(alias.name, alias.asname or alias.name) for alias in node.names]
    if module is not None and all(_has(module, target, name) for name, _ in names):
        aliases = ", ".join(name if name == bound else f"{name} as {bound}" for name, bound in names)
        report.plain.append(f"{celery_module} -> {target}: {aliases}")
        return f"from {target} import {aliases}"
    missing = [name for name, _ in names if module is None or not _has(module, target, name)]
    report.placeholders.append(f"{celery_module}: lacks {', '.join(missing)}")
    bound = ", ".join(bound for _, bound in names)
    quoted = ", ".join(repr(name) for name, _ in names)
    return f"{PLACEHOLDER_IMPORT}; {bound} = _adapter_names({target!r}, {celery_module!r}, {quoted})"


def _import(node: ast.Import, report: Rewrite) -> str:
    statements = []
    for alias in node.names:
        if not is_celery(alias.name):
            statements.append(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
            continue
        target = adapter_name(alias.name)
        bound = alias.asname or alias.name.split(".")[0]
        if _module(target) is None:
            report.placeholders.append(f"{alias.name}: no such module")
            statements.append(f"{PLACEHOLDER_IMPORT}; {bound} = _adapter_module({target!r}, {alias.name!r})")
            continue
        report.plain.append(f"import {alias.name} -> {target}")
        if alias.asname or alias.name == "celery":
            statements.append(f"import {target} as {bound}")
        else:  # `import celery.x` binds `celery` and loads celery.x
            statements.append(f"import {ADAPTER} as celery; import {target}")
    return "; ".join(statements)


def rewrite_source(source: str, path: str = "<source>") -> tuple[str, Rewrite]:
    """Return ``source`` with its celery imports rewritten, and what was done."""
    report = Rewrite(path)
    edits: list[tuple[ast.stmt, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and is_celery(node.module):
            edits.append((node, _from_import(node, report)))
        elif isinstance(node, ast.Import) and any(is_celery(alias.name) for alias in node.names):
            edits.append((node, _import(node, report)))
    lines = source.splitlines(keepends=True)
    for node, statement in sorted(edits, key=lambda edit: edit[0].lineno, reverse=True):
        first, last = node.lineno - 1, node.end_lineno - 1
        head = lines[first][:node.col_offset]
        tail = lines[last][node.end_col_offset:]
        lines[first:last + 1] = [head + statement + tail] + ["\n"] * (last - first)
    return "".join(lines), report


def rewrite_tree(root: Path) -> list[Rewrite]:
    """Rewrite every ``.py`` file under ``root`` in place; return the reports of files that changed."""
    reports = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text()
        rewritten, report = rewrite_source(source, str(path.relative_to(root)))
        if rewritten != source:
            path.write_text(rewritten)
            reports.append(report)
    return reports
