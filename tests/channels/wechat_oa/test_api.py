"""The OA's REST API against the local fake: QR codes, the menu checked against the platform's rules,
template messages through the outbox with their delivery by callback, and the urgent path of a follow."""

from __future__ import annotations

from sqlalchemy import select

from siyu.channels import service
from siyu.channels.base import Inbound
from siyu.conversations.models import Message
from siyu.core.models import AuditEntry
from tests.channels.wechat_oa.conftest import ACTOR, SAMPLE_TS, post
from tests.servers.wechat_oa import push_xml, signed

QR = "/cgi-bin/qrcode/create"


def _base(oa) -> str:
    return f"/api/v1/channel-accounts/{oa.id}/wechat-oa"


def test_a_temporary_and_a_permanent_qr_code_carry_the_scene(client, oa, fake, api_key, db):
    server, _ = fake
    key = api_key
    temp = client.post(_base(oa) + "/qrcodes", headers=key, json={"scene": "store-42", "expire_seconds": 3600})
    perm = client.post(_base(oa) + "/qrcodes", headers=key, json={"scene": "parcel", "permanent": True})

    assert temp.status_code == 201, temp.text
    assert temp.json()["expire_seconds"] == 3600
    assert temp.json()["image_url"].startswith("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH47")
    assert "%3D%3D" in temp.json()["image_url"]  # the ticket is URL-encoded
    assert perm.json()["expire_seconds"] is None
    bodies = [body for _, _, body in server.calls(QR)]
    assert bodies == [
        {"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "store-42"}}, "expire_seconds": 3600},
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "parcel"}}},
    ]
    bad = client.post(_base(oa) + "/qrcodes", headers=key, json={"scene": "x" * 65})
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "scene")
    assert len(server.calls(QR)) == 2


def test_a_menu_is_checked_against_the_platform_rules_before_it_is_sent(client, oa, fake, api_key, db):
    server, _ = fake
    key = api_key
    url = _base(oa) + "/menu"
    assert client.get(url, headers=key).json() == {"button": []}
    click = {"type": "click", "name": "新品", "key": "NEW"}
    wrong = [
        ({"button": [click] * 4}, "button"),
        ({"button": [{"name": "菜单", "sub_button": [click] * 6}]}, "button.0.sub_button"),
        ({"button": [{**click, "name": "超过四个汉字的"}]}, "button.0.name"),
        ({"button": [click, {"name": "更多", "sub_button": [click, {"type": "view", "name": "官网"}]}]},
         "button.1.sub_button.1.url"),
        ({"button": [{"type": "teleport", "name": "x"}]}, "button.0.type"),
    ]
    for menu, field in wrong:
        r = client.put(url, headers=key, json=menu)
        assert (r.status_code, r.json()["error"]["field"]) == (422, field), menu
    assert server.calls("/cgi-bin/menu/create") == []

    menu = {"button": [click, {"name": "更多", "sub_button": [
        {"type": "view", "name": "官网", "url": "https://shop.example"},
        {"type": "miniprogram", "name": "小程序", "url": "https://shop.example", "appid": "wxapp", "pagepath": "p/i"},
    ]}]}
    put = client.put(url, headers=key, json=menu)
    assert put.status_code == 200, put.text
    assert client.get(url, headers=key).json() == menu
    assert client.delete(url, headers=key).status_code == 204
    assert client.get(url, headers=key).json() == {"button": []}
    actions = db.execute(select(AuditEntry.action).where(AuditEntry.action.like("wechat_oa.%"))).scalars().all()
    assert actions == ["wechat_oa.menu.update", "wechat_oa.menu.delete"]


def test_a_platform_refusal_is_a_502_and_marks_the_account_health(client, oa, fake, api_key, db):
    server, _ = fake
    server.misbehave("/cgi-bin/menu/get", "expired", "expired")
    r = client.get(_base(oa) + "/menu", headers=api_key)
    assert (r.status_code, r.json()["error"]["code"]) == (502, "platform_error")
    db.expire_all()
    assert service.get_account(db, oa.id).last_error.startswith("42001")


def test_another_kind_of_account_is_not_found(client, db, ws, api_key):
    other = service.create_account(db, kind="webhook", name="Hook", config={"url": "https://x.example/in"},
                                   secrets={"secret": "s" * 20}, actor=ACTOR)
    r = client.get(f"/api/v1/channel-accounts/{other.id}/wechat-oa/menu", headers=api_key)
    assert r.status_code == 404


def test_a_template_message_goes_out_once_and_its_delivery_arrives_by_callback(
        client, oa, fake, api_key, db, run_jobs, sample_clock):
    server, _ = fake
    got = service.receive(db, oa, Inbound(dedupe_key="s", sender="oUser1", kind="event", event="joined"))
    key = api_key
    body = {"contact_id": got.contact_id, "template_id": "TPL-ORDER", "url": "https://shop.example/o/1",
            "data": {"first": "您的订单已发货", "keyword1": {"value": "SF123", "color": "#173177"}},
            "idempotency_key": "order-1-shipped"}
    first = client.post(_base(oa) + "/template-messages", headers=key, json=body)
    again = client.post(_base(oa) + "/template-messages", headers=key, json=body)
    assert first.status_code == 202, first.text
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["status"] == "queued"
    run_jobs()

    assert len(server.sent) == 1
    sent = server.sent[0]
    assert (sent["touser"], sent["template_id"]) == ("oUser1", "TPL-ORDER")
    assert sent["data"]["first"] == {"value": "您的订单已发货"}
    assert sent["client_msg_id"]
    message = service.get_message(db, first.json()["id"])
    assert (message.status, message.external_id) == ("sent", "200000001")

    finished = push_xml(MsgType="event", Event="TEMPLATESENDJOBFINISH", MsgID="200000001", Status="success")
    assert post(client, oa.id, *signed(finished, timestamp=SAMPLE_TS, encrypt=True)).text == "success"
    db.expire_all()
    assert service.get_message(db, message.id).status == "delivered"

    no_contact = client.post(_base(oa) + "/template-messages", headers=key, json={**body, "contact_id": 999_999})
    assert no_contact.status_code == 404


def test_a_blocked_template_is_failed_with_the_platform_status(client, oa, db, run_jobs, sample_clock, fake):
    got = service.receive(db, oa, Inbound(dedupe_key="s", sender="oUser1", kind="event", event="joined"))
    message = service.queue_send(db, account=oa, contact_id=got.contact_id, origin="t", idempotency_key="t1",
                                 content={"type": "template", "template_id": "T", "data": {"a": "b"}})
    run_jobs()
    external = service.get_message(db, message.id).external_id
    finished = push_xml(MsgType="event", Event="TEMPLATESENDJOBFINISH", MsgID=external, Status="failed:user block")
    post(client, oa.id, *signed(finished, timestamp=SAMPLE_TS, encrypt=True))
    db.expire_all()
    blocked = service.get_message(db, message.id)
    assert (blocked.status, blocked.error) == ("failed", "failed:user block")


def test_a_follow_sends_its_welcome_on_the_urgent_path_after_the_commit(
        client, oa, fake, db, sample_clock, urgent_on_test_connection):
    server, _ = fake

    @service.on_receive("test-oa-welcome")
    def welcome(session, account, item, received):
        if item.event == "joined":
            service.queue_send(session, account=account, contact_id=received.contact_id, urgent=True,
                               received=received, content={"type": "text", "text": "欢迎关注"}, origin="welcome:t",
                               idempotency_key=f"welcome:{account.id}:{item.dedupe_key}")
        return None

    try:
        body, query = signed(push_xml(MsgType="event", Event="subscribe"), timestamp=SAMPLE_TS, encrypt=True)
        r = post(client, oa.id, body, query)
    finally:
        service.remove_receive_hook("test-oa-welcome")
    assert r.text == "success"
    assert len(urgent_on_test_connection) == 1
    # The follow opened the 48-hour window, so the customer-service message went out at once.
    assert [(s["touser"], s["text"]["content"]) for s in server.sent] == [("oUser1", "欢迎关注")]
    db.expire_all()
    welcome_message = db.execute(select(Message).where(Message.origin == "welcome:t")).scalar_one()
    assert welcome_message.status == "sent"


def test_a_reply_a_passive_answer_cant_carry_goes_out_as_a_customer_service_message(
        client, oa, fake, db, sample_clock, urgent_on_test_connection):
    server, _ = fake

    @service.on_receive("test-oa-card")
    def card(session, account, item, received):
        if item.kind != "text":
            return None
        return {"type": "miniprogram", "title": "店铺", "appid": "wxapp", "pagepath": "p/i", "thumb_media_id": "t"}

    try:
        post(client, oa.id, *signed(push_xml(MsgType="event", Event="subscribe"), timestamp=SAMPLE_TS, encrypt=True))
        body, query = signed(push_xml(MsgType="text", Content="店铺", MsgId="77"), timestamp=SAMPLE_TS, encrypt=True)
        r = post(client, oa.id, body, query)
    finally:
        service.remove_receive_hook("test-oa-card")
    assert r.text == "success"
    assert [s["msgtype"] for s in server.sent] == ["miniprogrampage"]
