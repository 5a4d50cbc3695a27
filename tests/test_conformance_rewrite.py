"""The conformance run's import rewrite: only imports change, and a missing name fails only where it is used."""

from __future__ import annotations

import textwrap

import pytest

from conformance import placeholders
from conformance.rewrite import rewrite_source

CELERY_TEST_MODULE = textwrap.dedent('''\
    import celery
    from celery import chain, group
    from celery.canvas import (signature,
                               NoSuchThingInTheAdapter)
    from celery.contrib import abortable

    def test_body():
        assert chain is not None
''')


def test_celery_imports_become_adapter_imports_and_test_bodies_stay_as_they_were():
    rewritten, report = rewrite_source(CELERY_TEST_MODULE)
    lines = rewritten.splitlines()
    assert lines[0] == "import app.celery_compat as celery"
    assert lines[1] == "from app.celery_compat import chain, group"
    assert lines[-2:] == CELERY_TEST_MODULE.splitlines()[-2:]
    assert len(lines) == len(CELERY_TEST_MODULE.splitlines())  # line numbers match Celery's file
    assert "celery.canvas: lacks NoSuchThingInTheAdapter" in report.placeholders


def test_a_missing_name_imports_as_a_labelled_placeholder_that_raises_once_tests_run(monkeypatch):
    rewritten, _ = rewrite_source(CELERY_TEST_MODULE)
    namespace: dict = {}
    monkeypatch.setattr(placeholders, "collecting", True)
    exec(compile(rewritten, "test_module.py", "exec"), namespace)  # the module still imports
    from app.celery_compat.canvas import signature

    assert namespace["signature"] is signature  # names the adapter has are the real ones
    decorated = namespace["NoSuchThingInTheAdapter"](visible=False)  # decorating at import is inert
    monkeypatch.setattr(placeholders, "collecting", False)
    with pytest.raises(placeholders.AdapterMissing, match="adapter lacks celery.canvas.NoSuchThingInTheAdapter"):
        decorated()
    with pytest.raises(placeholders.AdapterMissing, match="adapter lacks celery.contrib.abortable"):
        _ = namespace["abortable"].AbortableTask


def test_a_class_built_on_a_missing_base_fails_when_instantiated():
    base = placeholders.Missing("celery.canvas.StampingVisitor")

    class Visitor(base):  # type: ignore[misc, valid-type]
        pass

    with pytest.raises(placeholders.AdapterMissing, match="StampingVisitor"):
        Visitor()
