"""The API matches its OpenAPI document: schemathesis generates requests from it and runs every check on each answer.

The document is generated from the models the API validates with (app/web/schemas.py), so what it
allows is accepted and what it refuses is refused: the checks include positive_data_acceptance and
negative_data_rejection, and ignored_auth against the production configuration.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES

from app.web import api
from app.web.openapi import openapi_document
from tests.support_gunicorn import BEARER, PRODUCTION_SETTINGS

load_all_checks()
ALL_CHECKS = CHECKS.get_all()

# The document as a production deployment serves it (credentials required). from_fixture does not
# run on pytest 9, so the app is handed to each call instead. A body over MAX_CONTENT_LENGTH is
# refused with 413, as documented; schemathesis' list of refusals leaves 413 out, so it is added
# (the generator rarely builds a body that large, which made this test fail now and then).
_REFUSALS = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
schema = schemathesis.openapi.from_dict(
    openapi_document(api.contract, PRODUCTION_SETTINGS),
    config=SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": _REFUSALS}}}))


@pytest.fixture
def production_app(make_app, redis_url, redis_conn):
    # No rate limit: the fuzzer should reach the validation, not the 429 (which is documented anyway).
    return make_app(redis_url, **PRODUCTION_SETTINGS, SUBMIT_RATE_LIMIT="off")


def test_every_check_schemathesis_has_is_run():
    names = {check.__name__ for check in ALL_CHECKS}
    assert {"not_a_server_error", "positive_data_acceptance", "negative_data_rejection", "response_schema_conformance",
            "status_code_conformance", "content_type_conformance", "response_headers_conformance", "use_after_free",
            "ensure_resource_availability", "ignored_auth", "unsupported_method"} <= names


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_finds_anything_with_all_checks(case, production_app):
    # Given any request the document allows, or one that breaks it on purpose, with a valid token
    # When it is sent to the app (no worker runs: tasks only queue)
    # Then every check passes: documented answers only, valid data accepted, invalid data refused
    # (The schema's app, not only the call's: ignored_auth sends its own probes without credentials.)
    case.operation.schema.app = production_app
    case.call_and_validate(app=production_app, headers=BEARER, checks=ALL_CHECKS)


@pytest.mark.parametrize("query", ["cursor=", "after=", "cursor=&after=", "cursor=1764600000.5&after=1764600000.1"])
def test_the_reported_schema_valid_task_list_queries_are_accepted(client, query):
    # Given an empty cursor (the list page's form sends one), or both cursors at once (cursor wins)
    response = client.get(f"/api/tasks?{query}")
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("path", ["cancel", "retry"])
def test_cancel_and_retry_take_an_empty_body_or_an_empty_object_and_document_it(client, path):
    # Given a finished task (a cancelled one: retry accepts it, cancel answers 409)
    task_id = client.post("/api/tasks/long-running", json={"duration": 5}).json["id"]
    client.post(f"/api/tasks/{task_id}/cancel", json={})
    # When the action is sent with no body but the JSON content type, or with {}
    bare = client.post(f"/api/tasks/{task_id}/{path}", content_type="application/json")
    with_object = client.post(f"/api/tasks/{task_id}/{path}", json={})
    # Then both are understood (202, or the documented 409), and the document says a JSON body is sent
    assert bare.status_code in (202, 409) and with_object.status_code in (202, 409)
    operation = client.get("/api/openapi.json").json["paths"][f"/api/tasks/{{task_id}}/{path}"]["post"]
    assert operation["requestBody"]["required"] is True
    assert "application/json" in operation["requestBody"]["content"]


def test_a_non_object_body_for_an_action_is_a_400(client):
    task_id = client.post("/api/tasks/long-running", json={"duration": 5}).json["id"]
    response = client.post(f"/api/tasks/{task_id}/cancel", data=b"[]", content_type="application/json")
    assert response.status_code == 400 and "JSON object" in response.json["error"]


@pytest.mark.parametrize("to", ["0000", "000", "a@b", "ada@example.test", "ada@bücher.de"])
def test_an_address_outside_the_documented_syntax_is_refused_naming_the_field(client, to):
    response = client.post("/api/tasks/email", json={"to": to, "subject": "Hi", "body": "Hello"})
    assert response.status_code == 422 and set(response.json["errors"]) == {"to"}


def test_the_event_stream_of_a_finished_task_matches_the_document(app, client):
    # Given a task that ended (cancelled), so that its stream sends its status and then `end`
    task_id = client.post("/api/tasks/long-running", json={"duration": 5}).json["id"]
    client.post(f"/api/tasks/{task_id}/cancel", json={})
    served = schemathesis.openapi.from_dict(client.get("/api/openapi.json").json)
    served.app = app
    case = served["/api/tasks/{task_id}/events"]["GET"].Case(path_parameters={"task_id": task_id})
    # When it is read, Then each event matches the document's event schemas, under every check
    response = case.call_and_validate(app=app, checks=ALL_CHECKS)
    events = [block for block in response.text.split("\n\n") if block.strip()]
    assert [line for block in events for line in block.splitlines() if line.startswith("event:")] == [
        "event: status", "event: end"]
    status = json.loads(events[0].split("data: ", 1)[1])
    assert status["state"] == "REVOKED"


def test_the_served_document_states_this_deployments_email_limits(make_app, redis_url, redis_conn):
    # Given an operator who lowered the email limits
    app = make_app(redis_url, MAIL_MAX_RECIPIENTS=3, MAIL_MAX_SUBJECT_LENGTH=40, MAIL_MAX_BODY_BYTES=500)
    # When a client reads the document
    document = app.test_client().get("/api/openapi.json").get_json()
    # Then it promises exactly those limits, not the defaults
    email = document["components"]["schemas"]["EmailRequest"]["properties"]
    assert email["to"]["anyOf"][1]["maxItems"] == 3
    assert email["to"]["anyOf"][0]["pattern"].endswith("{0,2}$")
    assert email["subject"]["maxLength"] == 40
    assert email["body"]["maxLength"] == 500


def test_the_document_lists_the_refusals_with_their_retry_after_headers():
    document = openapi_document(api.contract, PRODUCTION_SETTINGS)
    submit = document["paths"]["/api/tasks/email"]["post"]["responses"]
    assert {"400", "401", "413", "422", "429", "503"} <= set(submit)
    assert "Retry-After" in submit["429"]["headers"] and "Retry-After" in submit["503"]["headers"]
    events = document["paths"]["/api/tasks/{task_id}/events"]["get"]["responses"]
    assert "poll" in document["components"]["schemas"]["StreamBusy"]["properties"]
    assert events["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/StreamBusy"}
    assert set(document["components"]["securitySchemes"]) == {"basicAuth", "bearerAuth"}
    assert {} not in document["security"]  # required outside development
