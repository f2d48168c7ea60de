"""The tag manager, bulk tagging from the list, and the staff page, driven like a browser posts forms."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.contacts import tags
from siyu.contacts.models import Contact, ContactTag, StaffMember, TagRule
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import post, sign_in
from tests.contacts.tag_support import ACTOR, add_contacts


@pytest.fixture
def owner(client, db, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="owner@example.com", name="Olivia")
    assert sign_in(client, "owner@example.com").status_code == 303
    return ws


def test_tag_manager_creates_groups_and_tags_and_shows_field_errors(client, db, owner):
    assert post(client, "/console/tags/groups", {"name": "Interest"}).status_code == 303
    bind_workspace(db, owner.id)
    group = tags.list_tag_groups(db)[0]
    bind_workspace(db, None)

    created = post(client, "/console/tags/tags", {"group_id": str(group.id), "name": "Tea", "color": "#1f8a70"})
    bad = post(client, "/console/tags/tags", {"group_id": str(group.id), "name": "Cups", "color": "blue"})
    page = client.get("/console/tags")

    assert created.status_code == 303
    assert bad.status_code == 422
    assert "Write a colour as #rrggbb" in bad.text
    assert 'data-tag="Tea"' in page.text
    assert 'href="/console/staff"' in page.text


def test_the_rule_editor_names_the_bad_condition(client, db, owner):
    post(client, "/console/tags/groups", {"name": "Interest"})
    bind_workspace(db, owner.id)
    group = tags.list_tag_groups(db)[0]
    tea = tags.create_tag(db, group_id=group.id, name="Tea", actor=ACTOR)
    db.commit()
    bind_workspace(db, None)
    form = {"name": "Tea lovers", "trigger": "event", "event_type": "product.viewed", "property_0": "sku",
            "op_0": "contains", "value_0": "TEA", "property_1": "price", "op_1": "gte", "value_1": "[1]",
            "add_tag_ids": str(tea.id)}

    refused = post(client, "/console/tags/rules", {**form, "op_0": "resembles"})
    done = post(client, "/console/tags/rules", form)

    assert refused.status_code == 422
    assert 'id="rule.config.conditions[0].op-error"' in refused.text
    assert done.status_code == 303
    bind_workspace(db, owner.id)
    rule = db.execute(select(TagRule)).scalar_one()
    assert rule.config["conditions"] == [{"property": "sku", "op": "contains", "value": "TEA"},
                                         {"property": "price", "op": "gte", "value": "[1]"}]


def test_bulk_tagging_from_the_list_needs_the_csrf_token_and_goes_back(client, db, owner):
    bind_workspace(db, owner.id)
    group = tags.create_tag_group(db, name="Interest", actor=ACTOR)
    tea = tags.create_tag(db, group_id=group.id, name="Tea", actor=ACTOR)
    ids = add_contacts(db, owner.id, 3)
    db.commit()
    bind_workspace(db, None)
    form = {"tag_id": str(tea.id), "action": "add", "contact_ids": [str(i) for i in ids[:2]],
            "next": "/console/contacts?page=2"}

    forged = client.post("/console/contacts/bulk-tag", data=form, follow_redirects=False)
    tagged = post(client, "/console/contacts/bulk-tag", form)
    nothing = post(client, "/console/contacts/bulk-tag", {**form, "contact_ids": []})

    assert forged.status_code == 403
    assert tagged.status_code == 303
    assert tagged.headers["location"] == "/console/contacts?page=2"
    assert nothing.status_code == 422
    assert "Tick at least one contact" in nothing.text
    bind_workspace(db, owner.id)
    assert sorted(db.execute(select(ContactTag.contact_id)).scalars()) == ids[:2]


def test_staff_page_adds_staff_hands_over_and_refuses_deactivating_an_owner(client, db, owner):
    assert post(client, "/console/staff", {"name": "Li Lei", "wecom_userid": "lilei"}).status_code == 303
    assert post(client, "/console/staff", {"name": "Han Meimei"}).status_code == 303
    bad = post(client, "/console/staff", {"name": "Zhang", "wecom_userid": "lilei"})
    bind_workspace(db, owner.id)
    li, han = sorted(db.execute(select(StaffMember)).scalars(), key=lambda s: s.id)
    ids = add_contacts(db, owner.id, 2, owner_id=li.id)
    db.commit()
    bind_workspace(db, None)

    refused = post(client, f"/console/staff/{li.id}/active")
    moved = post(client, "/console/staff/handover",
                 {"from_staff_id": str(li.id), "to_staff_id": str(han.id), "reason": "leaving"})
    page = client.get("/console/staff")

    assert bad.status_code == 409
    assert "Another staff member has this WeCom userid" in bad.text
    assert refused.status_code == 409
    assert "hand them over first" in refused.text
    assert moved.status_code == 303
    assert "Leaving the company" in page.text
    bind_workspace(db, owner.id)
    db.expire_all()
    assert set(db.execute(select(Contact.owner_id).where(Contact.id.in_(ids))).scalars()) == {han.id}


def test_a_staff_role_may_see_staff_but_not_manage_them(client, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, "staff", email="staff@example.com")
    sign_in(client, "staff@example.com")
    assert client.get("/console/staff").status_code == 200
    assert post(client, "/console/staff", {"name": "Me"}).status_code == 403


def test_pages_render_in_chinese(client, db, make_workspace, make_user):
    ws = make_workspace("茶铺", locale="zh_Hans")
    make_user(ws, email="zh@example.com")
    sign_in(client, "zh@example.com")
    assert "标签" in client.get("/console/tags").text
    assert "员工" in client.get("/console/staff").text


def test_the_contact_list_offers_bulk_tagging(client, db, owner):
    bind_workspace(db, owner.id)
    group = tags.create_tag_group(db, name="Interest", actor=ACTOR)
    tags.create_tag(db, group_id=group.id, name="Tea", actor=ACTOR)
    add_contacts(db, owner.id, 1)
    db.commit()
    bind_workspace(db, None)

    page = client.get("/console/contacts").text

    assert 'formaction="/console/contacts/bulk-tag"' in page
    assert ">Tea</option>" in page
