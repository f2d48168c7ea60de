"""Broadcasts through the real email and SMS channels, to local servers: each channel takes its own kind of
content, rendered per contact, with consent checked and the channel's own marks (unsubscribe headers,
the provider's template parameters, delivery receipts)."""

from __future__ import annotations

import json
import re

import pytest

from siyu.channels import service as channels
from siyu.channels.base import Inbound
from siyu.contacts import segments
from siyu.contacts import service as contacts
from siyu.core import clock
from siyu.core.errors import Invalid
from siyu.core.tenancy import bind_workspace
from siyu.messaging import broadcast_report, broadcast_sending, broadcasts  # noqa: F401 (its job handlers)
from tests.channels.test_email import make_account as email_account
from tests.channels.test_email import parsed, smtp  # noqa: F401
from tests.channels.test_sms import TOKEN
from tests.channels.test_sms import fake as aliyun  # noqa: F401
from tests.channels.test_sms import make_account as sms_account
from tests.channels.wechat_oa.conftest import fake, oa  # noqa: F401
from tests.conftest import bearer
from tests.messaging.broadcasts.conftest import ACTOR
from tests.servers.aliyun_sms import FakeAliyunSms

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _segment(db, people):
    segment = segments.create_segment(db, name="Newsletter readers", kind="static", actor=ACTOR)
    segments.add_members(db, segment, contact_ids=[p.id for p in people], actor=ACTOR)
    return segment


def _person(db, kind, value, nickname, *, consent=True):
    contact, _ = contacts.upsert_contact(db, identities=[{"type": kind, "value": value}], actor=None)
    contacts.update_contact(db, contact, fields={"nickname": nickname}, actor=ACTOR)
    if consent:
        contacts.set_consent(db, contact, channel="email" if kind == "email" else "sms", status="granted",
                             source="signup form", actor=None)
    return contact


def _send(db, account, segment, content, run_jobs):
    b = broadcasts.create_broadcast(db, name="Autumn tea", account_id=account.id, segment_id=segment.id,
                                    content=content, actor=ACTOR)
    broadcasts.schedule(db, b, at=None, actor=ACTOR)
    run_jobs()
    run_jobs()
    return broadcasts.get_broadcast(db, b.id)


def test_an_email_broadcast_sends_each_reader_a_personal_email_with_unsubscribe_and_tracked_links(
        db, ws, smtp, run_jobs):  # noqa: F811
    mail_server, port = smtp
    account = email_account(db, port)
    people = [_person(db, "email", "mei@example.com", "小美"), _person(db, "email", "li@example.com", "Li"),
              _person(db, "email", "no@example.com", "No", consent=False)]
    content = {"type": "email", "subject": "{{ nickname }}，秋茶上新",
               "text": "Hi {{ nickname }},\nthe autumn oolong is here: https://shop.example.com/autumn"}

    b = _send(db, account, _segment(db, people), content, run_jobs)

    assert b.status == "done"
    mails = {r.recipients[0]: parsed(r.data) for r in mail_server.received}
    assert sorted(mails) == ["li@example.com", "mei@example.com"]  # no consent, no email
    mail = mails["mei@example.com"]
    assert mail["Subject"] == "小美，秋茶上新"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.startswith("Hi 小美,\nthe autumn oolong is here: http")
    assert "shop.example.com/autumn" not in body  # replaced by the reader's own tracked link
    assert re.search(r"/l/[A-Za-z0-9_-]+", body)
    assert re.search(r'<a href="http[^"]+/l/[A-Za-z0-9_-]+">', mail.get_body(("html",)).get_content())
    counts = broadcast_report.status_counts(db, b)
    assert (counts["sent"], counts["skipped"]) == (2, 1)
    assert broadcast_report.reasons(db, b)[0][:2] == ("skipped", "consent:no_opt_in")


def test_an_sms_broadcast_fills_the_providers_template_per_person_and_takes_receipts(
        db, ws, aliyun, run_jobs, client):  # noqa: F811
    server, url = aliyun
    account = sms_account(db, url)
    people = [_person(db, "phone", "13800138000", "小美"), _person(db, "phone", "13900139000", "阿丽")]
    content = {"type": "sms", "template_code": "SMS_2001", "params": {"name": "{{ nickname }}"},
               "text": "{{ nickname }}，秋茶上新，回 TD 退订"}

    b = _send(db, account, _segment(db, people), content, run_jobs)

    sent = {s["PhoneNumbers"]: s for s in server.sent}
    assert sorted(sent) == ["13800138000", "13900139000"]
    assert (sent["13800138000"]["TemplateCode"], json.loads(sent["13800138000"]["TemplateParam"])) == \
        ("SMS_2001", {"name": "小美"})
    archived = sorted(m.text for r, m in broadcast_report.list_recipients(db, b)[0] if m is not None)
    assert archived == ["小美，秋茶上新，回 TD 退订", "阿丽，秋茶上新，回 TD 退订"]

    FakeAliyunSms.push(client, account.id, "report", [server.report(sent["13800138000"])], TOKEN)
    db.expire_all()
    counts = broadcast_report.status_counts(db, b)
    assert (counts["delivered"], counts["sent"]) == (1, 1)


def test_an_oa_template_message_broadcast_reaches_followers_outside_the_48_hour_window(
        db, ws, oa, fake, run_jobs):  # noqa: F811
    server, _ = fake
    frozen = clock.FrozenClock(clock.now())
    clock.set_clock(frozen)
    people = []
    for i, nickname in enumerate(("小美", "阿丽")):
        follow = Inbound(dedupe_key=f"follow{i}", sender=f"oFan{i}", kind="event", event="joined")
        got = channels.receive(db, oa, follow)
        contact = contacts.get_contact(db, got.contact_id)
        contacts.update_contact(db, contact, fields={"nickname": nickname}, actor=ACTOR)
        people.append(contact)
    frozen.advance(days=3)  # a customer-service message would be refused now; a template message is not
    content = {"type": "template", "template_id": "TPL_POINTS", "url": "https://shop.example.com/points",
               "data": {"first": "{{ nickname }}，您的积分即将过期", "keyword1": "1,200 分"},
               "text": "{{ nickname }}，您的积分即将过期"}

    b = _send(db, oa, _segment(db, people), content, run_jobs)

    sent = {body["touser"]: body for body in server.sent}
    assert sorted(sent) == ["oFan0", "oFan1"]
    body = sent["oFan0"]
    assert (body["template_id"], body["data"]) == ("TPL_POINTS", {"first": {"value": "小美，您的积分即将过期"},
                                                                  "keyword1": {"value": "1,200 分"}})
    assert "/l/" in body["url"]  # the link is tracked
    assert broadcast_report.status_counts(db, b)["sent"] == 2
    archived = sorted(m.text for _r, m in broadcast_report.list_recipients(db, b)[0] if m is not None)
    assert archived == ["小美，您的积分即将过期", "阿丽，您的积分即将过期"]


def test_a_content_the_channel_cant_carry_is_refused_with_its_field(db, ws, smtp, aliyun):  # noqa: F811
    _, port = smtp
    _, url = aliyun
    mail, sms = email_account(db, port), sms_account(db, url)
    segment = _segment(db, [_person(db, "email", "mei@example.com", "小美")])
    cases = [
        (mail, {"type": "text", "text": "hi"}, "content.type"),
        (mail, {"type": "email", "text": "hi"}, "content.subject"),
        (mail, {"type": "email", "subject": "hi", "text": "{{ shoe_size }}"}, "content.text"),
        (sms, {"type": "sms", "params": {"name": "x"}}, "content.template_code"),
        (sms, {"type": "sms", "template_code": "SMS_1", "params": {"name": "{{ shoe_size }}"}}, "content.params.name"),
        (sms, {"type": "email", "subject": "hi", "text": "hi"}, "content.type"),
        (sms, {"type": "template", "template_id": "T"}, "content.type"),
    ]
    for account, content, field in cases:
        with pytest.raises(Invalid) as refused:
            broadcasts.create_broadcast(db, name="x", account_id=account.id, segment_id=segment.id,
                                        content=content, actor=ACTOR)
        assert refused.value.field == field, content
    assert broadcasts.list_broadcasts(db)[0] == []


def test_the_api_takes_an_email_broadcast_and_refuses_a_text_one_for_email(db, ws, smtp, client, make_key):  # noqa: F811
    _, port = smtp
    account = email_account(db, port)
    segment = _segment(db, [_person(db, "email", "mei@example.com", "小美")])
    key = bearer(make_key(ws))
    bind_workspace(db, ws.id)
    body = {"name": "Autumn", "account_id": account.id, "segment_id": segment.id,
            "content": {"type": "email", "subject": "{{ nickname }}，秋茶上新", "text": "Hi {{ nickname }}"}}
    made = client.post("/api/v1/broadcasts", json=body, headers=key)
    assert made.status_code == 201, made.text
    assert made.json()["content"] == body["content"]
    refused = client.post("/api/v1/broadcasts", json={**body, "name": "Text", "content": {"text": "hi"}}, headers=key)
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "content.type")
    assert len(channels.list_accounts(db)) == 1
    assert [b.name for b in broadcasts.list_broadcasts(db)[0]] == ["Autumn"]
