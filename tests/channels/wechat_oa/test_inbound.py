"""The OA's callback fields in siyu's words, replies that survive any text, menus within the rules, and
a new follower's profile fetched in the background."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.channels import service
from siyu.channels.wechat_oa import xml
from siyu.channels.wechat_oa.inbound import dedupe_key, template_receipt, to_inbound
from siyu.channels.wechat_oa.menus import clean_menu
from siyu.contacts import service as contacts
from siyu.core.errors import Invalid
from siyu.core.models import Event
from tests.channels.wechat_oa.conftest import SAMPLE_TS, post
from tests.servers.wechat_oa import push_xml, signed


def _fields(**kw):
    return xml.parse(push_xml(**kw).encode())


def test_events_and_messages_map_to_inbound_items():
    scan = to_inbound(_fields(MsgType="event", Event="SCAN", EventKey="store-42", Ticket="T"))
    assert (scan.kind, scan.event, scan.details["scene"]) == ("event", "scanned", "store-42")
    assert scan.details["ticket"] == "T"
    assert to_inbound(_fields(MsgType="event", Event="subscribe")).details == {}
    view = to_inbound(_fields(MsgType="event", Event="VIEW", EventKey="https://shop.example", MenuId="7"))
    assert (view.event, view.details) == ("menu_view", {"url": "https://shop.example", "menu_id": "7"})
    assert to_inbound(_fields(MsgType="event", Event="unsubscribe")).event == "left"
    loc = to_inbound(_fields(MsgType="event", Event="LOCATION", Latitude="23.1", Longitude="113.3", Precision="65"))
    assert (loc.event, loc.details["latitude"]) == ("location", "23.1")
    push = to_inbound(_fields(MsgType="event", Event="scancode_push", EventKey="k"))
    assert (push.event, push.details["key"]) == ("scancode_push", "k")

    voice = to_inbound(_fields(MsgType="voice", MediaId="M", Format="amr", Recognition="你好", MsgId="9"))
    assert (voice.kind, voice.text, voice.external_id, voice.details["media_id"]) == ("voice", "你好", "9", "M")
    link = to_inbound(_fields(MsgType="link", Title="文章", Url="https://a", Description="d", MsgId="10"))
    assert (link.kind, link.text, link.details["url"]) == ("link", "文章", "https://a")
    image = to_inbound(_fields(MsgType="image", PicUrl="https://p", MediaId="M2", MsgId="11"))
    assert (image.kind, image.details["pic_url"]) == ("image", "https://p")
    assert to_inbound(_fields(MsgType="shortvideo", MediaId="V", MsgId="12")).kind == "video"
    place = to_inbound(_fields(MsgType="location", Location_X="23.1", Location_Y="113.3", Label="广州", MsgId="13"))
    assert (place.text, place.details["location_x"]) == ("广州", "23.1")


def test_dedupe_keys_use_msgid_else_sender_time_event_and_key():
    assert dedupe_key(_fields(MsgType="text", MsgId="42")) == "msg:42"
    click_a = dedupe_key(_fields(MsgType="event", Event="CLICK", EventKey="A"))
    click_b = dedupe_key(_fields(MsgType="event", Event="CLICK", EventKey="B"))
    assert click_a != click_b  # two buttons pressed within one second are two clicks
    assert click_a == f"evt:oUser1:{SAMPLE_TS}:CLICK:A"
    assert template_receipt(_fields(MsgType="event", Event="TEMPLATESENDJOBFINISH", MsgID="1",
                                    Status="failed: system failed")) == ("1", "failed", "failed: system failed")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=200))
def test_any_reply_text_survives_cdata_including_its_terminator(text):
    text = text.strip()
    reply = xml.passive_reply("o", "gh", 1, {"type": "text", "text": f"a]]>{text}]]>"})
    assert reply is not None
    assert xml.parse(reply.encode())["Content"] == f"a]]>{text}]]>".strip()


names = st.text(alphabet="菜单新品ab", min_size=1, max_size=8)
buttons = st.fixed_dictionaries({"type": st.just("click"), "name": names, "key": st.text("abc", min_size=1)})
menus = st.lists(st.one_of(buttons, st.fixed_dictionaries(
    {"name": names, "sub_button": st.lists(buttons, min_size=1, max_size=7)})), min_size=0, max_size=5)


@given(menus)
def test_an_accepted_menu_keeps_the_platform_limits(menu):
    try:
        cleaned = clean_menu({"button": menu})
    except Invalid as exc:
        refused_field = exc.field or ""
        assert refused_field.startswith("button")
        return
    assert 1 <= len(cleaned["button"]) <= 3
    for top in cleaned["button"]:
        assert len(top["name"].encode()) <= 16
        assert len(top.get("sub_button", [])) <= 5
        assert all(len(sub["name"].encode()) <= 60 for sub in top.get("sub_button", []))


@pytest.mark.parametrize("bad", [b"", b"<notxml", b"<root/>", b"<xml><a>&amp;</a>", b"<xml>\x00</xml>"])
def test_malformed_bodies_are_bad_xml(bad):
    with pytest.raises(xml.BadXml):
        xml.parse(bad)


def test_a_follow_fetches_the_profile_in_the_background_and_keeps_the_unionid(
        client, oa, fake, db, sample_clock, run_jobs):
    server, _ = fake
    server.profiles["oUser1"] = {"unionid": "uUnion1", "nickname": "微信用户"}
    post(client, oa.id, *signed(push_xml(MsgType="event", Event="subscribe"), timestamp=SAMPLE_TS, encrypt=True))
    run_jobs()
    assert len(server.calls("/cgi-bin/user/info")) == 1
    joined = db.execute(select(Event).where(Event.type == "channel.joined")).scalar_one()
    contact = contacts.get_contact(db, joined.contact_id)
    assert {(i.type, i.value) for i in contacts.identities_of(db, contact)} == {
        ("openid", "oUser1"), ("unionid", "uUnion1")}  # the contacts module's names
    assert not contact.nickname  # the placeholder name is not a nickname
    assert service.get_account(db, oa.id).last_ok_at is not None


def test_passive_replies_carry_text_images_and_links_but_not_cards():
    image = xml.parse(xml.passive_reply("o", "gh", 1, {"type": "image", "media_id": "M"}).encode())
    assert (image["MsgType"], image["MediaId"]) == ("image", "M")
    assert xml.passive_reply("o", "gh", 1, {"type": "image", "url": "https://x.jpg"}) is None
    assert xml.passive_reply("o", "gh", 1, {"type": "miniprogram", "appid": "wx"}) is None


@pytest.mark.parametrize(("config", "secrets", "field"), [
    ({"app_id": "wx123"}, {}, "config.app_id"),
    ({"app_id": "wx" + "a" * 16, "mode": "secret"}, {}, "config.mode"),
    ({"app_id": "wx" + "a" * 16, "api_base": "ftp://x"}, {}, "config.api_base"),
    ({"app_id": "wx" + "a" * 16}, {"token": "tok"}, "secrets.app_secret"),
    ({"app_id": "wx" + "a" * 16}, {"app_secret": "s", "token": "a b"}, "secrets.token"),
    ({"app_id": "wx" + "a" * 16}, {"app_secret": "s", "token": "tok", "encoding_aes_key": "short"},
     "secrets.encoding_aes_key"),
    ({"app_id": "wx" + "a" * 16, "mode": "safe"}, {"app_secret": "s", "token": "tok"}, "secrets.encoding_aes_key"),
])
def test_account_settings_that_cant_work_are_refused_with_the_field(config, secrets, field):
    from siyu.channels.wechat_oa.adapter import ADAPTER

    with pytest.raises(Invalid) as err:
        ADAPTER.validate_config(config, secrets)
    assert err.value.field == field
    ADAPTER.validate_config({"app_id": "wx" + "a" * 16, "mode": "plain"}, {"app_secret": "s", "token": "tok"})
