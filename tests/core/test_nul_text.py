"""Text with a NUL character is refused with a field, in bodies and query strings, on every engine."""

from __future__ import annotations

import pytest

from tests.conftest import bearer


@pytest.fixture
def key(make_workspace, make_key):
    return make_key(make_workspace("Shop"), scopes=["all:write"])


def test_a_nul_anywhere_in_a_json_body_names_its_field(client, key):
    top = client.post("/api/v1/segments", json={"kind": "static", "name": "a\x00b"}, headers=bearer(key))
    nested = client.post("/api/v1/contacts", json={"name": "Li", "attributes": {"note": ["ok", "\x00"]}},
                         headers=bearer(key))

    assert (top.status_code, top.json()["error"]["field"]) == (422, "name")
    assert top.json()["error"]["message"] == "text may not contain NUL characters"
    assert (nested.status_code, nested.json()["error"]["field"]) == (422, "attributes.note.1")
    assert client.get("/api/v1/segments", headers=bearer(key)).json()["items"] == []


def test_a_nul_in_a_query_string_names_its_parameter(client, key):
    found = client.get("/api/v1/contacts?q=li%00", headers=bearer(key))
    plain = client.get("/api/v1/contacts?q=li", headers=bearer(key))

    assert (found.status_code, found.json()["error"]["field"]) == (422, "q")
    assert plain.status_code == 200
