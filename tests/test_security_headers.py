"""Response headers: a Content-Security-Policy that forbids inline script, no framing, no sniffing, hard cookies.

The attacks are played in Chromium: another site framing the app (clickjacking the Cancel button),
and markup that slipped into a page (an inline script, an ``onerror``) that must not run.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from flask import Response

from tests.support_gunicorn import BASIC, PRODUCTION_SETTINGS

EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def policy_violations(page) -> list[str]:
    """The browser's console reports of what the Content-Security-Policy blocked, collected as they come."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


@pytest.mark.parametrize("path", ["/", "/tasks", "/api/tasks", "/healthz", "/static/style.css", "/no-such-page"])
def test_every_response_carries_the_policy_and_the_hardening_headers(client, path):
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert {name: response.headers.get(name) for name in EXPECTED} == EXPECTED


def test_a_policy_already_on_the_response_is_kept(app):
    # Given a view that sets its own policy, as the dashboard does for /rq
    own = {"Content-Security-Policy": "default-src 'none'"}
    app.add_url_rule("/own-policy", "own_policy", lambda: Response("x", headers=own))
    # When it answers, Then its policy is the one sent, and the other headers are added
    response = app.test_client().get("/own-policy")
    assert response.headers.getlist("Content-Security-Policy") == ["default-src 'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_in_production_the_session_cookie_is_secure_http_only_and_same_site_lax(make_app, redis_url, redis_conn):
    app = make_app(redis_url, **PRODUCTION_SETTINGS)
    cookie = app.test_client().get("/", headers=BASIC).headers["Set-Cookie"]
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "; SameSite=Lax" in cookie


def test_in_development_the_session_cookie_is_same_site_lax_without_secure(make_app, redis_url, redis_conn):
    cookie = make_app(redis_url).test_client().get("/").headers["Set-Cookie"]
    assert "; SameSite=Lax" in cookie and "; HttpOnly" in cookie and "; Secure" not in cookie


class _AttackerSite:
    """Another origin (its own port) serving one page that frames the app."""

    def __init__(self, page: str) -> None:
        body = page.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self._server.server_port}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def attacker(live_server) -> Iterator[_AttackerSite]:
    site = _AttackerSite(f'<h1>Win a prize</h1><iframe id="victim" src="{live_server.url}/"></iframe>')
    yield site
    site.stop()


def test_another_site_cannot_frame_the_pages(page, attacker, live_server):
    # Given a page on another origin that frames the app's index
    response_seen = []
    page.on("response", lambda response: response_seen.append(response.url))
    # When a browser opens it
    page.goto(attacker.url)
    page.wait_for_load_state("load")
    # Then the app answered, but the browser refused to show it in the frame
    assert any(url.startswith(live_server.url) for url in response_seen)
    frame = page.frame_locator("#victim")
    assert frame.locator("#long-running-form").count() == 0


def test_markup_that_slipped_into_a_page_does_not_run(page, live_server):
    # Given the index page as the app serves it (headers kept), with markup an attacker got into it
    def inject(route) -> None:
        response = route.fetch()
        body = response.text().replace(
            "</main>", '<script>window.inlineRan = 1</script><img src="x" onerror="window.handlerRan = 1"></main>')
        route.fulfill(response=response, body=body)

    page.route(f"{live_server.url}/", inject)
    violations = policy_violations(page)
    # When the browser shows it
    page.goto(live_server.url + "/")
    page.wait_for_load_state("load")
    # Then neither the inline script nor the event handler ran, and the browser says why
    assert page.evaluate("() => [window.inlineRan, window.handlerRan]") == [None, None]
    assert violations


def test_our_own_pages_run_under_the_policy_without_violations(page, live_server):
    violations = policy_violations(page)
    page.goto(live_server.url + "/")
    page.fill("#duration", "30")
    page.click("#long-running-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/tasks/*")
    # progress.js ran (it is a file, allowed by script-src 'self') and opened the event stream
    page.wait_for_function("() => document.querySelector('#state').textContent === 'PENDING'")
    page.goto(live_server.url + "/tasks")
    assert violations == []
