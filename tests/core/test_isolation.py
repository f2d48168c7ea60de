"""Workspace isolation, walked over the OpenAPI document so every new route is covered by itself.

Workspace A's key is sent with workspace B's ids to every route that takes an id: each call is refused
and B's rows stay exactly as they were. Routes without ids must never show B's data to A, and every
route refuses a missing or revoked key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from siyu.channels.models import ChannelAccount
from siyu.contacts import models as contact_models
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.db import Base
from siyu.core.models import ApiKey, Event, Job, Workspace
from siyu.core.tenancy import WorkspaceScoped, bind_workspace
from siyu.models_registry import import_all_models
from tests.conftest import bearer

# How to make, in workspace B, the thing each path parameter names. A route with a parameter not
# listed here fails the test until someone says how to make one.
PARAMS = (
    "user_id", "key_id", "event_id", "job_id",
    "contact_id", "identity_id", "note_id", "attribute_id", "merge_id", "proposal_id",
    "segment_id", "tag_group_id", "tag_id", "tag_rule_id", "staff_id", "handover_id", "import_id",
    "broadcast_id",
    "account_id", "template_id", "keyword_rule_id",
    "conversation_id", "sensitive_rule_id", "alert_id",
    "config_id",
    "source_id", "code_id", "poster_template_id",
    "group_id", "group_code_id",
)
B_MARK = "bworkspace-secret-marker"


def _seed_b(db, make_workspace, make_user, make_key) -> tuple[Any, dict[str, int], str]:
    b = make_workspace(f"Beta {B_MARK}")
    member = make_user(b, "operator", email=f"{B_MARK}@example.com")
    b_key_secret = make_key(b, name=f"key {B_MARK}")
    bind_workspace(db, b.id)
    key_id = db.execute(select(ApiKey.id)).scalars().first()
    event = Event(type="custom.thing", occurred_at=clock.now(), idempotency_key=f"evt-{B_MARK}",
                  properties={"note": B_MARK})
    job = Job(kind="test.noop", idempotency_key=f"job-{B_MARK}", payload={"note": B_MARK})
    segment = contact_models.Segment(name=f"segment {B_MARK}", kind="static", rule={"all": []})
    db.add_all([event, job, segment])
    db.flush()
    group = contact_models.TagGroup(name=f"group {B_MARK}")
    db.add(group)
    db.flush()
    tag = contact_models.Tag(group_id=group.id, name=f"tag {B_MARK}")
    leaving = contact_models.StaffMember(name=f"staff {B_MARK}")
    taking = contact_models.StaffMember(name="taking")
    db.add_all([tag, leaving, taking])
    db.flush()
    rule = contact_models.TagRule(name=f"rule {B_MARK}", trigger="event", config={"event_type": "order.paid"},
                                  add_tag_ids=[tag.id])
    handover = contact_models.Handover(from_staff_id=leaving.id, to_staff_id=taking.id, reason="leaving",
                                       actor=B_MARK)
    contact_import = contact_models.ContactImport(filename=f"{B_MARK}.csv", created_by=B_MARK, status="done")
    account = ChannelAccount(kind="webhook", name=f"account {B_MARK}", status="active",
                             config={"url": f"https://{B_MARK}.example.com/hook"}, secrets={"secret": B_MARK})
    db.add_all([rule, handover, contact_import, account])
    db.commit()
    broadcast_id = _seed_b_broadcast(db, segment.id)
    account = _seed_b_account(db)
    ids = {"user_id": member.id, "key_id": key_id, "event_id": event.id, "job_id": job.id,
           "segment_id": segment.id, **_seed_b_contacts(db), **_seed_b_messaging(db)}
    ids.update(_seed_b_conversations(db, ids["contact_id"]))
    ids.update(_seed_b_acquisition(db))
    ids.update(_seed_b_groups(db, account.id))
    _seed_b_spend(db, ids["contact_id"], ids["source_id"])
    bind_workspace(db, None)
    ids.update({"tag_group_id": group.id, "tag_id": tag.id, "tag_rule_id": rule.id, "staff_id": leaving.id,
                "handover_id": handover.id, "import_id": contact_import.id,
                "broadcast_id": broadcast_id, "account_id": account.id,
                # A WeCom contact way lives at WeCom: B's account id is refused before any id is used.
                "config_id": "cfgbworkspace"})
    return b, ids, b_key_secret


def _seed_b_groups(db, account_id: int) -> dict[str, int]:
    """A customer group of workspace B and a group code listing it."""
    from siyu.acquisition.group_models import CustomerGroup, GroupCode, GroupCodeChat

    group = CustomerGroup(account_id=account_id, chat_id=f"wr{B_MARK}", name=f"group {B_MARK}", status="active")
    code = GroupCode(name=f"code {B_MARK}", account_id=account_id, state="bstate", config_id="jwbworkspace")
    db.add_all([group, code])
    db.flush()
    db.add(GroupCodeChat(code_id=code.id, group_id=group.id, chat_id=group.chat_id))
    db.commit()
    return {"group_id": group.id, "group_code_id": code.id}
def _seed_b_spend(db, contact_id: int, source_id: int) -> None:
    """A day's spend of B's source, a contact acquired through it and their order (for the metrics)."""
    from datetime import timedelta

    from siyu.acquisition import spend
    from siyu.acquisition.models import Attribution
    from siyu.core.events import record_event

    spend.put_spend(db, source_id=source_id, day=clock.now().date() - timedelta(days=1), amount=5000, note=B_MARK,
                    actor=Actor.cli(B_MARK))
    if db.execute(select(Attribution).where(Attribution.contact_id == contact_id)).scalar_one_or_none() is None:
        db.add(Attribution(contact_id=contact_id, first_source_id=source_id, first_at=clock.now() - timedelta(days=1),
                           latest_source_id=source_id, latest_at=clock.now() - timedelta(days=1)))
    record_event(db, type="order.paid", contact_id=contact_id, idempotency_key=f"order-{B_MARK}",
                 properties={"order_id": B_MARK, "amount": 4321, "currency": "CNY",
                             "items": [{"sku": B_MARK, "qty": 1, "price": 4321}]})
    db.commit()


def _seed_b_broadcast(db, segment_id: int) -> int:
    """A draft broadcast of workspace B through a webhook account."""
    from siyu.channels import service as channels
    from siyu.messaging import broadcasts

    actor = Actor.cli(B_MARK)
    account = channels.create_account(db, kind="webhook", name=f"hook {B_MARK}", config={"url": "http://127.0.0.1:9/"},
                                      secrets={"secret": "s" * 20}, actor=actor)
    b = broadcasts.create_broadcast(db, name=f"broadcast {B_MARK}", account_id=account.id, segment_id=segment_id,
                                    content={"type": "text", "text": B_MARK}, actor=actor)
    db.commit()
    return b.id


def _seed_b_account(db) -> Any:
    """An Official Account of workspace B (its platform calls never happen: A is refused first)."""
    from siyu.channels import service as channels

    account = channels.create_account(
        db, kind="wechat_oa", name=f"oa {B_MARK}", config={"app_id": "wx" + "b" * 16, "api_base": "http://127.0.0.1:9"},
        secrets={"app_secret": B_MARK, "token": "btoken", "encoding_aes_key": "b" * 43}, actor=Actor.cli(B_MARK))
    db.commit()
    return account


def _seed_b_contacts(db) -> dict[str, int]:
    """Contacts of workspace B with an identity, a note, an attribute, a merge and a merge proposal."""
    from siyu.contacts import service as contacts

    actor = Actor.cli(B_MARK)
    attribute = contacts.create_attribute_definition(db, key="bmark", label=B_MARK, type="text", actor=actor)
    contact = contacts.create_contact(db, fields={"name": B_MARK}, identities=[("openid", B_MARK)], actor=actor)
    twin = contacts.create_contact(db, identities=[("custom:card", B_MARK)], actor=actor)
    gone = contacts.create_contact(db, identities=[("email", "b-merged@example.com")], actor=actor)
    record = contacts.merge_contacts(db, contact, gone, actor=actor, automatic=False)
    proposal = contacts.propose_merge(db, contact, twin, identity=("openid", B_MARK))
    note = contacts.add_note(db, contact, body=B_MARK, actor=actor)
    db.commit()
    assert proposal is not None
    return {
        "contact_id": contact.id, "identity_id": contacts.identities_of(db, contact)[0].id, "note_id": note.id,
        "attribute_id": attribute.id, "merge_id": record.id, "proposal_id": proposal.id,
    }


def _seed_b_messaging(db) -> dict[str, int]:
    """An account of workspace B, a message template and a keyword rule."""
    from siyu.channels import service as channels
    from siyu.messaging import keywords, message_templates

    actor = Actor.cli(B_MARK)
    account = channels.create_account(db, kind="webhook", name=f"replies {B_MARK}",
                                      config={"url": "https://b.example.com/in"}, secrets={"secret": "s" * 20},
                                      actor=actor)
    template = message_templates.create_template(db, values={"name": B_MARK, "content": {"text": B_MARK}},
                                                 actor=actor)
    rule = keywords.create_rule(db, values={"name": B_MARK, "match_type": "exact",
                                            "keywords": [B_MARK], "reply": {"text": B_MARK}}, actor=actor)
    db.commit()
    return {"account_id": account.id, "template_id": template.id, "keyword_rule_id": rule.id}
def _seed_b_acquisition(db) -> dict[str, int]:
    """A source of workspace B, a link code of it and a poster template."""
    from siyu.acquisition import posters
    from siyu.acquisition import service as acquisition

    actor = Actor.cli(B_MARK)
    source = acquisition.create_source(db, name=f"source {B_MARK}", type="other", currency="CNY", actor=actor)
    code = acquisition.create_code(db, name=f"code {B_MARK}", source_id=source.id, kind="link",
                                   target_url="https://b.example.com/", actor=actor)
    template = posters.create_template(db, values={"name": f"poster {B_MARK}"}, actor=actor)
    db.commit()
    return {"source_id": source.id, "code_id": code.id, "poster_template_id": template.id}


def _seed_b_conversations(db, contact_id: int) -> dict[str, int]:
    """A conversation of workspace B with a message, a sensitive-word rule and its alert."""
    from siyu.conversations import sensitive
    from siyu.conversations.models import Conversation, Message

    sensitive.create_rule(db, values={"name": f"rule {B_MARK}", "words": [B_MARK]}, actor=Actor.cli(B_MARK))
    conversation = Conversation(contact_id=contact_id, channel="webhook", status="open")
    db.add(conversation)
    db.flush()
    db.add(Message(channel="webhook", contact_id=contact_id, direction="in", text=B_MARK,
                   conversation_id=conversation.id))
    db.commit()
    alert = sensitive.list_alerts(db)[0][0]
    return {"conversation_id": conversation.id, "sensitive_rule_id": alert.rule_id or 0, "alert_id": alert.id}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _example(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A minimal value that passes the schema, so the call reaches authorisation and the service."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        return _example(spec, options[0]) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            name: _example(spec, sub)
            for name, sub in schema.get("properties", {}).items()
            if name in schema.get("required", [])
        }
    if kind == "array":
        return [_example(spec, schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    return "x" * max(1, schema.get("minLength", 1))


def _operations(spec: dict[str, Any]):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


def _body(spec, op) -> Any:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    return None if content is None else _example(spec, content["schema"])


def _workspace_models() -> list[type]:
    """Every workspace-owned table, so a new module's rows are in B's snapshot without being listed here."""
    import_all_models()
    models = [m.class_ for m in Base.registry.mappers if issubclass(m.class_, WorkspaceScoped)]
    return sorted(models, key=lambda m: m.__tablename__)


def _b_rows(db, b_id: int) -> str:
    """Everything of workspace B, as one comparable string."""
    bind_workspace(db, b_id)
    db.expire_all()
    rows = []
    for model in _workspace_models():
        for obj in db.execute(select(model).order_by(model.id)).scalars():
            rows.append({c.key: str(getattr(obj, c.key)) for c in model.__mapper__.column_attrs})
    rows.append({"ws": str(db.get(Workspace, b_id).__dict__.get("name"))})
    bind_workspace(db, None)
    return json.dumps(rows, sort_keys=True)


def test_every_route_with_an_id_refuses_another_workspaces_id(client, db, make_workspace, make_user, make_key):
    spec = client.get("/api/openapi.json").json()
    a = make_workspace("Alpha")
    make_user(a, "owner")
    a_key = bearer(make_key(a, ["all:write"]))
    b, ids, _ = _seed_b(db, make_workspace, make_user, make_key)
    before = _b_rows(db, b.id)

    checked = 0
    for path, method, op in _operations(spec):
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue
        unknown = [n for n in names if n not in PARAMS]
        assert not unknown, f"{method.upper()} {path}: teach this test to make a {unknown} in workspace B"
        url = path.format(**{n: ids[n] for n in names})
        r = client.request(method, url, headers=a_key, json=_body(spec, op))
        assert r.status_code in (403, 404), f"{method.upper()} {path} with B's id answered {r.status_code}: {r.text}"
        assert B_MARK not in r.text
        assert set(r.json()) == {"error"}
        checked += 1

    assert checked >= 3
    assert _b_rows(db, b.id) == before


def test_routes_without_ids_never_show_another_workspaces_data(client, db, make_workspace, make_user, make_key):
    spec = client.get("/api/openapi.json").json()
    a = make_workspace("Alpha")
    make_user(a, "owner")
    a_key = bearer(make_key(a, ["all:write"]))
    b, _, _ = _seed_b(db, make_workspace, make_user, make_key)
    before = _b_rows(db, b.id)

    for path, method, op in _operations(spec):
        if "{" in path:
            continue
        r = client.request(method, path, headers=a_key, json=_body(spec, op))
        assert r.status_code < 500, f"{method.upper()} {path}: {r.status_code} {r.text}"
        assert B_MARK not in r.text, f"{method.upper()} {path} leaked workspace B's data"

    assert _b_rows(db, b.id) == before


@pytest.mark.parametrize("credential", ["none", "revoked", "garbage", "other-scheme"])
def test_every_route_refuses_a_missing_or_dead_key(client, db, make_workspace, make_user, make_key, credential):
    spec = client.get("/api/openapi.json").json()
    b, ids, b_secret = _seed_b(db, make_workspace, make_user, make_key)
    if credential == "revoked":
        bind_workspace(db, b.id)
        for key in db.execute(select(ApiKey)).scalars():
            key.revoked_at = clock.now()
        db.commit()
        bind_workspace(db, None)
    headers = {
        "none": {},
        "revoked": bearer(b_secret),
        "garbage": bearer("sy_garbage.garbage"),
        "other-scheme": {"Authorization": f"Basic {b_secret}"},
    }[credential]
    before = _b_rows(db, b.id)

    for path, method, op in _operations(spec):
        url = path.format(**{n: ids.get(n, 1) for n in re.findall(r"{(\w+)}", path)})
        r = client.request(method, url, headers=headers, json=_body(spec, op))
        assert r.status_code == 401, f"{method.upper()} {path} without a live key answered {r.status_code}"
        assert r.json()["error"]["code"] == "not_authenticated"

    assert _b_rows(db, b.id) == before


@pytest.mark.parametrize("bad_id", ["0", "-1", str(2**63), "99999999999999999999999"])
def test_every_route_with_an_id_answers_404_for_impossible_ids(client, make_workspace, make_key, bad_id):
    spec = client.get("/api/openapi.json").json()
    a_key = bearer(make_key(make_workspace("Alpha"), ["all:write"]))

    for path, method, op in _operations(spec):
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue
        r = client.request(method, path.format(**dict.fromkeys(names, bad_id)), headers=a_key, json=_body(spec, op))
        assert r.status_code in (404, 422), f"{method.upper()} {path} with id {bad_id}: {r.status_code} {r.text}"
        assert set(r.json()) == {"error"}
