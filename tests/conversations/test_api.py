"""The conversations API: inbox, replies, close, search, sensitive rules and alerts, settings, reports,
and bad input refused with the field."""

from __future__ import annotations

import pytest

from siyu.conversations import sensitive
from siyu.core.tenancy import bind_workspace
from tests.conftest import bearer


@pytest.fixture
def key(db, ws, make_key):
    secret = bearer(make_key(ws))
    bind_workspace(db, ws.id)
    return secret


def test_inbox_reply_close_and_the_thread(client, db, key, say, run_jobs, adapter):
    say("请问这款茶叶有优惠券吗")
    db.commit()
    listed = client.get("/api/v1/conversations", headers=key).json()
    [conversation] = listed["items"]
    assert (conversation["status"], conversation["messages"]) == ("open", 1)

    r = client.post(f"/api/v1/conversations/{conversation['id']}/replies", headers=key,
                    json={"text": "有的，已为您发放", "idempotency_key": "r1"})
    again = client.post(f"/api/v1/conversations/{conversation['id']}/replies", headers=key,
                        json={"text": "有的，已为您发放", "idempotency_key": "r1"})
    assert r.status_code == 201
    assert again.json()["id"] == r.json()["id"]
    run_jobs()
    assert [c["text"] for _a, c, _k in adapter.sent] == ["有的，已为您发放"]

    closed = client.post(f"/api/v1/conversations/{conversation['id']}/close", headers=key).json()
    assert closed["status"] == "closed"
    thread = client.get(f"/api/v1/conversations/{conversation['id']}", headers=key).json()["thread"]
    assert [(m["direction"], m["text"]) for m in thread] == [("in", "请问这款茶叶有优惠券吗"),
                                                             ("out", "有的，已为您发放")]
    report = client.get("/api/v1/conversation-reports/first-response", headers=key).json()
    assert report["staff"][0]["count"] == 1


def test_search_in_chinese_with_highlights(client, db, key, say):
    say("我要退款")
    say("谢谢 coupon received", openid="o-2")
    db.commit()
    r = client.get("/api/v1/archive/search", headers=key, params={"q": "退款"})
    assert r.status_code == 200
    [hit] = r.json()["items"]
    assert (hit["text"], hit["highlights"], hit["highlighted"]) == ("我要退款", [[2, 4]], "我要<mark>退款</mark>")
    english = client.get("/api/v1/archive/search", headers=key, params={"q": "COUPON", "direction": "in"}).json()
    assert [h["text"] for h in english["items"]] == ["谢谢 coupon received"]


def test_rules_and_alerts(client, db, key, say):
    created = client.post("/api/v1/sensitive-rules", headers=key, json={
        "name": "Claims", "category": "forbidden_claim", "words": ["最便宜"], "severity": "high"})
    assert created.status_code == 201
    rule_id = created.json()["id"]
    say("是全网最便宜的吗")
    db.commit()
    alerts = client.get("/api/v1/sensitive-alerts", headers=key, params={"status": "open"}).json()["items"]
    assert [(a["matched"], a["rule_id"]) for a in alerts] == [("最便宜", rule_id)]
    handled = client.patch(f"/api/v1/sensitive-alerts/{alerts[0]['id']}", headers=key, json={"status": "resolved"})
    assert handled.json()["status"] == "resolved"
    changed = client.patch(f"/api/v1/sensitive-rules/{rule_id}", headers=key, json={"words": ["第一"]})
    assert changed.json()["words"] == ["第一"]
    assert client.delete(f"/api/v1/sensitive-rules/{rule_id}", headers=key).status_code == 204
    assert client.get(f"/api/v1/sensitive-rules/{rule_id}", headers=key).status_code == 404


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("post", "/api/v1/sensitive-rules", {"name": "x", "kind": "regex", "pattern": "(("}, "pattern"),
    ("post", "/api/v1/sensitive-rules", {"name": "x", "words": []}, "words"),
    ("post", "/api/v1/sensitive-rules", {"name": "x", "words": ["a"], "severity": "extreme"}, "severity"),
    ("patch", "/api/v1/conversation-settings", {"idle_close_hours": 0}, "idle_close_hours"),
    ("get", "/api/v1/archive/search?q=" + "x" * 201, None, "q"),
])
def test_bad_input_is_refused_with_the_field_and_changes_nothing(client, db, key, method, path, body, field):
    r = client.request(method, path, headers=key, json=body)
    assert 400 <= r.status_code < 500
    assert r.json()["error"]["field"] == field
    assert sensitive.list_rules(db) == []


def test_a_reply_to_an_empty_text_is_refused(client, db, key, say):
    say("hi")
    db.commit()
    conversation = client.get("/api/v1/conversations", headers=key).json()["items"][0]
    r = client.post(f"/api/v1/conversations/{conversation['id']}/replies", headers=key, json={"text": ""})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "text"


def test_settings_round_trip(client, key):
    r = client.patch("/api/v1/conversation-settings", headers=key, json={"idle_close_hours": 6, "survey_text": "打分"})
    assert r.json() == {"idle_close_hours": 6, "survey_enabled": True, "survey_text": "打分"}
    assert client.get("/api/v1/conversation-settings", headers=key).json()["idle_close_hours"] == 6


