"""The contact settings page: one-person identity types and the segment refresh interval, with form errors."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from siyu.contacts import service
from siyu.core.models import AuditEntry
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import post, sign_in


@pytest.fixture
def owner(client, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, email="owner@example.com", name="Olivia")
    assert sign_in(client, "owner@example.com").status_code == 303
    return ws


def test_the_defaults_show_ticked_and_a_save_changes_them(client, db, owner):
    page = client.get("/console/contact-settings")
    assert page.status_code == 200
    assert 'value="unionid" checked' in page.text
    assert 'value="openid">' in page.text  # not one person's by default: openids are per official account

    saved = post(client, "/console/contact-settings",
                 {"one_person_keys": ["phone", "unionid"], "segment_refresh_minutes": "30"})

    assert saved.status_code == 303
    bind_workspace(db, owner.id)
    settings = service.get_settings(db)
    assert (settings.one_person_keys, settings.segment_refresh_minutes) == (["phone", "unionid"], 30)
    assert db.execute(select(AuditEntry.action).where(AuditEntry.action == "contact_settings.update")).scalar()


def test_a_bad_interval_is_a_form_error_and_changes_nothing(client, db, owner):
    refused = post(client, "/console/contact-settings", {"one_person_keys": ["phone"], "segment_refresh_minutes": "0"})

    assert refused.status_code == 422
    assert "Enter a whole number of minutes from 1 to 1440." in refused.text
    assert 'value="0"' in refused.text
    bind_workspace(db, owner.id)
    settings = service.get_settings(db)
    assert settings.segment_refresh_minutes == 15
    assert "email" in settings.one_person_keys


def test_staff_see_the_settings_but_cannot_change_them(client, db, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, "staff", email="staff@example.com")
    sign_in(client, "staff@example.com")

    assert "disabled" in client.get("/console/contact-settings").text
    assert post(client, "/console/contact-settings", {"segment_refresh_minutes": "5"}).status_code == 403
