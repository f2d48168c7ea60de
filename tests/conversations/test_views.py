"""Console pages of conversations: inbox and thread with a reply, archive search with highlights and
empty states, alerts with their badge, reports with charts, the rules editor, and staff kept to their own."""

from __future__ import annotations

import pytest

from siyu.contacts import staff as staff_service
from siyu.conversations import sensitive, service
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import page_token, post, sign_in
from tests.conversations.conftest import ACTOR


@pytest.fixture
def admin(client, db, ws, make_user):
    ws.locale = "en"
    user = make_user(ws, "admin")
    bind_workspace(db, ws.id)
    assert sign_in(client, user.email).status_code == 303
    return user


def test_empty_pages_say_what_will_appear(client, admin):
    assert "No open conversations" in client.get("/console/inbox").text
    assert "No messages yet" in client.get("/console/archive").text
    assert "No alerts here" in client.get("/console/alerts").text
    assert "No answered conversations yet" in client.get("/console/conversation-reports").text
    assert "No rules yet" in client.get("/console/sensitive-words").text


def test_inbox_thread_reply_and_close(client, db, admin, say, adapter, run_jobs):
    got = say("请问什么时候发货")
    db.commit()
    conversation = service.list_conversations(db)[0][0]
    assert f"/console/inbox/{conversation.id}" in client.get("/console/inbox").text
    page = client.get(f"/console/inbox/{conversation.id}")
    assert "请问什么时候发货" in page.text

    refused = post(client, f"/console/inbox/{conversation.id}/reply", {"text": ""})
    assert refused.status_code == 422
    assert "Write a reply of 1 to 4,000 characters." in refused.text
    r = post(client, f"/console/inbox/{conversation.id}/reply", {"text": "今天下午发货", "key": "k1"})
    assert r.status_code == 303
    run_jobs()
    assert [c["text"] for _a, c, _k in adapter.sent] == ["今天下午发货"]
    assert post(client, f"/console/inbox/{conversation.id}/close").status_code == 303
    db.expire_all()
    assert service.get_conversation(db, conversation.id).status == "closed"
    assert got.contact_id == conversation.contact_id


def test_archive_search_highlights_chinese_words(client, db, admin, say):
    say("我想领取优惠券")
    say("物流太慢了", openid="o-2")
    db.commit()
    r = client.get("/console/archive", params={"q": "优惠券"})
    assert "我想领取<mark>优惠券</mark>" in r.text
    assert "物流太慢了" not in r.text
    assert "Nothing matches" in client.get("/console/archive", params={"q": "不存在的词"}).text
    assert "Use a date like 2026-11-30." in client.get("/console/archive", params={"since": "yesterday"}).text


def test_rules_editor_alerts_and_badge(client, db, admin, say):
    token = page_token(client, "/console/sensitive-words")
    bad = client.post("/console/sensitive-words", data={"csrf_token": token, "name": "Claims", "words": ""},
                      follow_redirects=False)
    assert bad.status_code == 422
    assert "List at least one word" in bad.text
    ok = post(client, "/console/sensitive-words", {"name": "Claims", "words": "最便宜\n第一", "severity": "high",
                                                   "category": "forbidden_claim", "active": "on"})
    assert ok.status_code == 303
    say("你们是第一吗")
    db.commit()
    page = client.get("/console/alerts")
    assert 'id="alert-badge"' in page.text
    assert "<mark>第一</mark>" in page.text
    alert = sensitive.list_alerts(db)[0][0]
    assert post(client, f"/console/alerts/{alert.id}", {"status": "resolved"}).status_code == 303
    assert 'id="alert-badge"' not in client.get("/console/alerts").text
    saved = post(client, "/console/sensitive-words/settings", {"idle_close_hours": "0"})
    assert saved.status_code == 422
    assert "Choose between 1 and 720 hours." in saved.text


def test_reports_draw_charts(client, db, admin, say, frozen_now):
    say("hi")
    conversation = service.list_conversations(db)[0][0]
    frozen_now.advance(seconds=120)
    service.reply(db, conversation, text="hello", actor=ACTOR)
    db.commit()
    page = client.get("/console/conversation-reports")
    assert 'class="chart"' in page.text
    assert "2.0 min" in page.text


def test_staff_see_their_own_conversations_and_no_rules(client, db, ws, make_user, say):
    ws.locale = "en"
    user = make_user(ws, "staff")
    other = make_user(ws, "staff")
    bind_workspace(db, ws.id)
    mine = staff_service.create_staff(db, name="Mine", user_id=user.id, actor=ACTOR)
    theirs = staff_service.create_staff(db, name="Theirs", user_id=other.id, actor=ACTOR)
    a, b = say("mine", openid="o-1"), say("theirs", openid="o-2")
    staff_service.assign_owner(db, [a.contact_id], mine.id, actor=ACTOR)
    staff_service.assign_owner(db, [b.contact_id], theirs.id, actor=ACTOR)
    db.commit()
    assert sign_in(client, user.email).status_code == 303
    inbox = client.get("/console/inbox").text
    assert 'href="/console/sensitive-words"' not in inbox  # the sidebar leaves out pages staff can't open
    hidden = next(c for c in service.list_conversations(db)[0] if c.contact_id == b.contact_id)
    assert f"/console/inbox/{hidden.id}\"" not in inbox
    assert client.get(f"/console/inbox/{hidden.id}").status_code == 404
    assert "theirs" not in client.get("/console/archive", params={"q": "theirs"}).text.split("</form>")[-1]
    assert client.get("/console/sensitive-words").status_code == 403
