"""The broadcast console pages: empty states, the composer's live count and preview, refusals by field,
the report, pause from the page, and the settings of caps and quiet hours."""

from __future__ import annotations

import re

import pytest

from siyu.core.tenancy import bind_workspace
from siyu.messaging import broadcasts, caps
from tests.console.helpers import post, sign_in
from tests.messaging.broadcasts.conftest import ACTOR, webhook_world


@pytest.fixture
def owner(client, db, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="owner@example.com", name="Olivia")
    assert sign_in(client, "owner@example.com").status_code == 303
    return ws


@pytest.fixture
def setup(db, owner):
    return webhook_world(db, owner.id)


def test_empty_pages_explain_what_to_do(client, owner):
    page = client.get("/console/broadcasts")
    assert page.status_code == 200
    assert "No broadcasts yet" in page.text
    assert "No account to send through" in client.get("/console/broadcasts/new").text


def test_the_composer_counts_the_audience_and_previews_for_a_contact(client, setup):
    _account, segment, people = setup
    count = post(client, "/console/broadcasts/audience", {"segment_id": str(segment.id)})
    assert '<span id="audience-count" class="stat-value">2</span>' in count.text
    preview = post(client, "/console/broadcasts/preview",
                   {"text": "{{ nickname }}，秋茶到了", "preview_contact_id": str(people[1].id)})
    assert "Wang，秋茶到了" in preview.text
    bad = post(client, "/console/broadcasts/preview", {"text": "{{ shoe_size }}"})
    assert "names something contacts don&#39;t have" in bad.text


def test_a_refused_broadcast_names_its_field_and_saves_nothing(client, db, setup, owner):
    account, segment, _ = setup
    form = {"name": "Autumn", "account_id": str(account.id), "segment_id": str(segment.id), "text": "hi",
            "when": "later", "scheduled_at": "2020-01-01T10:00", "window_hours": "24"}
    refused = post(client, "/console/broadcasts", form)
    assert refused.status_code == 422
    assert "Choose a date and time in the future." in refused.text
    bind_workspace(db, owner.id)
    assert broadcasts.list_broadcasts(db)[0] == []


def test_scheduling_shows_the_report_and_pause_is_refused_until_it_sends(client, db, setup, owner):
    account, segment, _ = setup
    form = {"name": "Autumn", "account_id": str(account.id), "segment_id": str(segment.id),
            "text": "{{ nickname }} https://shop.example.com/a", "when": "later",
            "scheduled_at": "2099-01-01T10:00", "window_hours": "24", "optimise_send_time": "on"}
    saved = post(client, "/console/broadcasts", form)
    assert saved.status_code == 303
    page = client.get(saved.headers["location"])
    assert "Scheduled" in page.text
    assert "2099-01-01 10:00 Asia/Shanghai" in page.text
    assert 'hx-trigger="every 2s"' in page.text
    b_id = int(saved.headers["location"].rsplit("/", 1)[1])
    refused = post(client, f"/console/broadcasts/{b_id}/pause")
    assert refused.status_code == 409
    assert post(client, f"/console/broadcasts/{b_id}/cancel").status_code == 303
    report = client.get(f"/console/broadcasts/{b_id}/report")
    assert "every 2s" not in report.text
    assert "Autumn" in client.get("/console/broadcasts").text


def test_settings_save_and_refuse_by_field(client, db, owner):
    saved = post(client, "/console/broadcast-settings", {"*.day": "1", "sms.month": "4", "quiet_start": "21:00",
                                                         "quiet_end": "09:00"})
    assert saved.status_code == 303
    bind_workspace(db, owner.id)
    settings = caps.get_settings(db)
    assert (settings.caps, settings.quiet_start) == ({"*": {"day": 1}, "sms": {"month": 4}}, "21:00")
    refused = post(client, "/console/broadcast-settings", {"quiet_start": "25:00", "quiet_end": "09:00"})
    assert refused.status_code == 422
    assert "HH:MM" in refused.text
    capped = post(client, "/console/broadcast-settings", {"sms.day": "lots"})
    assert capped.status_code == 422
    assert "whole number from 0 to 1000" in capped.text
    assert "21:00" in client.get("/console/broadcast-settings").text


def test_the_composer_writes_an_email_for_an_email_account_and_names_a_missing_subject(client, db, setup, owner):
    from siyu.channels import service as channels

    _account, segment, people = setup
    mail = channels.create_account(db, kind="email", name="Newsletter", actor=ACTOR,
                                   config={"host": "127.0.0.1", "port": "9", "security": "none", "username": "u",
                                           "from_address": "news@shop.example"}, secrets={"password": "p"})
    db.commit()
    assert 'value="email"' in client.get("/console/broadcasts/new").text  # the kinds of message on offer
    form = {"name": "Autumn letter", "account_id": str(mail.id), "segment_id": str(segment.id), "type": "email",
            "text": "Hi {{ nickname }}", "when": "draft", "window_hours": "24"}
    refused = post(client, "/console/broadcasts", form)
    assert refused.status_code == 422
    assert re.search(r'<div class="field has-error"[^>]*>\s*<label for="subject">', refused.text)
    assert "Hi {{ nickname }}</textarea>" in refused.text  # what was written stays

    preview = post(client, "/console/broadcasts/preview", {**form, "subject": "{{ nickname }}，秋茶上新",
                                                           "preview_contact_id": str(people[0].id)})
    assert "<strong>Li，秋茶上新</strong>" in preview.text
    assert "Hi Li" in preview.text
    saved = post(client, "/console/broadcasts", {**form, "subject": "{{ nickname }}，秋茶上新"})
    assert saved.status_code == 303
    bind_workspace(db, owner.id)
    (b,) = broadcasts.list_broadcasts(db)[0]
    assert b.content == {"type": "email", "subject": "{{ nickname }}，秋茶上新", "text": "Hi {{ nickname }}"}


def test_the_composer_starts_from_a_saved_template(client, db, setup, owner):
    from siyu.messaging import message_templates

    bind_workspace(db, owner.id)
    saved = message_templates.create_template(db, actor=ACTOR, values={
        "name": "本周特价", "channels": [], "content": {"type": "link", "title": "{{ nickname }}，本周特价",
                                                   "url": "https://shop.example.com/deals"}})
    db.commit()
    page = client.get("/console/broadcasts/new")
    assert f'<option value="{saved.id}">本周特价</option>' in page.text
    started = client.get(f"/console/broadcasts/new?template={saved.id}")
    assert 'value="{{ nickname }}，本周特价"' in started.text
    assert 'value="https://shop.example.com/deals"' in started.text
    assert "kind: &#39;link&#39;" in started.text or "kind: 'link'" in started.text
    assert client.get("/console/broadcasts/new?template=999999").status_code == 404
