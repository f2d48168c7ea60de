"""`/hooks/wecom/{account}`: the published URL-verification sample, contact events end to end, duplicates,
and forged, stale or hostile callbacks refused with nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from siyu.channels import service as channels
from siyu.channels.models import CallbackReceipt
from siyu.contacts import service as contacts
from siyu.conversations.models import Message
from siyu.core import clock
from siyu.core.models import Event, Job
from tests.channels.wecom.conftest import ACTOR
from tests.servers.wecom import CORP_ID, add_external_contact_xml, callback_body

PUBLISHED = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
             "nonce": "263014780",
             "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}


def post(client, account, xml: str, **kwargs):
    query, body = callback_body(xml, **kwargs)
    return client.post(f"/hooks/wecom/{account.id}", params=query, content=body)


def counts(db) -> tuple[int, int]:
    db.expire_all()
    return (db.execute(select(func.count()).select_from(Event)).scalar_one(),
            db.execute(select(func.count()).select_from(CallbackReceipt)).scalar_one())


def test_the_published_url_verification_sample_answers_the_bare_echostr(db, ws, client):
    account = channels.create_account(
        db, kind="wecom", name="Sample corp", actor=ACTOR,
        config={"corp_id": "wx5823bf96d3bd56c7", "agent_id": "1"},
        secrets={"secret": "s", "token": "QDG6eK", "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"})
    db.commit()
    clock.set_clock(clock.FrozenClock(datetime.fromtimestamp(1409659589, UTC)))

    r = client.get(f"/hooks/wecom/{account.id}", params=PUBLISHED)

    assert r.status_code == 200
    assert r.content == b"1616140317555161061"
    raw = "&".join(f"{k}={v}" for k, v in PUBLISHED.items())  # '+' and '/' left as they are
    assert client.get(f"/hooks/wecom/{account.id}?{raw}").content == b"1616140317555161061"
    forged = client.get(f"/hooks/wecom/{account.id}", params={**PUBLISHED, "nonce": "263014781"})
    assert (forged.status_code, forged.json()["error"]["code"]) == (400, "bad_signature")


def test_an_add_makes_a_joined_contact_once_and_a_delete_withdraws_consent(db, account, hooks_app, client, fake,
                                                                          run_jobs):
    fake.contacts["wmEXT1"] = {"external_contact": {"external_userid": "wmEXT1", "name": "小红", "gender": 2,
                                                    "unionid": "ouUNION1"}}
    add = add_external_contact_xml("wmEXT1", userid="lisi", state="parcel-card", create_time=1764500000)

    first = post(client, account, add)
    again = post(client, account, add)

    assert (first.status_code, first.text, again.text) == (200, "success", "success")
    db.expire_all()
    contact = contacts.get_contact(db, channels.address_row(db, account, "wmEXT1").contact_id)
    assert [(i.type, i.value) for i in contacts.identities_of(db, contact)] == [("external_userid", "wmEXT1")]
    run_jobs()  # the profile: WeCom's name, gender and the unionid that joins the Official Account's contact
    contact = contacts.get_contact(db, contact.id)
    assert (contact.nickname, contact.gender) == ("小红", "female")
    assert ("unionid", "ouUNION1") in [(i.type, i.value) for i in contacts.identities_of(db, contact)]
    assert len(fake.calls("/cgi-bin/externalcontact/get")) == 1
    assert contacts.may_contact(db, contact, "wecom")
    assert channels.address_row(db, account, "wmEXT1").staff_userid == "lisi"
    joined = db.execute(select(Event).where(Event.type == "channel.joined")).scalars().all()
    assert [(e.contact_id, e.properties["state"], e.properties["staff_userid"]) for e in joined] == [
        (contact.id, "parcel-card", "lisi")]

    post(client, account, add_external_contact_xml("wmEXT1", userid="lisi", change_type="del_follow_user",
                                                   create_time=1764500100))
    db.expire_all()
    assert channels.address_row(db, account, "wmEXT1").state == "left"
    assert not contacts.may_contact(db, contacts.get_contact(db, contact.id), "wecom")


def test_edit_and_transfer_fail_are_recorded_and_tag_events_dedupe_on_their_change_type(db, account, hooks_app,
                                                                                        client):
    post(client, account, add_external_contact_xml("wmEXT2", create_time=1764500000))
    post(client, account, add_external_contact_xml("wmEXT2", change_type="edit_external_contact",
                                                   create_time=1764500001))
    fail = add_external_contact_xml("wmEXT2", change_type="transfer_fail", create_time=1764500002).replace(
        "</xml>", "<FailReason><![CDATA[customer_refused]]></FailReason></xml>")
    post(client, account, fail)
    tag = ("<xml><ToUserName><![CDATA[{c}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
           "<CreateTime>1764500003</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[change_external_tag]]></Event><Id><![CDATA[etTAG1]]></Id>"
           "<TagType><![CDATA[tag]]></TagType><ChangeType><![CDATA[{t}]]></ChangeType></xml>")
    for change in ("create", "update", "create"):  # same second, same tag: only the ChangeType differs
        assert post(client, account, tag.format(c=CORP_ID, t=change)).text == "success"
    with_id = add_external_contact_xml("wmEXT2", change_type="edit_external_contact", create_time=1764500009)
    for _ in range(2):  # a MsgId, when WeCom gives one, is the dedupe key
        post(client, account, with_id.replace("</xml>", "<MsgId>7001</MsgId></xml>"))

    db.expire_all()
    rows = db.execute(select(Event.type, Event.properties).where(Event.type.like("channel.%"))
                      .order_by(Event.id)).all()
    assert [t for t, _ in rows] == ["channel.joined", "channel.edited", "channel.transfer_failed",
                                    "channel.tags_changed", "channel.tags_changed", "channel.edited"]
    assert rows[2][1]["fail_reason"] == "customer_refused"
    assert [p["change_type"] for t, p in rows[3:5]] == ["create", "update"]


@pytest.mark.parametrize("case", ["forged", "stale", "entities", "doctype", "not_xml", "other_corp", "no_encrypt"])
def test_forged_stale_or_hostile_callbacks_are_refused_and_change_nothing(db, account, client, case):
    xml = add_external_contact_xml("wmEVIL")
    query, body = callback_body(xml, timestamp=int(clock.now().timestamp()) - 3600 if case == "stale" else None)
    if case == "forged":
        query["msg_signature"] = "0" * 40
    elif case == "entities":
        body = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                b"<xml><Encrypt>&b;</Encrypt></xml>")
    elif case == "doctype":
        body = b'<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Encrypt>x</Encrypt></xml>'
    elif case == "not_xml":
        body = b"{\"Encrypt\": 1}"
    elif case == "other_corp":
        query, body = callback_body(xml, corp_id="wwSOMEONEELSE")
    elif case == "no_encrypt":
        body = b"<xml><ToUserName>x</ToUserName></xml>"
    before = counts(db)

    r = client.post(f"/hooks/wecom/{account.id}", params=query, content=body)

    assert r.status_code == 400, r.text
    assert set(r.json()["error"]) == {"code", "message", "field"}
    assert counts(db) == before


def test_huge_bodies_and_unknown_accounts_are_refused(db, account, client):
    query, _ = callback_body(add_external_contact_xml("wmX"))
    huge = client.post(f"/hooks/wecom/{account.id}", params=query, content=b"<xml>" + b"a" * 70_000 + b"</xml>")
    unknown = client.post("/hooks/wecom/999999", params=query, content=b"<xml/>")
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "too_large")
    assert unknown.status_code == 404


def test_the_welcome_goes_out_on_the_callback_path_ahead_of_1000_queued_jobs(db, account, fake, hooks_app,
                                                                            client):
    @channels.on_receive("test-welcome")
    def welcome(session, acc, item, received):
        if item.event == "joined" and item.details.get("welcome_code"):
            channels.queue_send(session, account=acc, contact_id=received.contact_id, origin="welcome:test",
                                content={"type": "text", "text": "欢迎光临",
                                         "welcome_code": item.details["welcome_code"],
                                         "welcome_code_expires_at": item.details["welcome_code_expires_at"]},
                                idempotency_key=f"welcome:{item.dedupe_key}", urgent=True, received=received)
        return None

    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    db.execute(insert(Job), [{"kind": "channels.deliver", "idempotency_key": f"bulk-{i}", "payload": {"message_id": 0},
                              "workspace_id": account.workspace_id, "status": "pending", "run_at": long_ago,
                              "attempts": 0, "max_attempts": 8, "created_at": long_ago} for i in range(1000)])
    db.commit()
    try:
        r = post(client, account, add_external_contact_xml("wmNEW", state="poster", welcome_code="WC-1"))
    finally:
        channels.remove_receive_hook("test-welcome")

    assert r.text == "success"
    assert [(w["welcome_code"], w["text"]["content"]) for w in fake.welcomes] == [("WC-1", "欢迎光临")]
    db.expire_all()
    pending = db.execute(select(func.count()).select_from(Job).where(Job.idempotency_key.like("bulk-%"),
                                                                      Job.status == "pending")).scalar_one()
    assert pending == 1000
    message = db.execute(select(Message).where(Message.origin == "welcome:test")).scalar_one()
    assert (message.status, message.address) == ("sent", "wmNEW")


def test_the_local_wecom_server_delivers_an_add_to_siyu_over_http(db, account, hooks_app):
    from tests.servers import serve
    from tests.servers.wecom import send_add

    with serve(hooks_app) as base:
        r = send_add(f"{base}/hooks/wecom/{account.id}", "wmHTTP", state="live-code-7", welcome_code="WC-H")

    assert (r.status_code, r.text) == (200, "success")
    db.expire_all()
    event = db.execute(select(Event).where(Event.type == "channel.joined")).scalar_one()
    assert (event.properties["state"], event.properties["welcome_code"]) == ("live-code-7", "WC-H")


def test_a_customer_stays_joined_while_another_member_still_has_them(db, account, hooks_app, client):
    for n, (userid, change) in enumerate([("lisi", "add_external_contact"), ("wangwu", "add_external_contact"),
                                          ("lisi", "del_follow_user")]):
        post(client, account, add_external_contact_xml("wmTWO", userid=userid, change_type=change,
                                                       create_time=1764500000 + n))
    db.expire_all()
    row = channels.address_row(db, account, "wmTWO")
    assert row.state == "joined"
    assert contacts.may_contact(db, contacts.get_contact(db, row.contact_id), "wecom")
    assert db.execute(select(Event.type).where(Event.type.like("channel.%")).order_by(Event.id)).scalars().all() \
        == ["channel.joined", "channel.joined", "channel.staff_removed"]

    post(client, account, add_external_contact_xml("wmTWO", userid="wangwu", change_type="del_external_contact",
                                                   create_time=1764500009))
    db.expire_all()
    assert channels.address_row(db, account, "wmTWO").state == "left"
    assert not contacts.may_contact(db, contacts.get_contact(db, row.contact_id), "wecom")
