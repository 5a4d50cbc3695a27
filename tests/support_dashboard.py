"""Helpers for the dashboard's browser tests: a page that records whatever script an attack would run."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Markup that runs script when inserted as HTML: it sets ``window.pwned`` and opens a dialog.
PAYLOAD = "<svg/onload=window.pwned=1><img src=x onerror=window.pwned=1;alert(1)>"

#: The same without a slash, for where a slash is not allowed (queue names are URL path segments).
NO_SLASH_PAYLOAD = "<img src=x onerror=window.pwned=1;alert(1)>"

#: The longest a browser test waits for something to appear, in milliseconds.
DEADLINE_MS = 20_000


@dataclass
class Watched:
    """What a page did that an attack would cause: dialogs, CSP violations, uncaught errors."""

    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]


def watch(page) -> Watched:
    """Record the page's dialogs (dismissed), console messages and uncaught errors from now on."""
    seen = Watched()

    def on_dialog(dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda message: seen.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    return seen


def pwned(page) -> bool:
    """Did any injected script run on this page?"""
    return bool(page.evaluate("window.pwned === 1"))
