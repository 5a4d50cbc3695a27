"""Our copies of rq-dashboard's templates match the release they were made from, and leave nothing unescaped.

The dashboard's pages are served half from rq-dashboard's files and half from ours
(app/dashboard/templates). A new rq-dashboard release could add a page, an unescaped value or
a route our copies and classes know nothing about, so these tests fail loudly on any change.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path

import pytest
import rq
import rq_dashboard
import rq_dashboard.web
from rq.registry import BaseRegistry

from app.dashboard import HERE, PINNED_VERSION, precompile

UPSTREAM = Path(rq_dashboard.__file__).resolve().parent
OURS = HERE / "templates" / "rq_dashboard"

#: sha256 of rq-dashboard 0.9.0's files that our copies and json_jobs.py were written against.
REVIEWED = {
    "templates/rq_dashboard/base.html": "1bf4f33567e813cc42bec259f19f1f0360bfcdfddf3ea50ea94af7fdbc7f75ea",
    "templates/rq_dashboard/footer.html": "f83fbf0343878077d5db4d1cf9322f6f0127da682e800761452c7d2a54dde180",
    "templates/rq_dashboard/inline_js.html": "bc2f4a86fee79ee5b335a29c476be7085067db149c63a883d444420db16c261c",
    "templates/rq_dashboard/job.html": "d9de753e9d82795c0b0f79d9ad5eac84326e41d0e1bc4ef811ca6c93b72c926e",
    "templates/rq_dashboard/jobs.html": "4e7c41bc0a15b0ea7018498d78ca2afc80d504e71e73e8f738d9ae03f4460262",
    "templates/rq_dashboard/navbar.html": "a4723e800d40c8c897163345c523b3d91a3eb1b8bbf2903bbb91881b09094507",
    "templates/rq_dashboard/queues.html": "df57de14c3a172b327f75ca320356197f99702a66cf19a5986d8671b0348c880",
    "templates/rq_dashboard/scripts/dashboard.js": "e43a50513d40343c2f433ecd79bc3a8133993ae9ddddf55454f06ff742b90fd0",
    "templates/rq_dashboard/scripts/job.js": "9803613632d00dd4eea19bfd1ddaf401ad8d9549e4068bed5f596b556b7a844e",
    "templates/rq_dashboard/scripts/jobs.js": "59df5f48c943ddd19cc7c6f416c81e6b26e1bb194970fcaba43e702b11b1f526",
    "templates/rq_dashboard/scripts/queues.js": "17b41b22ac87a95fdc116a219273c03d112bfba0d764685da3c5e0e62deb92db",
    "templates/rq_dashboard/scripts/workers.js": "f2bc56e927f50df31a2c2e67a7cc2bb29e6d5344fe4e7a281e6f8660f4443cd4",
    "templates/rq_dashboard/workers.html": "122e24c87e2b003c38e71ac36f7f40a30fa5beed24bd0508bfb09458dd392853",
    "web.py": "fe7aeac46b2248320885fca1bc1cfc7a66c3ce86a26d6b95092c48780693925b",
}


def test_the_installed_rq_dashboard_is_the_release_our_copies_were_made_from():
    assert rq_dashboard.web.rq_dashboard_version == PINNED_VERSION


def test_the_installed_rq_dashboard_files_are_the_ones_we_reviewed():
    installed = {str(path.relative_to(UPSTREAM)): hashlib.sha256(path.read_bytes()).hexdigest()
                 for path in [*(UPSTREAM / "templates").rglob("*"), UPSTREAM / "web.py"] if path.is_file()}
    assert installed == REVIEWED


def test_every_template_that_interpolates_values_unescaped_is_replaced_by_an_escaping_copy():
    raw = {path.name for path in (UPSTREAM / "templates" / "rq_dashboard").glob("*.html") if "<%=" in path.read_text()}
    assert raw == {"job.html", "jobs.html", "queues.html", "workers.html"}
    for name in raw:
        ours = (OURS / name).read_text()
        assert "<%=" not in ours and "<%-" in ours, name


def test_no_dashboard_page_carries_an_unescaped_interpolation_or_an_inline_style(client):
    for path in ("/rq/", "/rq/0/view/workers", "/rq/0/view/jobs", "/rq/0/view/jobs/default/failed/8/asc/1"):
        html = client.get(path).get_data(as_text=True)
        assert "<%=" not in html, path
        assert not re.search(r"\sstyle=", html), path


def test_every_rq_class_the_dashboard_uses_reads_json():
    # Whatever rq names rq_dashboard.web imports must be our JSON versions (json_jobs.REPLACEMENTS)
    rq_names = {name: value for name, value in vars(rq_dashboard.web).items()
                if (inspect.isclass(value) and issubclass(value, (rq.job.Job, rq.Queue, rq.Worker, BaseRegistry))
                    and value is not BaseRegistry)
                or (inspect.isfunction(value) and value.__module__.startswith("rq."))}
    assert rq_names, "rq_dashboard.web imports no rq names: the check would be empty"
    foreign = {name: value.__module__ for name, value in rq_names.items()
               if not value.__module__.startswith("app.dashboard") and name != "get_call_string"}
    assert foreign == {}


def test_the_app_refuses_to_mount_another_rq_dashboard_release(make_app, redis_url, monkeypatch):
    monkeypatch.setattr(rq_dashboard.web, "rq_dashboard_version", "0.9.1")
    with pytest.raises(RuntimeError, match="review them"):
        make_app(redis_url)


def test_the_precompiled_templates_are_those_of_our_template_copies():
    # If this fails, run: python -m app.dashboard.precompile
    assert precompile.OUTPUT.read_text() == precompile.render()
    assert len(precompile.blocks()) == 15


def test_every_script_that_puts_a_value_in_a_quoted_string_is_replaced_by_one_using_tojson():
    # HTML escaping does not make a value safe inside a JavaScript string: tojson does
    scripts = UPSTREAM / "templates" / "rq_dashboard" / "scripts"
    quoted = {path.name for path in scripts.glob("*.js") if re.search(r"'\{\{", path.read_text())}
    assert quoted == {"jobs.js"}
    for name in quoted:
        assert not re.search(r"'\{\{", (OURS / "scripts" / name).read_text()), name
