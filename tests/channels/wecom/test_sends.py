"""Sends through the worker: welcome messages (41051 is done, an expired code fails with the reason),
member-confirmed mass messages, and WeChat Customer Service: pulls, replies within 48 h / 5 messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from siyu.channels import service as channels
from siyu.channels.base import Inbound
from siyu.channels.wecom import kf
from siyu.conversations.models import Message
from siyu.core import clock
from siyu.core.models import Job
from tests.servers.wecom import CORP_ID, OPEN_KFID, callback_body


def joined(db, account, external="wmA", staff="lisi"):
    return channels.receive(db, account, Inbound(dedupe_key=f"add:{external}", sender=external, kind="event",
                                                 event="joined", staff_userid=staff))


def send(db, account, contact_id, key, **content):
    return channels.queue_send(db, account=account, contact_id=contact_id, content={"type": "text", **content},
                               origin="test", idempotency_key=key)


def test_welcome_codes_work_once_and_an_expired_one_fails_with_the_reason(db, account, fake, run_jobs):
    contact = joined(db, account).contact_id
    send(db, account, contact, "w1", text="欢迎 {{ nickname }}", welcome_code="WC-9",
         attachments=[{"type": "link", "title": "新人礼", "url": "https://shop.example/gift"}])
    run_jobs()
    send(db, account, contact, "w2", text="欢迎", welcome_code="WC-9")
    send(db, account, contact, "w3", text="欢迎", welcome_code="expired-WC")
    send(db, account, contact, "w4", text="欢迎", welcome_code="WC-10",
         welcome_code_expires_at=(clock.now() - timedelta(seconds=1)).isoformat())
    run_jobs()

    statuses = {m.idempotency_key: (m.status, m.error) for m in db.execute(select(Message)).scalars()}
    assert statuses["w1"] == ("sent", None)
    assert statuses["w2"] == ("sent", None)  # 41051: the code was used, the welcome is done
    assert statuses["w3"][0] == "failed"
    assert statuses["w3"][1].startswith("40058: ")
    assert statuses["w4"] == ("failed", "welcome_code_expired: the welcome code expired before it could be used")
    assert [w["welcome_code"] for w in fake.welcomes] == ["WC-9"]
    assert fake.welcomes[0]["attachments"] == [{"msgtype": "link", "link": {
        "title": "新人礼", "url": "https://shop.example/gift", "desc": "", "picurl": ""}}]


def test_other_messages_are_mass_messages_the_member_confirms(db, account, fake, run_jobs):
    contact = joined(db, account).contact_id
    message = send(db, account, contact, "m1", text="双十二预告")
    run_jobs()

    assert [(m["sender"], m["external_userid"], m["text"]["content"]) for m in fake.mass_messages] == [
        ("lisi", ["wmA"], "双十二预告")]
    sent = channels.get_message(db, message.id)
    assert sent.status == "sent"
    assert sent.external_id.startswith("msg")


def kf_callback(client, account, fake, path="wecom-kf"):
    xml = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>{int(clock.now().timestamp())}"
           "</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
           f"<Token><![CDATA[{fake.new_kf_sync_token()}]]></Token><OpenKfId><![CDATA[{OPEN_KFID}]]></OpenKfId></xml>")
    query, body = callback_body(xml, timestamp=int(clock.now().timestamp()))
    return client.post(f"/hooks/{path}/{account.id}", params=query, content=body)


def test_customer_service_pulls_every_page_once_and_replies_within_the_window(
        db, kf_account, fake, hooks_app, client, run_jobs, monkeypatch, frozen_now):
    monkeypatch.setattr(kf, "PAGE_SIZE", 2)
    now = int(clock.now().timestamp())
    for text in ("在吗", "有优惠吗", "谢谢"):
        fake.kf_event("wmKF", text={"content": text}, send_time=now)
    fake.kf_event("wmKF", "image", image={"media_id": "MEDIA1"}, send_time=now)

    assert kf_callback(client, kf_account, fake).text == "success"
    # A second token, on the path the platform docs name: nothing new.
    assert kf_callback(client, kf_account, fake, path="wecom").text == "success"

    db.expire_all()
    archived = db.execute(select(Message.msg_type, Message.text).where(Message.direction == "in")
                          .order_by(Message.id)).all()
    assert archived == [("text", "在吗"), ("text", "有优惠吗"), ("text", "谢谢"), ("image", "")]
    assert channels.get_account(db, kf_account.id).config["kf_cursor"] == "4"
    row = channels.address_row(db, kf_account, "wmKF")
    assert row.state == "joined"

    replies = [send(db, kf_account, row.contact_id, f"r{i}", text=f"回复{i}") for i in range(6)]
    run_jobs()
    outcomes = [channels.get_message(db, m.id) for m in replies]
    sent = [m for m in outcomes if m.status == "sent"]
    failed = [m for m in outcomes if m.status != "sent"]
    assert (len(sent), len(failed)) == (5, 1)
    assert failed[0].error.startswith("window_full")
    assert sorted(s["text"]["content"] for s in fake.kf_sent) == sorted(m.text for m in sent)
    assert {(s["touser"], s["open_kfid"]) for s in fake.kf_sent} == {("wmKF", OPEN_KFID)}
    assert {m.external_id for m in sent} == {s["msgid"] for s in fake.kf_sent}

    frozen_now.advance(hours=49)
    fake.kf_event("wmKF", text={"content": "还在吗"}, send_time=int(clock.now().timestamp()))
    kf_callback(client, kf_account, fake)
    db.expire_all()
    after = send(db, kf_account, row.contact_id, "r-after", text="在的")
    run_jobs()
    assert channels.get_message(db, after.id).status == "sent"  # the customer wrote again: the window reopened
    frozen_now.advance(hours=49)
    closed = send(db, kf_account, row.contact_id, "r-closed", text="还在")
    run_jobs()
    assert channels.get_message(db, closed.id).error.startswith("window_closed")


@pytest.mark.usefixtures("frozen_now")
def test_an_enter_session_welcome_and_a_failed_delivery_come_through_the_pull(db, kf_account, fake, hooks_app,
                                                                              client, run_jobs):
    @channels.on_receive("test-kf-welcome")
    def welcome(session, acc, item, received):
        if item.event == "joined" and item.details.get("welcome_code"):
            channels.queue_send(session, account=acc, contact_id=received.contact_id, origin="welcome:kf",
                                content={"type": "text", "text": "您好", "welcome_code": item.details["welcome_code"]},
                                idempotency_key=f"kfw:{item.dedupe_key}", urgent=True, received=received)

    fake.kf_event("wmNEW", "event", event={"event_type": "enter_session", "open_kfid": OPEN_KFID,
                                           "external_userid": "wmNEW", "scene": "poster", "welcome_code": "KFW1"})
    try:
        kf_callback(client, kf_account, fake)
    finally:
        channels.remove_receive_hook("test-kf-welcome")
    assert [(s["code"], s["text"]["content"]) for s in fake.kf_sent] == [("KFW1", "您好")]

    db.expire_all()
    welcome_message = db.execute(select(Message).where(Message.origin == "welcome:kf")).scalar_one()
    assert welcome_message.status == "sent"
    fake.kf_event("wmNEW", "event", event={"event_type": "msg_send_fail", "open_kfid": OPEN_KFID,
                                           "external_userid": "wmNEW", "fail_msgid": welcome_message.external_id,
                                           "fail_type": 4})
    kf_callback(client, kf_account, fake)
    db.expire_all()
    failed = channels.get_message(db, welcome_message.id)
    assert failed.status == "failed"
    assert "fail_type 4" in failed.error


def test_a_blocked_send_is_retried_no_sooner_than_wecom_said(db, account, fake, run_jobs, frozen_now):
    contact = joined(db, account).contact_id
    fake.fail("/cgi-bin/externalcontact/add_msg_template", 45009)
    message = send(db, account, contact, "blocked", text="预告")
    run_jobs()

    queued = channels.get_message(db, message.id)
    job = db.execute(select(Job).where(Job.id == queued.job_id)).scalar_one()
    assert (queued.status, job.status) == ("queued", "pending")
    assert job.run_at >= clock.now() + timedelta(seconds=60)  # not the first backoff's few seconds
    frozen_now.advance(seconds=61)
    run_jobs()
    assert channels.get_message(db, message.id).status == "sent"
    assert len(fake.mass_messages) == 1


def test_cards_in_the_messaging_modules_shapes_become_wecom_attachments():
    from siyu.channels.wecom.adapter import attachments, kf_message

    content = {"type": "text", "text": "欢迎", "attachments": [
        {"type": "image", "url": "https://shop.example/a.png"},
        {"type": "miniprogram", "appid": "wxapp", "pagepath": "pages/gift", "title": "领券", "thumb_media_id": "M1"}]}
    assert attachments(content) == [
        {"msgtype": "image", "image": {"pic_url": "https://shop.example/a.png"}},
        {"msgtype": "miniprogram", "miniprogram": {"title": "领券", "appid": "wxapp", "page": "pages/gift",
                                                   "pic_media_id": "M1"}}]
    card = kf_message(content["attachments"][1])
    assert card["miniprogram"] == {"appid": "wxapp", "title": "领券", "thumb_media_id": "M1", "pagepath": "pages/gift"}
