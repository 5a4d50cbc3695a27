"""Every way a request can be wrong gets its own status and a JSON reason from the API, never a 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/tasks/long-running"), ("GET", "/api/tasks/email"), ("DELETE", "/api/tasks/abc"),
     ("PUT", "/api/tasks"), ("GET", "/api/tasks/abc/cancel"), ("POST", "/api/openapi.json")],
)
def test_a_wrong_method_is_a_405_in_json_with_the_allowed_ones(client, method, path):
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.is_json and response.json["error"]
    assert response.headers["Allow"]


def test_an_unknown_api_path_is_a_404_in_json_and_an_unknown_page_a_404_in_html(client):
    api = client.get("/api/nothing-here")
    page = client.get("/nothing-here")
    task_page = client.get("/tasks/nobody")
    assert (api.status_code, api.is_json) == (404, True)
    assert (page.status_code, page.mimetype) == (404, "text/html")
    assert task_page.status_code == 404 and b"No task has the id nobody" in task_page.data


@pytest.mark.parametrize("path", ["/api/tasks/long-running", "/api/tasks/email"])
def test_a_body_over_the_size_limit_is_a_413(client, path):
    # Given a body twice the 1 MiB limit
    body = b'{"duration": 1, "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    # When it is posted, Then the API refuses it before reading it
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.is_json and response.json["error"]


def test_an_oversized_form_is_a_413_page(make_app, redis_url, redis_conn):
    client = make_app(redis_url, WTF_CSRF_ENABLED=False).test_client()
    response = client.post("/tasks/long-running", data={"duration": "1", "pad": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413 and response.mimetype == "text/html"


@pytest.mark.parametrize("path", ["/api/tasks/email"])
@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"null"])
def test_malformed_json_is_a_400_on_every_submit_endpoint(client, path, raw):
    response = client.post(path, data=raw, content_type="application/json")
    assert response.status_code == 400 and "JSON object" in response.json["error"]


def test_a_number_too_long_to_read_is_a_400_that_says_so(client, redis_conn):
    # Python refuses to read integers of more than 4,300 digits (a guard against slow parsing)
    response = client.post("/api/tasks/long-running", data=b'{"duration": ' + b"9" * 10_000 + b"}",
                           content_type="application/json")
    assert response.status_code == 400
    assert "more than 4300 digits" in response.json["error"]


def test_the_openapi_document_lists_every_api_route_of_the_app(app, client):
    # Given the OpenAPI document the API serves
    document = client.get("/api/openapi.json").json
    assert document["openapi"].startswith("3.")
    # Then it describes exactly the routes and methods the app has under /api
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = {
        (rule.rule.replace("<task_id:task_id>", "{task_id}"), method)
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == served
