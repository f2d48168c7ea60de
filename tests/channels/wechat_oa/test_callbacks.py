"""The OA callback end to end through the app, with the published sample Token, EncodingAESKey, AppID,
timestamp and nonce: verification, decryption, events and messages into the pipeline, passive replies
encrypted, duplicates once, and every hostile push refused with nothing stored."""

from __future__ import annotations

from defusedxml import ElementTree
from sqlalchemy import func, select

from siyu.channels import service, wxcrypto
from siyu.channels.models import AccountContact, CallbackReceipt
from siyu.channels.wechat_oa import xml
from siyu.contacts import service as contacts
from siyu.conversations.models import Message
from siyu.core.models import Event
from tests.channels.wechat_oa.conftest import ACTOR, SAMPLE_TS, post
from tests.servers import wechat_oa as fake_oa
from tests.servers.wechat_oa import push_xml, signed

PUBLISHED_CIPHERTEXT = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="


def _stored(db) -> tuple[int, int, int]:
    db.expire_all()
    count = lambda model: db.execute(select(func.count()).select_from(model)).scalar_one()  # noqa: E731
    return count(CallbackReceipt), count(Message), count(Event)


def test_url_verification_answers_the_bare_echostr_and_refuses_a_forged_signature(client, oa, sample_clock):
    query = {"signature": wxcrypto.signature("pamtest", str(SAMPLE_TS), "xxxxxx"), "timestamp": str(SAMPLE_TS),
             "nonce": "xxxxxx", "echostr": "1616140317555161061"}
    ok = client.get(f"/hooks/wechat-oa/{oa.id}", params=query)
    assert (ok.status_code, ok.content) == (200, b"1616140317555161061")

    forged = client.get(f"/hooks/wechat-oa/{oa.id}", params={**query, "signature": "0" * 40})
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "bad_signature"
    assert "1616140317555161061" not in forged.text


def test_the_published_ciphertext_is_signed_and_decrypted_by_the_route(client, oa, sample_clock, db):
    # The sample message is not XML: getting as far as the XML parser proves signature and AES matched.
    ts, nonce = str(SAMPLE_TS), "xxxxxx"
    query = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
             "msg_signature": wxcrypto.signature("pamtest", ts, nonce, PUBLISHED_CIPHERTEXT)}
    body = f"<xml><ToUserName>gh_test</ToUserName><Encrypt>{xml.cdata(PUBLISHED_CIPHERTEXT)}</Encrypt></xml>"
    r = post(client, oa.id, body, query)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_xml"
    assert _stored(db)[0] == 0


def test_an_encrypted_follow_through_a_qr_code_makes_a_joined_contact_once(client, oa, sample_clock, db):
    push = push_xml(MsgType="event", Event="subscribe", EventKey="qrscene_parcel-card", Ticket="TICKET")
    body, query = signed(push, timestamp=SAMPLE_TS, encrypt=True)

    first = post(client, oa.id, body, query)
    again = post(client, oa.id, body, query)  # the platform retries when it thinks it got no answer

    assert (first.status_code, first.text, again.status_code, again.text) == (200, "success", 200, "success")
    db.expire_all()
    row = db.execute(select(AccountContact)).scalar_one()
    assert (row.address, row.state, row.last_inbound_at is not None) == ("oUser1", "joined", True)
    contact = contacts.get_contact(db, row.contact_id)
    assert contacts.may_contact(db, contact, "wechat_oa")
    joined = db.execute(select(Event).where(Event.type == "channel.joined")).scalars().all()
    assert [(e.contact_id, e.properties["scene"], e.properties["ticket"]) for e in joined] == [
        (contact.id, "parcel-card", "TICKET")]
    assert _stored(db)[0] == 1


def test_a_text_message_is_archived_and_the_passive_reply_comes_back_encrypted(client, oa, sample_clock, db):
    @service.on_receive("test-oa-reply")
    def reply(session, account, item, received):
        if item.kind != "text":
            return None
        received.reply_origin = "keyword:7"
        return {"type": "text", "text": "价格见 ]]> 菜单"}

    try:
        body, query = signed(push_xml(MsgType="text", Content="价格", MsgId="6054768590064713728"),
                             timestamp=SAMPLE_TS, encrypt=True)
        r = post(client, oa.id, body, query)
        retried = post(client, oa.id, body, query)  # our answer was late: the platform asks again
    finally:
        service.remove_receive_hook("test-oa-reply")

    assert r.status_code == 200
    envelope = xml.parse(r.content)
    wxcrypto.check_signature(envelope["MsgSignature"], fake_oa.TOKEN, envelope["TimeStamp"], envelope["Nonce"],
                             envelope["Encrypt"])
    inner = xml.parse(wxcrypto.decrypt(envelope["Encrypt"], fake_oa.AES_KEY, fake_oa.APP_ID).encode())
    assert (inner["ToUserName"], inner["FromUserName"], inner["MsgType"], inner["Content"]) == (
        "oUser1", "gh_test", "text", "价格见 ]]> 菜单")
    again = xml.parse(retried.content)
    assert xml.parse(wxcrypto.decrypt(again["Encrypt"], fake_oa.AES_KEY, fake_oa.APP_ID).encode()) == inner
    db.expire_all()
    messages = db.execute(select(Message).order_by(Message.id)).scalars().all()
    assert [(m.direction, m.text, m.status, m.external_id, m.origin) for m in messages] == [
        ("in", "价格", "received", "6054768590064713728", None), ("out", "价格见 ]]> 菜单", "sent", None, "keyword:7")]


def test_a_plain_mode_push_with_a_link_reply_answers_news_xml(client, db, ws, sample_clock):
    account = service.create_account(db, kind="wechat_oa", name="Plain", actor=ACTOR,
                                     config={"app_id": fake_oa.APP_ID, "mode": "plain"},
                                     secrets={"app_secret": "s", "token": fake_oa.TOKEN})

    @service.on_receive("test-oa-link")
    def reply(session, acc, item, received):
        return {"type": "link", "title": "新品", "url": "https://shop.example/new", "pic_url": "https://p/1.jpg"}

    try:
        body, query = signed(push_xml(MsgType="event", Event="CLICK", EventKey="NEW_ARRIVALS"), timestamp=SAMPLE_TS)
        r = post(client, account.id, body, query)
    finally:
        service.remove_receive_hook("test-oa-link")
    answer = ElementTree.fromstring(r.content)
    assert tuple(answer.findtext(p) for p in ("MsgType", "ArticleCount", ".//Title", ".//Url")) == (
        "news", "1", "新品", "https://shop.example/new")
    db.expire_all()
    click = db.execute(select(Event).where(Event.type == "channel.menu_click")).scalar_one()
    assert click.properties["key"] == "NEW_ARRIVALS"


def test_hostile_and_stale_pushes_are_refused_and_store_nothing(client, oa, sample_clock, db):
    good = push_xml(MsgType="text", Content="hi", MsgId="1")
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            "<xml><ToUserName>gh</ToUserName><FromUserName>oUser1</FromUserName><CreateTime>1</CreateTime>"
            "<MsgType>text</MsgType><Content>&lol2;</Content><MsgId>2</MsgId></xml>")
    before = _stored(db)
    cases = []
    body, query = signed(good, timestamp=SAMPLE_TS, encrypt=True)
    cases.append(("forged", body, {**query, "msg_signature": "f" * 40}, 400, "bad_signature"))
    cases.append(("stale", *signed(good, timestamp=SAMPLE_TS - 3600, encrypt=True), 400, "stale"))
    cases.append(("future", *signed(good, timestamp=SAMPLE_TS + 3600, encrypt=True), 400, "stale"))
    cases.append(("entities", *signed(bomb, timestamp=SAMPLE_TS, encrypt=True), 400, "bad_xml"))
    cases.append(("plain to safe", *signed(good, timestamp=SAMPLE_TS), 400, "encryption_required"))
    other_key = "B" * 43
    cases.append(("other key", *signed(good, timestamp=SAMPLE_TS, encrypt=True, aes_key=other_key), 400, None))
    other_app = signed(good, timestamp=SAMPLE_TS, encrypt=True, app_id="wx0000000000000000")
    cases.append(("other app", *other_app, 400, "wrong_receiver"))
    cases.append(("garbage", "<xml><Encrypt>", query, 400, "bad_xml"))
    cases.append(("huge", "<xml>" + "a" * (xml.MAX_BODY_BYTES + 1) + "</xml>", query, 413, "too_large"))

    for name, body, query, status, code in cases:
        r = post(client, oa.id, body, query)
        assert r.status_code == status, (name, r.text)
        assert set(r.json()) == {"error"}, name
        if code is not None:
            assert r.json()["error"]["code"] == code, (name, r.text)
    assert post(client, 999_999, *signed(good, timestamp=SAMPLE_TS, encrypt=True)).status_code == 404
    assert _stored(db) == before


def test_entities_are_refused_in_plain_mode_before_anything_expands(client, db, ws, sample_clock):
    account = service.create_account(db, kind="wechat_oa", name="Plain", actor=ACTOR,
                                     config={"app_id": fake_oa.APP_ID, "mode": "plain"},
                                     secrets={"app_secret": "s", "token": fake_oa.TOKEN})
    before = _stored(db)
    external = ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><FromUserName>&e;</FromUserName>'
                "<MsgType>text</MsgType></xml>")
    r = post(client, account.id, *signed(external, timestamp=SAMPLE_TS))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_xml")
    assert _stored(db) == before


def test_a_compatible_mode_account_takes_plain_and_encrypted_pushes(client, db, ws, sample_clock):
    account = service.create_account(db, kind="wechat_oa", name="Compat", actor=ACTOR,
                                     config={"app_id": fake_oa.APP_ID, "mode": "compatible"},
                                     secrets={"app_secret": "s", "token": fake_oa.TOKEN,
                                              "encoding_aes_key": fake_oa.AES_KEY})
    plain = post(client, account.id, *signed(push_xml(MsgType="text", Content="a", MsgId="1"), timestamp=SAMPLE_TS))
    sealed = post(client, account.id, *signed(push_xml(MsgType="text", Content="b", MsgId="2"), timestamp=SAMPLE_TS,
                                               encrypt=True))
    assert (plain.text, sealed.text) == ("success", "success")
    db.expire_all()
    assert db.execute(select(Message.text).order_by(Message.id)).scalars().all() == ["a", "b"]


def test_a_paused_account_stores_the_message_and_does_not_reply(client, oa, db, sample_clock):
    service.update_account(db, oa, status="paused", actor=ACTOR)

    @service.on_receive("test-oa-paused")
    def reply(session, account, item, received):
        return {"type": "text", "text": "hi"}

    try:
        r = post(client, oa.id, *signed(push_xml(MsgType="text", Content="在吗", MsgId="5"), timestamp=SAMPLE_TS,
                                        encrypt=True))
    finally:
        service.remove_receive_hook("test-oa-paused")
    assert r.text == "success"
    db.expire_all()
    assert db.execute(select(Message.direction)).scalars().all() == ["in"]


def test_the_fake_platform_delivers_a_follow_to_a_running_siyu(app, oa, db):
    from tests.servers import serve
    from tests.servers.wechat_oa import deliver

    with serve(app) as base_url:
        r = deliver(base_url, oa.id, push_xml(MsgType="event", Event="subscribe", EventKey="qrscene_live-1",
                                              created=SAMPLE_TS))
    assert (r.status_code, r.text) == (200, "success")
    db.expire_all()
    joined = db.execute(select(Event).where(Event.type == "channel.joined")).scalar_one()
    assert joined.properties["scene"] == "live-1"
