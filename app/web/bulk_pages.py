"""The bulk action pages: a confirmation step that says how many tasks, then a summary of what was done.

The POST that acts answers 303 to the summary's own address (POST, redirect, GET), so reloading
the summary shows it again instead of running the batch again. The summary waits in Redis for
:data:`SUMMARY_SECONDS` under an unguessable name.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from app.redis import get_redis
from app.web import bulk, forms
from app.web.forms import InvalidForm
from app.web.history import Query

bp = Blueprint("bulk", __name__)

#: Where a bulk action's summary waits for the GET the POST redirects to, and for how long.
SUMMARY_PREFIX = "web:bulk:summary:"
SUMMARY_SECONDS = 600

#: The words each action's pages use.
WORDING = {
    bulk.RETRY: {"verb": "Retry", "done": "retried", "what": "failed or cancelled"},
    bulk.CANCEL: {"verb": "Cancel", "done": "cancelled", "what": "waiting or running"},
}


def _query(values: Any) -> tuple[Query, float | None]:
    try:
        query = forms.parse_task_query(values)
    except InvalidForm as exc:
        abort(400, description="; ".join(f"{name} {why}" for name, why in exc.errors.items()))
    return query, query.before


def _filters(query: Query) -> dict[str, str]:
    """The list's filters as form fields, so the confirmation posts exactly what it counted."""
    values = {"state": query.state, "name": query.name, "queue": query.queue, "q": query.search,
              # the range as epoch seconds, as the API takes it (at most 6 decimals)
              "since": None if query.since is None else f"{query.since:.6f}",
              "until": None if query.until is None else f"{query.until:.6f}"}
    return {name: value for name, value in values.items() if value}


#: What a retry's page calls its tasks when the filter names one retryable state.
RETRYING = {"FAILURE": "failed", "REVOKED": "cancelled"}


def _words(action: str, query: Query) -> dict[str, str]:
    words = dict(WORDING[action])
    if action == bulk.RETRY:
        words["what"] = RETRYING.get(bulk.scope(action, query).state or "", words["what"])
    return words


def _check(action: str) -> None:
    if action not in bulk.ACTIONS:
        abort(404, description=f"No bulk action is called {action!r}.")


@bp.get("/tasks/bulk/<action>")
def confirm(action: str) -> str:
    """The confirmation step: how many tasks the filter matches now, and a button that acts on them."""
    _check(action)
    query, before = _query(request.args)
    batch = bulk.plan(action, query, before)
    return render_template("bulk.html", action=action, words=_words(action, query), filters=_filters(query),
                           scope=bulk.scope(action, query), count=len(batch.task_ids), more=batch.more,
                           cursor=before, batch_size=bulk.BATCH, summary=None, form=FlaskForm(formdata=None))


@bp.post("/tasks/bulk/<action>")
def act(action: str) -> Response:
    """Act on one batch (CSRF checked by CSRFProtect), then send the browser to the summary (303)."""
    _check(action)
    query, before = _query(request.form)
    summary = bulk.run(action, query, before)
    token = secrets.token_urlsafe(16)
    kept = {"form": {name: value for name, value in request.form.items() if name != "csrf_token"},
            "done": summary.done, "skipped": summary.skipped, "more": summary.more}
    get_redis().set(SUMMARY_PREFIX + token, json.dumps(kept), ex=SUMMARY_SECONDS)
    return redirect(url_for("bulk.done", action=action, token=token), code=303)


@bp.get("/tasks/bulk/<action>/done/<token>")
def done(action: str, token: str) -> str:
    """What a batch did and whether more remain; reading it again acts on nothing."""
    _check(action)
    raw = get_redis().get(SUMMARY_PREFIX + token[:64])
    if raw is None:
        abort(404, description="This summary has expired: open the task list to see where things stand.")
    kept = json.loads(raw)
    query, _ = _query(kept["form"])
    summary = bulk.Summary(kept["done"], [tuple(pair) for pair in kept["skipped"]], kept["more"])
    return render_template("bulk.html", action=action, words=_words(action, query), filters=_filters(query),
                           scope=bulk.scope(action, query), count=len(summary.done), more=summary.more,
                           cursor=summary.more, batch_size=bulk.BATCH, summary=summary,
                           form=FlaskForm(formdata=None))
