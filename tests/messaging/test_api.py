"""The messaging endpoints: templates with a preview for a chosen contact, welcome per account, keyword rules
and their hits; bad input is a 4xx naming the field and changes nothing."""

from __future__ import annotations

import pytest

from siyu.channels import service
from siyu.contacts import service as contacts
from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer
from tests.messaging.conftest import ACTOR, make_account, text


@pytest.fixture
def shop(db, make_workspace, make_key, adapters):
    ws = make_workspace("Tea Shop")
    key = bearer(make_key(ws, ["messaging:write", "contacts:read"]))
    bind_workspace(db, ws.id)
    oa = make_account(db, "wechat_oa", "Shop OA")
    li = contacts.create_contact(db, fields={"name": "李娜", "nickname": "娜娜", "city": "上海"}, actor=ACTOR)
    bare = contacts.create_contact(db, fields={"name": "Wang"}, actor=ACTOR)
    db.commit()
    return ws, key, oa, li, bare


def test_templates_are_checked_saved_and_previewed_for_a_chosen_contact(client, db, shop):
    _ws, key, _oa, li, bare = shop
    body = {"name": "新品", "channels": ["wechat_oa", "wecom"],
            "content": {"type": "link", "title": "{{ nickname | default('朋友', true) }}，新品到了",
                        "description": "{{ city }}门店有货", "url": "https://shop.example.com/new"}}
    created = client.post("/api/v1/templates", json=body, headers=key)
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]

    for_li = client.post(f"/api/v1/templates/{template_id}/preview", json={"contact_id": li.id}, headers=key)
    for_bare = client.post(f"/api/v1/templates/{template_id}/preview", json={"contact_id": bare.id}, headers=key)
    assert for_li.json()["content"]["title"] == "娜娜，新品到了"
    assert for_li.json()["content"]["description"] == "上海门店有货"
    assert for_bare.json()["content"]["title"] == "朋友，新品到了"

    unknown = client.post("/api/v1/templates", json={**body, "name": "x", "content": {"text": "{{ shoe }}"}},
                          headers=key)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "content.text"
    assert unknown.json()["error"]["code"] == "unknown_field"
    clash = client.post("/api/v1/templates", json=body, headers=key)
    assert (clash.status_code, clash.json()["error"]["field"]) == (409, "name")
    bad_kind = client.patch(f"/api/v1/templates/{template_id}", json={"channels": ["fax"]}, headers=key)
    assert (bad_kind.status_code, bad_kind.json()["error"]["field"]) == (422, "channels")
    renamed = client.patch(f"/api/v1/templates/{template_id}", json={"name": "新品上架"}, headers=key)
    assert renamed.json()["name"] == "新品上架"
    assert [t["name"] for t in client.get("/api/v1/templates?channel=wecom", headers=key).json()] == ["新品上架"]
    assert client.get("/api/v1/templates?channel=sms", headers=key).json() == []
    assert client.delete(f"/api/v1/templates/{template_id}", headers=key).status_code == 204
    assert client.get(f"/api/v1/templates/{template_id}", headers=key).status_code == 404


def test_a_preview_that_cannot_render_for_this_contact_names_the_field(client, db, shop):
    _ws, key, _oa, li, _bare = shop
    body = {"name": "积分", "content": {"text": "{{ attributes.points * 2 }}"}}
    created = client.post("/api/v1/templates", json=body, headers=key)
    preview = client.post(f"/api/v1/templates/{created.json()['id']}/preview", json={"contact_id": li.id},
                          headers=key)
    assert preview.status_code == 422
    assert preview.json()["error"]["field"] == "content.text"
    missing = client.post(f"/api/v1/templates/{created.json()['id']}/preview", json={"contact_id": 10**9},
                          headers=key)
    assert missing.status_code == 404


def test_welcome_per_account_is_read_written_and_refused_when_empty(client, db, shop):
    _ws, key, oa, _li, _bare = shop
    url = f"/api/v1/channel-accounts/{oa.id}/welcome"
    assert client.get(url, headers=key).json() == {"account_id": oa.id, "enabled": False, "content": None,
                                                  "updated_at": None}
    empty = client.put(url, json={"content": {"text": " "}}, headers=key)
    assert (empty.status_code, empty.json()["error"]["field"]) == (422, "content.text")
    saved = client.put(url, json={"enabled": True, "content": {"text": "欢迎 {{ nickname }}", "attachments": [
        {"type": "miniprogram", "appid": "wx123", "pagepath": "pages/index", "title": "商城"}]}}, headers=key)
    assert saved.status_code == 200, saved.text
    assert client.get(url, headers=key).json()["content"]["attachments"][0]["appid"] == "wx123"
    off = client.put(url, json={"enabled": False, "content": saved.json()["content"]}, headers=key)
    assert off.json()["enabled"] is False


def test_keyword_rules_and_their_hits(client, db, shop):
    ws, key, oa, _li, _bare = shop
    body = {"name": "价格", "account_id": oa.id, "match_type": "contains", "keywords": ["价格", "多少钱"],
            "priority": 5, "windows": [{"days": [1, 2, 3, 4, 5, 6, 7]}], "reply": {"text": "见菜单"}}
    created = client.post("/api/v1/keyword-rules", json=body, headers=key)
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    lookahead = client.post("/api/v1/keyword-rules", json={**body, "match_type": "regex", "keywords": ["(?=a)b"]},
                            headers=key)
    assert (lookahead.status_code, lookahead.json()["error"]["field"]) == (422, "keywords[0]")

    bind_workspace(db, ws.id)
    got = service.receive(db, service.get_account(db, oa.id), text("多少钱"))
    db.commit()
    assert got.reply == {"type": "text", "text": "见菜单"}

    hits = client.get(f"/api/v1/keyword-rules/{rule_id}/hits", headers=key).json()
    assert [(h["keyword"], h["message_id"]) for h in hits["items"]] == [("多少钱", got.message_id)]
    assert client.get(f"/api/v1/keyword-rules/{rule_id}", headers=key).json()["hits"] == 1
    assert len(client.get("/api/v1/keyword-hits", headers=key).json()["items"]) == 1
    changed = client.patch(f"/api/v1/keyword-rules/{rule_id}", json={"keywords": ["价钱"], "account_id": None},
                           headers=key)
    assert (changed.json()["keywords"], changed.json()["account_id"]) == (["价钱"], None)
    listed = client.get(f"/api/v1/keyword-rules?account_id={oa.id}", headers=key).json()
    assert [r["id"] for r in listed] == [rule_id]
    assert client.delete(f"/api/v1/keyword-rules/{rule_id}", headers=key).status_code == 204
    assert client.get("/api/v1/keyword-hits", headers=key).json()["items"] == []
