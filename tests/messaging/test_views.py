"""Console pages of templates, welcome messages and keyword replies: empty states, editors that show field
errors next to the input, live previews for a chosen contact, hits on the list, and other languages."""

from __future__ import annotations

import pytest

from siyu.channels import service
from siyu.contacts import service as contacts
from siyu.core.tenancy import bind_workspace
from siyu.messaging import keywords, message_templates, welcome
from tests.console.helpers import post, sign_in
from tests.messaging.conftest import ACTOR, make_account, text


@pytest.fixture
def signed_in(client, db, make_workspace, make_user, adapters):
    ws = make_workspace(locale="en")
    user = make_user(ws, "operator")
    assert sign_in(client, user.email).status_code == 303
    bind_workspace(db, ws.id)
    oa = make_account(db, "wechat_oa", "Shop OA")
    contact = contacts.create_contact(db, fields={"name": "李娜", "nickname": "娜娜"}, actor=ACTOR)
    db.commit()
    return ws, oa, contact


def test_empty_pages_say_what_to_do(client, signed_in):
    assert "No templates yet" in client.get("/console/templates").text
    assert "No keyword replies yet" in client.get("/console/keywords").text
    assert "Shop OA" in client.get("/console/welcome").text


def test_template_editor_saves_previews_and_shows_field_errors(client, db, signed_in):
    ws, _oa, contact = signed_in
    assert "李娜" in client.get("/console/templates/new").text or "娜娜" in client.get("/console/templates/new").text
    bad = post(client, "/console/templates", {"name": "新品", "type": "text", "text": "{{ shoe_size }}"})
    assert bad.status_code == 422
    assert 'aria-invalid="true" aria-describedby="content.text-error"' in bad.text
    assert "contacts don&#39;t have" in bad.text

    preview = post(client, "/console/templates/preview", {"type": "link", "title": "{{ nickname }}，新品",
                                                         "url": "https://x.example.com", "text": "hidden text",
                                                         "preview_contact_id": str(contact.id)})
    assert "娜娜，新品" in preview.text
    assert "hidden text" not in preview.text

    saved = post(client, "/console/templates", {"name": "新品", "type": "link", "title": "{{ nickname }}，新品",
                                                "url": "https://x.example.com", "channels": ["wechat_oa"]})
    assert saved.status_code == 303
    bind_workspace(db, ws.id)
    [template] = message_templates.list_templates(db)
    assert template.content == {"type": "link", "title": "{{ nickname }}，新品", "url": "https://x.example.com"}
    assert "新品" in client.get("/console/templates").text


def test_welcome_editor_refuses_an_empty_text_and_saves_a_card(client, db, signed_in):
    ws, oa, contact = signed_in
    empty = post(client, f"/console/welcome/{oa.id}", {"text": "  ", "enabled": "on"})
    assert empty.status_code == 422
    assert "Write the message" in empty.text
    preview = post(client, "/console/welcome/preview", {"text": "欢迎{{ nickname }}", "card_type": "image",
                                                       "card_url": "https://x.example.com/a.png",
                                                       "preview_contact_id": str(contact.id)})
    assert "欢迎娜娜" in preview.text
    saved = post(client, f"/console/welcome/{oa.id}", {"text": "欢迎{{ nickname }}", "enabled": "on",
                                                      "card_type": "image", "card_url": "https://x.example.com/a.png"})
    assert saved.status_code == 303
    bind_workspace(db, ws.id)
    row = welcome.get_welcome(db, service.get_account(db, oa.id))
    assert row.enabled
    assert row.content["attachments"] == [{"type": "image", "url": "https://x.example.com/a.png"}]


def test_keyword_editor_shows_a_refused_pattern_next_to_the_keywords_and_the_list_shows_hits(client, db, signed_in):
    ws, oa, _contact = signed_in
    form = {"name": "价格", "account_id": str(oa.id), "match_type": "regex", "keywords": r"(a)\1", "priority": "5",
            "active": "on", "reply_type": "text", "reply_text": "见菜单", "win0_days": ["1", "2"],
            "win0_start": "09:00", "win0_end": "18:00"}
    refused = post(client, "/console/keywords", form)
    assert refused.status_code == 422
    assert 'aria-describedby="keywords-error"' in refused.text
    assert "backreferences" in refused.text
    late = post(client, "/console/keywords", {**form, "keywords": "价格", "win0_end": "08:00"})
    assert 'id="windows[0]-error"' in late.text

    assert post(client, "/console/keywords", {**form, "match_type": "contains", "keywords": "价格\n多少钱",
                                              "win0_days": [str(d) for d in range(1, 8)], "win0_start": "00:00",
                                              "win0_end": "24:00"}).status_code == 303
    bind_workspace(db, ws.id)
    [rule] = keywords.list_rules(db)
    assert (rule.keywords, rule.windows[0]["days"]) == (["价格", "多少钱"], [1, 2, 3, 4, 5, 6, 7])
    service.receive(db, service.get_account(db, oa.id), text("多少钱?"))
    db.commit()
    page = client.get("/console/keywords")
    assert '<td class="hit-count">1</td>' in page.text
    assert "data-chart" in page.text
    editor = client.get(f"/console/keywords/{rule.id}")
    assert "多少钱" in editor.text


@pytest.mark.parametrize(("locale", "title"), [("zh_Hans", "关键词回复"), ("es", "Respuestas por palabra clave")])
def test_pages_speak_the_workspace_language(client, db, signed_in, locale, title):
    ws, _oa, _c = signed_in
    bind_workspace(db, None)
    ws.locale = locale
    db.commit()
    assert title in client.get("/console/keywords").text


def test_the_tag_manager_makes_an_on_keyword_rule(client, db, signed_in):
    from siyu.contacts import tag_rules, tags

    ws, _oa, _c = signed_in
    group = tags.create_tag_group(db, name="Interest", actor=ACTOR)
    tag = tags.create_tag(db, group_id=group.id, name="Asked price", actor=ACTOR)
    db.commit()
    assert "A keyword reply answers the contact" in client.get("/console/tags").text
    empty = post(client, "/console/tags/rules", {"name": "price", "trigger": "keyword", "keywords": " ",
                                                 "add_tag_ids": str(tag.id)})
    assert empty.status_code == 422
    assert "Write the keywords that tag" in empty.text
    made = post(client, "/console/tags/rules", {"name": "price", "trigger": "keyword", "keywords": "价格，多少钱",
                                                "add_tag_ids": str(tag.id)})
    assert made.status_code == 303
    bind_workspace(db, ws.id)
    [rule] = tag_rules.list_rules(db)
    assert (rule.trigger, rule.config) == ("keyword", {"rule_ids": [], "keywords": ["价格", "多少钱"]})
    assert "多少钱" in client.get("/console/tags").text


def test_a_refused_form_puts_no_script_of_the_sender_back_into_the_page(client, signed_in):
    hostile = "x'}; alert(1); {'"
    keyword = post(client, "/console/keywords", {"name": "x", "match_type": hostile, "template_id": hostile,
                                                 "reply_type": hostile})
    template = post(client, "/console/templates", {"name": "x", "type": hostile})
    assert keyword.status_code == template.status_code == 422
    assert "alert(1)" not in keyword.text
    assert "alert(1)" not in template.text
