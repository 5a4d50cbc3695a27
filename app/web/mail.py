"""``/mail``: the messages the development mail catcher caught, newest first. Registered in development only."""

from __future__ import annotations

from flask import Blueprint, render_template

from app.mail import mailbox
from app.redis import get_redis

bp = Blueprint("mail", __name__)

#: How many messages the page shows; the mailbox keeps a few more.
PAGE_SIZE = 50


@bp.app_context_processor
def mail_in_navigation() -> dict[str, bool]:
    """base.html links to /mail only where this blueprint is registered (development)."""
    return {"mail_catcher": True}


@bp.get("/mail")
def inbox() -> tuple[str, int, dict[str, str]]:
    """The caught messages, each with its headers and body (escaped by the template, never rendered as HTML)."""
    messages = mailbox.recent(get_redis(), PAGE_SIZE)
    return render_template("mail.html", messages=messages), 200, {"Cache-Control": "no-store"}
