"""Console pages: permissions, field errors, the once-only API key secret, workspaces, audit log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from siyu.console import service
from siyu.core import clock
from siyu.core.models import ApiKey, AuditEntry, Event, Membership, Workspace
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import page_token, post, sign_in


@pytest.fixture
def owner(client, make_workspace, make_user):
    """A signed-in owner of an English workspace called Acme Tea."""
    ws = make_workspace("Acme Tea", locale="en")
    user = make_user(ws, email="owner@example.com", name="Olivia")
    assert sign_in(client, "owner@example.com").status_code == 303
    return ws, user


def _audit(db, ws_id: int, action: str) -> list[AuditEntry]:
    bind_workspace(db, ws_id)
    try:
        return list(db.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())
    finally:
        bind_workspace(db, None)


@pytest.mark.parametrize(
    ("role", "path", "method"),
    [
        ("operator", "/console/users", "get"),
        ("operator", "/console/api-keys", "get"),
        ("analyst", "/console/settings", "post"),
        ("staff", "/console/m/acquisition", "get"),
        ("staff", "/console/audit", "get"),
    ],
)
def test_a_role_without_the_permission_gets_403(client, make_workspace, make_user, role, path, method):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, role, email="someone@example.com")
    sign_in(client, "someone@example.com")

    if method == "get":
        r = client.get(path)
    else:
        r = client.post(
            path,
            data={
                "csrf_token": page_token(client),
                "name": "Renamed",
                "timezone": "UTC",
                "currency": "CNY",
                "locale": "en",
            },
        )

    assert r.status_code == 403
    assert "does not allow" in r.text


def test_navigation_shows_only_what_the_role_may_open(client, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, "staff", email="staff@example.com")
    sign_in(client, "staff@example.com")

    page = client.get("/console").text

    contacts = __import__("siyu.console.nav", fromlist=["BY_KEY"]).BY_KEY["contacts"]
    assert f'href="{contacts.href}"' in page
    assert 'href="/console/m/acquisition"' not in page
    assert 'href="/console/audit"' not in page


def test_every_product_module_has_a_page_that_says_what_it_will_do(client, owner):
    for key, phrase in [
        ("acquisition", "Channel live codes"),
        ("contacts", "One profile per real person"),
        ("journeys", "Automations"),
        ("analytics", "Funnels"),
    ]:
        r = client.get(f"/console/m/{key}")
        assert r.status_code == 200
        assert phrase in r.text
    assert client.get("/console/m/teleport").status_code == 404


def test_settings_are_saved_and_audited_as_the_user(client, db, owner):
    ws, user = owner

    r = post(
        client,
        "/console/settings",
        {"name": "Acme Tea HK", "timezone": "Asia/Hong_Kong", "currency": "hkd", "locale": "en"},
    )

    assert r.status_code == 303
    assert "Settings saved." in client.get(r.headers["location"]).text
    db.expire_all()
    saved = db.get(Workspace, ws.id)
    assert (saved.name, saved.timezone, saved.currency) == ("Acme Tea HK", "Asia/Hong_Kong", "HKD")
    entry = _audit(db, ws.id, "workspace.update")[0]
    assert (entry.actor_type, entry.actor_id, entry.actor_label, entry.via) == (
        "user",
        str(user.id),
        "owner@example.com",
        "console",
    )
    assert entry.after == {"currency": "HKD", "name": "Acme Tea HK", "timezone": "Asia/Hong_Kong"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("currency", "XYZ"), ("timezone", "Mars/Olympus"), ("name", ""), ("locale", "fr")],
)
def test_a_bad_setting_is_shown_next_to_its_field_and_nothing_changes(client, db, owner, field, value):
    ws, _ = owner
    data = {"name": "Acme Tea", "timezone": "Asia/Shanghai", "currency": "CNY", "locale": "en", field: value}

    r = post(client, "/console/settings", {**data})

    assert r.status_code == 422
    assert f'id="{field}-error"' in r.text
    assert f'aria-describedby="{field}-error"' in r.text
    assert r.text.count('class="field-error"') == 1
    db.expire_all()
    assert db.get(Workspace, ws.id).currency == "CNY"
    assert _audit(db, ws.id, "workspace.update") == []


def test_api_key_secret_is_shown_once_and_its_creation_is_in_the_audit_log(client, db, owner):
    ws, _ = owner

    created = post(
        client, "/console/api-keys", {"name": "Shop sync", "scopes": ["events:write", "contacts:read"]}
    )

    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    key = db.execute(select(ApiKey).where(ApiKey.workspace_id == ws.id)).scalar_one()
    secret = created.text.split('id="new-secret"')[1].split(">")[1].split("<")[0]
    assert secret.startswith(key.prefix + ".")
    assert key.scopes == ["contacts:read", "events:write"]
    later = client.get("/console/api-keys")
    assert key.prefix in later.text
    assert secret not in later.text
    audit = client.get("/console/audit", params={"action": "api_key.create"})
    assert "api_key.create" in audit.text
    assert "Shop sync" in audit.text


def test_api_key_form_errors_are_at_their_fields(client, db, owner):
    no_scope = post(client, "/console/api-keys", {"name": "Shop"})
    no_name = post(client, "/console/api-keys", {"scopes": ["all:read"]})

    assert no_scope.status_code == 422
    assert 'id="scopes-error"' in no_scope.text
    assert no_name.status_code == 422
    assert 'id="name-error"' in no_name.text
    assert db.execute(select(ApiKey)).first() is None


def test_revoking_a_key_through_htmx_returns_its_row(client, db, owner):
    post(client, "/console/api-keys", {"name": "Old", "scopes": ["all:read"]})
    key = db.execute(select(ApiKey)).scalar_one()
    token = page_token(client)

    refused = client.post(f"/console/api-keys/{key.id}/revoke", headers={"HX-Request": "true"})
    revoked = client.post(
        f"/console/api-keys/{key.id}/revoke", headers={"HX-Request": "true", "X-CSRF-Token": token}
    )

    assert refused.status_code == 403
    assert revoked.status_code == 200
    assert revoked.text.lstrip().startswith(f'<tr id="key-{key.id}"')
    assert "revoked" in revoked.text
    db.expire_all()
    assert db.get(ApiKey, key.id).revoked_at is not None


def test_switching_workspace_shows_the_other_one_and_refuses_strangers(
    client, db, make_workspace, make_user, owner
):
    _, user = owner
    other = make_workspace("Second Shop", locale="en")
    stranger = make_workspace("Not Yours", locale="en")
    from siyu.core import workspaces
    from tests.conftest import CLI_ACTOR

    workspaces._add_membership(db, CLI_ACTOR, other.id, user, workspaces.Role.ADMIN)
    db.commit()

    switched = post(client, "/console/workspace", {"workspace_id": other.id})
    page = client.get("/console")
    refused = post(client, "/console/workspace", {"workspace_id": stranger.id})

    assert switched.status_code == 303
    assert "<h1>Second Shop</h1>" in page.text
    assert refused.status_code == 401
    assert "<h1>Second Shop</h1>" in client.get("/console").text


def test_members_are_added_given_roles_and_removed_with_an_audit_trail(client, db, owner):
    ws, _ = owner

    added = post(
        client,
        "/console/users",
        {"email": "Bob@Example.com", "name": "Bob", "password": "a long enough password", "role": "operator"},
    )
    bob = next(m for m in db.execute(select(Membership)).scalars() if m.role == "operator")
    changed = post(client, f"/console/users/{bob.user_id}/role", {"role": "analyst"})
    removed = post(client, f"/console/users/{bob.user_id}/remove", {})

    assert [added.status_code, changed.status_code, removed.status_code] == [303, 303, 303]
    assert [e.action for e in _audit(db, ws.id, "member.change_role")] == ["member.change_role"]
    assert _audit(db, ws.id, "member.add")[-1].actor_label == "owner@example.com"
    assert len(_audit(db, ws.id, "member.remove")) == 1
    assert "bob@example.com" not in client.get("/console/users").text


def test_member_form_errors_are_at_their_fields(client, db, owner):
    bad_email = post(client, "/console/users", {"email": "not-an-email", "role": "operator"})
    no_password = post(client, "/console/users", {"email": "new@example.com", "role": "operator"})

    assert bad_email.status_code == 422
    assert 'id="email-error"' in bad_email.text
    assert no_password.status_code == 422
    assert 'id="password-error"' in no_password.text


def test_the_last_owner_cannot_be_demoted(client, owner):
    _, user = owner

    r = post(client, f"/console/users/{user.id}/role", {"role": "admin"})

    assert r.status_code == 409
    assert "at least one owner" in r.text


def test_audit_log_pages_with_a_cursor_and_shows_before_and_after(client, db, owner):
    ws, _ = owner
    for n in range(3):
        post(
            client,
            "/console/settings",
            {"name": f"Name {n}", "timezone": "UTC", "currency": "CNY", "locale": "en"},
        )
    entries, cursor = service.audit_page(
        bind_workspace(db, ws.id), cursor=None, action="workspace.update", limit=2
    )
    bind_workspace(db, None)
    assert len(entries) == 2
    assert cursor

    first = client.get("/console/audit", params={"action": "workspace.update"})
    more = client.get(
        "/console/audit",
        params={"action": "workspace.update", "cursor": cursor},
        headers={"HX-Request": "true"},
    )

    assert first.text.count('class="diff-before"') >= 3
    assert "Name 1" in first.text
    assert more.status_code == 200
    assert "<html" not in more.text
    assert 'class="diff"' in more.text
    assert client.get("/console/audit", params={"cursor": "bogus!"}).status_code == 422


def test_events_per_day_counts_local_days_and_the_dashboard_charts_them(client, db, owner):
    ws, _ = owner
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    clock.set_clock(lambda: now)
    bind_workspace(db, ws.id)
    # 17:30 UTC on the 19th is 01:30 on the 20th in Shanghai.
    for i, at in enumerate(
        [
            datetime(2026, 11, 19, 17, 30, tzinfo=UTC),
            datetime(2026, 11, 20, 1, 0, tzinfo=UTC),
            datetime(2026, 11, 19, 3, 0, tzinfo=UTC),
            datetime(2026, 11, 1, 3, 0, tzinfo=UTC),
        ]
    ):
        db.add(Event(type="order.paid", occurred_at=at, idempotency_key=f"e{i}", properties={}))
    db.commit()

    days = service.events_per_day(db, timezone="Asia/Shanghai")
    bind_workspace(db, None)

    assert len(days) == 14
    assert days[-1].day.isoformat() == "2026-11-20"
    assert (days[-1].count, days[-2].count) == (2, 1)
    assert sum(d.count for d in days) == 3
    page = client.get("/console").text
    assert 'id="events-chart"' in page
    assert "No events yet" not in page


def test_dashboard_without_events_says_what_will_appear(client, owner):
    page = client.get("/console").text

    assert "No events yet" in page
    assert 'id="events-chart"' not in page
