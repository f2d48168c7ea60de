"""Every route of the OpenAPI document, fuzzed by schemathesis: no 5xx, and every refusal has the one error shape."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from siyu.app import create_app
from tests.conftest import bearer


@pytest.fixture
def owner_key(make_workspace, make_user, make_key):
    ws = make_workspace("Fuzzed")
    make_user(ws, "owner")
    return make_key(ws, ["all:write"])


# The document is the same for every app; each example is sent to the test's own app (its transaction).
schema = schemathesis.openapi.from_asgi("/api/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api(case, app, owner_key):
    response = case.call(app=app, headers=bearer(owner_key))

    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "field"}
        assert body["error"]["message"]
