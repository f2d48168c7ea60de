"""The REST API of contact ways and transfers: thin over the services, field errors before any call."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.core.models import AuditEntry
from tests.conftest import bearer

WAYS = "/api/v1/channel-accounts/{}/wecom/contact-ways"


@pytest.fixture
def key(db, ws, make_key):
    return bearer(make_key(ws))


def test_contact_ways_are_created_read_changed_and_deleted_through_wecom(db, account, fake, client, key):
    created = client.post(WAYS.format(account.id), headers=key,
                          json={"users": ["lisi"], "state": "parcel-card", "remark": "包裹卡"})
    assert created.status_code == 201, created.text
    config_id = created.json()["config_id"]
    # the QR image's address (wework.qpic.cn on the real platform, the local server's /wwpic/ here)
    assert created.json()["qr_code"] == fake.contact_ways[config_id]["qr_code"]
    assert created.json()["qr_code"].startswith("http")
    assert fake.contact_ways[config_id]["state"] == "parcel-card"

    read = client.get(f"{WAYS.format(account.id)}/{config_id}", headers=key)
    assert read.json()["details"]["remark"] == "包裹卡"
    changed = client.patch(f"{WAYS.format(account.id)}/{config_id}", headers=key, json={"state": "store-poster"})
    assert changed.status_code == 200
    assert fake.contact_ways[config_id]["state"] == "store-poster"
    assert client.delete(f"{WAYS.format(account.id)}/{config_id}", headers=key).status_code == 204
    assert config_id not in fake.contact_ways
    gone = client.get(f"{WAYS.format(account.id)}/{config_id}", headers=key)
    assert (gone.status_code, gone.json()["error"]["code"]) == (502, "wecom_40058")
    actions = list(db.execute(select(AuditEntry.action).where(AuditEntry.action.like("wecom.%"))
                              .order_by(AuditEntry.id)).scalars())
    assert actions == ["wecom.contact_way.create", "wecom.contact_way.update", "wecom.contact_way.delete"]


@pytest.mark.parametrize(("body", "field"), [
    ({"users": ["lisi"], "state": "s" * 31}, "state"),
    ({"users": ["lisi"], "remark": "r" * 31}, "remark"),
    ({"users": []}, "users"),
    ({"users": ["a", "b"], "type": "single"}, "users"),
    ({"users": ["lisi"], "scene": "poster"}, "scene"),
])
def test_bad_contact_ways_are_refused_with_the_field_and_nothing_is_called(account, fake, client, key, body, field):
    r = client.post(WAYS.format(account.id), headers=key, json=body)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field
    assert fake.calls("/cgi-bin/externalcontact/add_contact_way") == []


def test_transfers_move_customers_between_members(db, account, fake, client, key):
    r = client.post(f"/api/v1/channel-accounts/{account.id}/wecom/transfers", headers=key,
                    json={"handover_userid": "lisi", "takeover_userid": "wangwu", "external_userids": ["wmA", "wmB"]})
    assert r.status_code == 201, r.text
    assert [c["errcode"] for c in r.json()["customers"]] == [0, 0]
    assert fake.transfers[0]["takeover_userid"] == "wangwu"
    same = client.post(f"/api/v1/channel-accounts/{account.id}/wecom/transfers", headers=key,
                       json={"handover_userid": "lisi", "takeover_userid": "lisi", "external_userids": ["wmA"]})
    assert (same.status_code, same.json()["error"]["field"]) == (422, "takeover_userid")


def test_other_kinds_of_account_have_no_contact_ways(kf_account, client, key):
    r = client.post(WAYS.format(kf_account.id), headers=key, json={"users": ["lisi"]})
    assert r.status_code == 404


@pytest.mark.parametrize(("config", "secrets", "field"), [
    ({"corp_id": ""}, {}, "config.corp_id"),
    ({}, {"secret": ""}, "secrets.secret"),
    ({}, {"token": "with space"}, "secrets.token"),
    ({}, {"encoding_aes_key": "short"}, "secrets.encoding_aes_key"),
    ({"agent_id": "abc"}, {}, "config.agent_id"),
    ({"api_base": "ftp://x"}, {}, "config.api_base"),
])
def test_account_settings_are_checked_with_the_field(db, ws, config, secrets, field):
    from siyu.channels import service as channels
    from siyu.core.errors import Invalid
    from tests.channels.wecom.conftest import ACTOR
    from tests.servers.wecom import AES_KEY, CORP_ID, SECRET, TOKEN

    good_config = {"corp_id": CORP_ID, "agent_id": "1000002"}
    good_secrets = {"secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY}
    with pytest.raises(Invalid) as refused:
        channels.create_account(db, kind="wecom", name="x", config={**good_config, **config},
                                secrets={**good_secrets, **secrets}, actor=ACTOR)
    assert refused.value.field == field


def test_the_accounts_page_shows_a_callback_url_for_both_kinds(account, kf_account, app):
    from siyu.channels import accounts

    assert accounts.callback_url("https://siyu.example", account, app.routes).endswith(f"/hooks/wecom/{account.id}")
    assert accounts.callback_url("https://siyu.example", kf_account, app.routes).endswith(
        f"/hooks/wecom-kf/{kf_account.id}")
