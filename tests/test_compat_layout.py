"""The adapter's layout holds: the worker imports the client, never the reverse (issue 13).

The imports are read from the source (nothing is imported), so the test sees every import,
including those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "app.celery_compat"
ROOT = Path(__file__).resolve().parent.parent / "app" / "celery_compat"

#: Worker code: the worker subpackage, the two modules whose paths every queued job names, the
#: testing helpers (they run a worker in the test process; as in Celery, no client code imports them),
#: and the command line (its `worker` command runs one, as celery.bin does).
WORKER = (f"{PACKAGE}.worker", f"{PACKAGE}.execution", f"{PACKAGE}.recovery", f"{PACKAGE}.contrib",
          f"{PACKAGE}.bin", f"{PACKAGE}.__main__")
#: Modules below both client and worker: they import nothing of the package but each other.
LEAVES = {"_state": set(), "exceptions": set(), "states": set(), "redaction": set(), "scripts": set(),
          "keys": set(), "serialization": {"exceptions"}, "protocol": {"exceptions"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join((PACKAGE, *(part for part in parts if part != "__init__")))


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute, relative imports resolved."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def package_modules() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(ROOT.rglob("*.py"))}


def is_worker(name: str) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in WORKER)


def test_the_client_side_never_imports_worker_code():
    offenders = {module: sorted(name for name in imported if is_worker(name))
                 for module, imported in package_modules().items() if not is_worker(module)}
    assert {module: names for module, names in offenders.items() if names} == {}


def test_the_leaf_modules_import_nothing_of_the_package_but_other_leaves():
    modules = package_modules()
    for leaf, allowed in LEAVES.items():
        imported = {name.removeprefix(f"{PACKAGE}.").split(".")[0] for name in modules[f"{PACKAGE}.{leaf}"]
                    if name.startswith(f"{PACKAGE}.")}
        assert imported <= allowed, (leaf, imported - allowed)


def test_the_adapter_never_imports_flask():
    users = [module for module, imported in package_modules().items()
             if any(name == "flask" or name.startswith("flask.") for name in imported)]
    assert users == []


def test_no_function_reaches_for_the_package_from_inside_its_body():
    # The import cycle is gone: package imports sit at the top of each module (TYPE_CHECKING aside).
    late = []
    for path in sorted(ROOT.rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                late += [f"{module_name(path)}.{function.name}" for node in ast.walk(function)
                         if isinstance(node, ast.ImportFrom) and node.level]
    assert late == []
