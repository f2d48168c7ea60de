"""The channel-accounts API: create, read (secrets never shown), patch, delete, a real connection test
against a local webhook endpoint, callback URLs, kinds; bad input is a 4xx that changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from siyu.channels.models import ChannelAccount
from siyu.core.models import AuditEntry
from tests.conftest import bearer
from tests.servers import serve
from tests.servers.webhook_receiver import Receiver

SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def key(db, make_workspace, make_key):
    return bearer(make_key(make_workspace("Tea Shop"), ["channels:write"]))


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Receiver]]:
    receiver = Receiver(secret=SECRET)
    with serve(receiver.app()) as base:
        yield f"{base}/hook", receiver


def _create(client, key, url="https://example.com/hook", name="Shop app", secret=SECRET):
    return client.post("/api/v1/channel-accounts", headers=key,
                       json={"kind": "webhook", "name": name, "config": {"url": url}, "secrets": {"secret": secret}})


def _count(db) -> int:
    return db.execute(select(func.count()).select_from(ChannelAccount)).scalar_one()


def test_an_account_is_created_and_read_without_its_secrets(client, key):
    created = _create(client, key)
    read = client.get(f"/api/v1/channel-accounts/{created.json()['id']}", headers=key)
    listed = client.get("/api/v1/channel-accounts", headers=key)

    assert created.status_code == 201, created.text
    body = read.json()
    assert body["config"] == {"url": "https://example.com/hook"}
    assert body["secrets"] == {"secret": True}
    assert SECRET not in created.text + read.text + listed.text
    assert body["health"] == {"state": "unknown", "last_ok_at": None, "last_error_at": None, "last_error": None}
    assert body["callback_url"] is None  # webhooks only send
    assert [a["name"] for a in listed.json()["items"]] == ["Shop app"]


def test_the_connection_test_calls_the_endpoint_and_records_health(client, key, endpoint):
    url, receiver = endpoint
    account = _create(client, key, url=url).json()

    ok = client.post(f"/api/v1/channel-accounts/{account['id']}/test", headers=key)
    receiver.fail_with.append(403)
    refused = client.post(f"/api/v1/channel-accounts/{account['id']}/test", headers=key)
    read = client.get(f"/api/v1/channel-accounts/{account['id']}", headers=key).json()

    assert ok.status_code == 200, ok.text
    assert ok.json()["ok"] is True
    assert ok.json()["message"] == "HTTP 200"
    assert [m["type"] for m in receiver.received] == ["ping"]
    assert refused.json()["ok"] is False
    assert refused.json()["message"].startswith("403: the endpoint refused it (403)")
    assert read["health"]["state"] == "error"
    assert read["health"]["last_ok_at"] is not None
    assert read["health"]["last_error"] == refused.json()["message"]


def test_patch_merges_settings_keeps_unsent_secrets_and_pauses(client, db, key, endpoint):
    url, _ = endpoint
    account = _create(client, key, url="https://old.example.com/hook").json()

    patched = client.patch(f"/api/v1/channel-accounts/{account['id']}", headers=key,
                           json={"name": "Shop app 2", "status": "paused", "config": {"url": url},
                                 "secrets": {"secret": ""}})
    tested = client.post(f"/api/v1/channel-accounts/{account['id']}/test", headers=key)

    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["status"]) == ("Shop app 2", "paused")
    assert patched.json()["config"] == {"url": url}
    assert tested.json()["ok"] is True  # the kept secret still signs: the endpoint accepted it
    actions = db.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert [a for a in actions if a.startswith("channel_account")] == ["channel_account.create",
                                                                        "channel_account.update"]
    assert SECRET not in str(db.execute(select(AuditEntry.after)).scalars().all())


def test_delete_removes_the_account(client, db, key):
    account = _create(client, key).json()

    gone = client.delete(f"/api/v1/channel-accounts/{account['id']}", headers=key)
    again = client.get(f"/api/v1/channel-accounts/{account['id']}", headers=key)

    assert gone.status_code == 204
    assert again.status_code == 404
    assert _count(db) == 0


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"kind": "fax", "name": "x"}, 422, "kind"),
    ({"kind": "webhook", "name": "x", "config": {"url": "ftp://x"}, "secrets": {"secret": SECRET}}, 422,
     "config.url"),
    ({"kind": "webhook", "name": "x", "config": {"url": "https://x.example"}, "secrets": {"secret": "short"}}, 422,
     "secrets.secret"),
    ({"kind": "webhook", "name": "x", "config": {"url": "https://x.example", "secret": SECRET}}, 422,
     "config.secret"),
    ({"kind": "webhook", "name": "x", "config": {"url": {"nested": 1}}}, 422, "config.url.str"),
    ({"kind": "webhook", "name": "", "config": {}}, 422, "name"),
    ({"kind": "webhook", "name": "x", "sneaky": 1}, 422, "sneaky"),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_saved(client, db, key, body, status, field):
    refused = client.post("/api/v1/channel-accounts", headers=key, json=body)

    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["field"] == field
    assert _count(db) == 0


def test_a_bad_patch_changes_nothing(client, db, key):
    account = _create(client, key).json()
    _create(client, key, name="Other")

    clash = client.patch(f"/api/v1/channel-accounts/{account['id']}", headers=key, json={"name": "Other"})
    bad_url = client.patch(f"/api/v1/channel-accounts/{account['id']}", headers=key,
                           json={"name": "Renamed", "config": {"url": "nope"}})
    bad_status = client.patch(f"/api/v1/channel-accounts/{account['id']}", headers=key, json={"status": "gone"})
    after = client.get(f"/api/v1/channel-accounts/{account['id']}", headers=key).json()

    assert (clash.status_code, clash.json()["error"]["field"]) == (409, "name")
    assert (bad_url.status_code, bad_url.json()["error"]["field"]) == (422, "config.url")
    assert bad_status.status_code == 422
    assert (after["name"], after["config"], after["status"]) == ("Shop app", {"url": "https://example.com/hook"},
                                                                  "active")


def test_read_only_keys_may_list_but_not_write(client, db, make_workspace, make_key):
    ws = make_workspace("Reader")
    reader = bearer(make_key(ws, ["channels:read"]))

    listed = client.get("/api/v1/channel-accounts", headers=reader)
    refused = _create(client, reader)

    assert listed.status_code == 200
    assert refused.status_code == 403
    assert _count(db) == 0


def test_kinds_list_fields_and_rules(client, key):
    kinds = {k["kind"]: k for k in client.get("/api/v1/channel-kinds", headers=key).json()}

    assert {"webhook", "wecom_archive"} <= set(kinds)
    fields = {f["name"]: f["secret"] for f in kinds["webhook"]["fields"]}
    assert fields == {"url": False, "secret": True, "events": False}
    assert kinds["webhook"]["rules"]["identity_type"] == "contact_id"


def test_kinds_with_callbacks_show_the_absolute_callback_url(client, app, key):
    from fastapi import APIRouter

    router = APIRouter()

    @router.post("/hooks/wecom-archive/{account_id}")
    def hook(account_id: int) -> dict[str, str]:
        return {}

    app.include_router(router)
    created = client.post("/api/v1/channel-accounts", headers=key, json={
        "kind": "wecom_archive", "name": "Archive", "config": {"corp_id": "ww1", "publickey_ver": "1"},
        "secrets": {"secret": "x", "private_key": _pem()}})

    assert created.status_code == 201, created.text
    assert created.json()["callback_url"] == f"https://testserver/hooks/wecom-archive/{created.json()['id']}"
    assert created.json()["secrets"] == {"secret": True, "private_key": True, "proxy_password": False}


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_an_adapter_failing_unexpectedly_is_an_answer_not_a_crash(client, key, monkeypatch):
    from siyu.channels import webhook

    async def broken(self, account):
        raise KeyError("url")

    monkeypatch.setattr(webhook.WebhookAdapter, "check_connection", broken)
    account = _create(client, key).json()

    tested = client.post(f"/api/v1/channel-accounts/{account['id']}/test", headers=key)

    assert tested.status_code == 200
    assert tested.json()["ok"] is False
    assert tested.json()["message"] == "KeyError: 'url'"
    assert tested.json()["health"]["state"] == "error"
