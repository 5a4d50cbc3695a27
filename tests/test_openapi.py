"""The API matches its OpenAPI document: schemathesis generates requests from it and checks every answer.

No answer may be a 500, and every status, content type and body must be one the document declares.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.web.openapi import openapi_document

# The document as the app serves it (tests/test_api_errors.py checks that it lists every route).
# schemathesis' from_fixture does not run on pytest 9, so the app is handed to each call instead.
schema = schemathesis.openapi.from_dict(openapi_document())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_500_or_an_undocumented_answer(case, app):
    # Given any request the document allows, or one that breaks it on purpose
    # When it is sent to the app (no worker runs: tasks only queue)
    # Then the answer is documented and never a server error
    # (A schema-valid request may still get a documented 422: no JSON Schema says what email_validator
    # accepts as an address, or that a subject of spaces is empty; so that one check is left out.)
    case.call_and_validate(app=app, excluded_checks=[positive_data_acceptance])


def test_the_served_document_states_this_deployments_email_limits(make_app, redis_url, redis_conn):
    # Given an operator who lowered the email limits
    app = make_app(redis_url, MAIL_MAX_RECIPIENTS=3, MAIL_MAX_SUBJECT_LENGTH=40, MAIL_MAX_BODY_BYTES=500)
    # When a client reads the document
    document = app.test_client().get("/api/openapi.json").get_json()
    # Then it promises exactly those limits, not the defaults
    email = document["components"]["schemas"]["EmailRequest"]["properties"]
    assert email["to"]["oneOf"][1]["maxItems"] == 3
    assert email["subject"]["maxLength"] == 40
    assert email["body"]["maxLength"] == 500


def test_the_document_lists_the_refusals_of_authentication_and_of_the_submit_bounds():
    document = openapi_document()
    submit = document["paths"]["/api/tasks/email"]["post"]["responses"]
    assert {"401", "429", "503"} <= set(submit)
    events = document["paths"]["/api/tasks/{task_id}/events"]["get"]["responses"]
    assert "poll" in events["503"]["content"]["application/json"]["schema"]["properties"]
    assert set(document["components"]["securitySchemes"]) == {"basicAuth", "bearerAuth"}
