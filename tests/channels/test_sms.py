"""SMS through a local Aliyun that checks every signature: sends, misbehaviour, receipts and replies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.channels import service
from siyu.channels import sms as sms_channel
from siyu.channels.sms import aliyun
from siyu.channels.sms.service import UNSUBSCRIBE_WORDS, is_unsubscribe
from siyu.contacts import service as contacts
from siyu.conversations.models import Message
from siyu.core.audit import Actor
from siyu.core.errors import Invalid
from siyu.core.models import Event, Job
from tests.servers import serve
from tests.servers.aliyun_sms import FakeAliyunSms

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")
TOKEN = "push-token-0123456789"
CONTENT = {"type": "sms", "template_code": "SMS_1001", "params": {"code": "4321"}, "text": "您的验证码是4321"}


@pytest.fixture
def fake() -> Iterator[tuple[FakeAliyunSms, str]]:
    server = FakeAliyunSms()
    with serve(server.app()) as url:
        yield server, url


def make_account(db, url: str, secret: str = "test-secret"):
    return service.create_account(
        db, kind="sms", name="Aliyun", actor=ACTOR,
        config={"access_key_id": "LTAI-test", "sign_name": "思域", "endpoint": url},
        secrets={"access_key_secret": secret, "push_token": TOKEN},
    )


def person(db, phone: str = "13800138000"):
    contact, _ = contacts.upsert_contact(db, identities=[{"type": "phone", "value": phone}], actor=None)
    return contact


def queue(db, account, key: str, contact=None):
    """One SMS queued to the contact (a new one by default), in the test's transaction."""
    return service.queue_send(db, account=account, contact_id=(contact or person(db)).id, content=CONTENT,
                              origin="test", idempotency_key=key)


def test_a_message_is_signed_sent_and_its_receipt_marks_it_delivered(db, ws, fake, run_jobs, client):
    server, url = fake
    account = make_account(db, url)
    contact = person(db)
    message = queue(db, account, "otp:1", contact)
    run_jobs()

    (sent,) = server.sent
    assert (sent["PhoneNumbers"], sent["SignName"], sent["TemplateCode"]) == ("13800138000", "思域", "SMS_1001")
    assert sent["TemplateParam"] == '{"code":"4321"}'
    assert (sent["SignatureMethod"], sent["SignatureVersion"], sent["Version"]) == ("HMAC-SHA1", "1.0", "2017-05-25")
    assert sent["OutId"] == f"msg:{message.id}"
    stored = service.get_message(db, message.id)
    assert (stored.status, stored.external_id, stored.text) == ("sent", sent["BizId"], "您的验证码是4321")

    answer = FakeAliyunSms.push(client, account.id, "report", [server.report(sent)], TOKEN)
    assert answer.json() == {"code": 0, "msg": "成功"}
    db.expire_all()
    assert service.get_message(db, message.id).status == "delivered"


def test_a_receipt_ahead_of_its_send_record_is_asked_again_not_lost(db, ws, fake, run_jobs, client):
    server, url = fake
    account = make_account(db, url)
    message = queue(db, account, "otp:early")
    early = {"PhoneNumbers": "13800138000", "BizId": "999^0", "OutId": f"msg:{message.id}"}
    stranger = {"PhoneNumbers": "13800138001", "BizId": "777^0", "OutId": "another-system"}
    answer = FakeAliyunSms.push(client, account.id, "report", [server.report(early), server.report(stranger)], TOKEN)
    assert answer.json()["code"] != 0  # Aliyun pushes it again later
    run_jobs()
    answer = FakeAliyunSms.push(client, account.id, "report", [server.report(server.sent[0])], TOKEN)
    assert answer.json() == {"code": 0, "msg": "成功"}
    db.expire_all()
    assert service.get_message(db, message.id).status == "delivered"


def test_a_failed_receipt_fails_the_message_with_the_carriers_code(db, ws, fake, run_jobs, client):
    server, url = fake
    account = make_account(db, url)
    message = queue(db, account, "otp:2")
    run_jobs()
    receipt = server.report(server.sent[0], success=False, code="MK:0001", message="用户关机")
    assert FakeAliyunSms.push(client, account.id, "report", [receipt], TOKEN).status_code == 200
    db.expire_all()
    failed = service.get_message(db, message.id)
    assert (failed.status, failed.error) == ("failed", "MK:0001: 用户关机")


def test_a_wrong_secret_is_refused_by_the_platform_and_fails_the_message(db, ws, fake, run_jobs):
    server, url = fake
    account = make_account(db, url, secret="not-the-secret")
    message = queue(db, account, "otp:3")
    run_jobs()
    assert server.sent == []
    assert server.refused == ["SignatureDoesNotMatch"]
    failed = service.get_message(db, message.id)
    assert failed.status == "failed"
    assert failed.error.startswith("SignatureDoesNotMatch")


def test_throttling_and_5xx_are_retried_and_an_illegal_number_fails(db, ws, fake, run_jobs, frozen_now):
    server, url = fake
    account = make_account(db, url)
    contact = person(db)
    server.script = ["isv.BUSINESS_LIMIT_CONTROL", 503]
    retried = queue(db, account, "r:1", contact)
    run_jobs()
    assert service.get_message(db, retried.id).status == "queued"
    frozen_now.advance(seconds=3600)
    run_jobs()
    assert service.get_message(db, retried.id).status == "queued"
    frozen_now.advance(seconds=3600)
    run_jobs()
    assert service.get_message(db, retried.id).status == "sent"
    assert len(server.sent) == 1

    server.script = ["isv.MOBILE_NUMBER_ILLEGAL"]
    bad = queue(db, account, "r:2", contact)
    run_jobs()
    failed = service.get_message(db, bad.id)
    assert (failed.status, failed.error) == ("failed", "isv.MOBILE_NUMBER_ILLEGAL: 非法手机号")


def test_a_send_without_an_answer_is_unknown_and_never_repeated(db, ws, fake, run_jobs, frozen_now, monkeypatch):
    server, url = fake
    monkeypatch.setattr(aliyun, "TIMEOUT_SECONDS", 0.2)
    server.script, server.hang_seconds = ["hang"], 0.6
    account = make_account(db, url)
    message = queue(db, account, "u:1")
    run_jobs()
    frozen_now.advance(seconds=7200)
    run_jobs()
    assert db.execute(select(Job.status).where(Job.id == message.job_id)).scalar_one() == "unknown"
    assert service.get_message(db, message.id).status == "queued"
    assert server.sent == []


def test_a_td_reply_is_archived_once_and_withdraws_sms_consent(db, ws, fake, client):
    _, url = fake
    account = make_account(db, url)
    contact = person(db)
    contacts.set_consent(db, contact, channel="sms", status="granted", source="signup form", actor=ACTOR)
    hello = FakeAliyunSms.reply("13800138000", "你好", 1)
    stop = FakeAliyunSms.reply("13800138000", " ＴＤ。", 2)

    for _ in range(2):  # Aliyun pushes again when it missed our answer
        assert FakeAliyunSms.push(client, account.id, "inbound", [hello, stop], TOKEN).json()["code"] == 0

    db.expire_all()
    archived = db.execute(select(Message.text, Message.contact_id, Message.direction)
                          .where(Message.channel == "sms").order_by(Message.id)).all()
    assert archived == [("你好", contact.id, "in"), (" ＴＤ。", contact.id, "in")]
    assert contacts.contact_permission(db, contact, "sms", "marketing").reason == "withdrawn"
    (withdrawn,) = db.execute(select(Event.properties).where(Event.type == "consent.withdrawn")).scalars()
    assert (withdrawn["channel"], withdrawn["source"]) == ("sms", "sms reply TD")


def test_pushes_without_the_token_or_to_an_unknown_account_change_nothing(db, ws, fake, client):
    _, url = fake
    account = make_account(db, url)
    reply = [FakeAliyunSms.reply("13800138000", "TD", 1)]
    forged = FakeAliyunSms.push(client, account.id, "inbound", reply, "wrong-token-0123456789")
    assert (forged.status_code, forged.json()["error"]["field"]) == (403, "token")
    assert FakeAliyunSms.push(client, 999999, "inbound", reply, TOKEN).status_code == 404
    bad = client.post(f"/hooks/sms/{account.id}/report?token={TOKEN}", content=b"<xml/>")
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "body")
    assert db.execute(select(Message.id).where(Message.channel == "sms")).first() is None


def test_bad_settings_are_refused_with_the_field(db, ws):
    with pytest.raises(Invalid, match="push token") as refused:
        service.create_account(db, kind="sms", name="x", actor=ACTOR,
                               config={"access_key_id": "id", "sign_name": "思域"},
                               secrets={"access_key_secret": "s", "push_token": "short"})
    assert refused.value.field == "secrets.push_token"


def test_test_connection_makes_a_signed_call(db, ws, fake):
    _, url = fake
    account = make_account(db, url)
    assert "RequestId" in service.run_async(sms_channel.ADAPTER.check_connection(account))


@given(st.sampled_from(sorted(UNSUBSCRIBE_WORDS)), st.sampled_from(["", " ", "\n", "。", "!"]),
       st.booleans(), st.booleans())
def test_unsubscribe_words_match_in_any_width_case_and_padding(word, pad, upper, wide):
    text = word.upper() if upper else word
    if wide:
        text = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    assert is_unsubscribe(pad + text + pad)
    assert not is_unsubscribe(text + "好的")


def test_parts_follow_the_carriers_70_and_67_rule():
    assert sms_channel.parts("a" * 66, "思域") == 1
    assert sms_channel.parts("a" * 67, "思域") == 2
    assert sms_channel.parts("a" * 130, "思域") == 2
    assert sms_channel.parts("a" * 131, "思域") == 3
