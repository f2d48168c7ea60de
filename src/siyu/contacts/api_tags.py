"""REST endpoints of tag groups, tags, bulk tagging and auto-tagging rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from siyu.contacts import tag_rules, tags
from siyu.contacts.models import Tag
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import IdIn, Strict
from siyu.core.tenancy import MAX_ID

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("contacts", "read"))]
Write = Annotated[Auth, Depends(api_auth("contacts", "write"))]


class TagGroupIn(Strict):
    name: str = Field(min_length=1, max_length=80)


class TagGroupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at: datetime


class TagIn(Strict):
    group_id: IdIn
    name: str = Field(min_length=1, max_length=80)
    color: str | None = Field(default=None, max_length=16, description="#rrggbb")


class TagUpdate(Strict):
    group_id: IdIn | None = None
    name: str | None = Field(default=None, min_length=1, max_length=80)
    color: str | None = Field(default=None, max_length=16, description="#rrggbb; null clears it")


class TagOut(BaseModel):
    id: int
    group_id: int
    name: str
    color: str | None
    contact_count: int
    created_at: datetime


class BulkTagIn(Strict):
    action: Literal["add", "remove"]
    contact_ids: list[IdIn] = Field(min_length=1, max_length=tags.MAX_BULK)
    tag_ids: list[IdIn] = Field(min_length=1, max_length=50)


class BulkTagOut(BaseModel):
    changed: int = Field(description="(contact, tag) pairs added or removed by this call")
    unchanged: int = Field(description="pairs that already were as asked")


class TagRuleIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    trigger: str = Field(min_length=1, max_length=32, description="event | segment_entered | ...")
    config: dict[str, Any] = Field(
        description='event: {"event_type": "order.paid", "conditions": [{"property", "op", "value"}]}; '
        'segment_entered: {"segment_id": 3}'
    )
    add_tag_ids: list[IdIn] = Field(default_factory=list, max_length=50)
    remove_tag_ids: list[IdIn] = Field(default_factory=list, max_length=50)
    active: bool = True


class TagRuleUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    trigger: str | None = Field(default=None, min_length=1, max_length=32)
    config: dict[str, Any] | None = None
    add_tag_ids: list[IdIn] | None = Field(default=None, max_length=50)
    remove_tag_ids: list[IdIn] | None = Field(default=None, max_length=50)
    active: bool | None = None


class TagRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    active: bool
    trigger: str
    config: dict[str, Any]
    add_tag_ids: list[int]
    remove_tag_ids: list[int]
    hits: int
    created_at: datetime


def _tag_out(tag: Tag, count: int) -> TagOut:
    return TagOut(id=tag.id, group_id=tag.group_id, name=tag.name, color=tag.color, contact_count=count,
                  created_at=tag.created_at)


# --- groups -----------------------------------------------------------------------------------------


@router.get("/tag-groups", tags=["tags"])
def list_tag_groups(auth: Read, session: SessionDep) -> list[TagGroupOut]:
    """The workspace's tag groups."""
    return [TagGroupOut.model_validate(g) for g in tags.list_tag_groups(session)]


@router.post("/tag-groups", status_code=201, tags=["tags"])
def create_tag_group(body: TagGroupIn, auth: Write, session: SessionDep) -> TagGroupOut:
    """A new tag group; names are unique in the workspace."""
    return TagGroupOut.model_validate(tags.create_tag_group(session, name=body.name, actor=auth.actor))


@router.get("/tag-groups/{tag_group_id}", tags=["tags"])
def read_tag_group(tag_group_id: int, auth: Read, session: SessionDep) -> TagGroupOut:
    """One tag group."""
    return TagGroupOut.model_validate(tags.get_tag_group(session, tag_group_id))


@router.patch("/tag-groups/{tag_group_id}", tags=["tags"])
def rename_tag_group(tag_group_id: int, body: TagGroupIn, auth: Write, session: SessionDep) -> TagGroupOut:
    """Rename a tag group."""
    group = tags.get_tag_group(session, tag_group_id)
    return TagGroupOut.model_validate(tags.update_tag_group(session, group, name=body.name, actor=auth.actor))


@router.delete("/tag-groups/{tag_group_id}", status_code=204, tags=["tags"])
def delete_tag_group(tag_group_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a group and its tags; contacts lose them (each loss an event)."""
    tags.delete_tag_group(session, tags.get_tag_group(session, tag_group_id), actor=auth.actor)
    return Response(status_code=204)


# --- tags -------------------------------------------------------------------------------------------


@router.get("/tags", tags=["tags"])
def list_tags(
    auth: Read, session: SessionDep, group_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> list[TagOut]:
    """The workspace's tags with how many contacts wear each; `group_id` keeps one group's."""
    counts = tags.tag_counts(session)
    return [_tag_out(t, counts.get(t.id, 0)) for t in tags.list_tags(session, group_id=group_id)]


@router.post("/tags", status_code=201, tags=["tags"])
def create_tag(body: TagIn, auth: Write, session: SessionDep) -> TagOut:
    """A new tag in a group; names are unique in their group."""
    tag = tags.create_tag(session, group_id=body.group_id, name=body.name, color=body.color, actor=auth.actor)
    return _tag_out(tag, 0)


@router.post("/tags/bulk", tags=["tags"])
def bulk_tag(body: BulkTagIn, auth: Write, session: SessionDep) -> BulkTagOut:
    """Put tags on (or take them off) up to 10,000 contacts; each real change is a tag.added/removed event."""
    change = (tags.add_tags if body.action == "add" else tags.remove_tags)(
        session, body.contact_ids, body.tag_ids, source="manual", actor=auth.actor
    )
    return BulkTagOut(changed=change.changed, unchanged=change.unchanged)


@router.get("/tags/{tag_id}", tags=["tags"])
def read_tag(tag_id: int, auth: Read, session: SessionDep) -> TagOut:
    """One tag."""
    tag = tags.get_tag(session, tag_id)
    return _tag_out(tag, tags.tag_counts(session).get(tag.id, 0))


@router.patch("/tags/{tag_id}", tags=["tags"])
def update_tag(tag_id: int, body: TagUpdate, auth: Write, session: SessionDep) -> TagOut:
    """Rename, recolour or move a tag to another group."""
    tag = tags.get_tag(session, tag_id)
    tags.update_tag(session, tag, changes=body.model_dump(exclude_unset=True), actor=auth.actor)
    return _tag_out(tag, tags.tag_counts(session).get(tag.id, 0))


@router.delete("/tags/{tag_id}", status_code=204, tags=["tags"])
def delete_tag(tag_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a tag; contacts wearing it lose it (each loss an event)."""
    tags.delete_tag(session, tags.get_tag(session, tag_id), actor=auth.actor)
    return Response(status_code=204)


# --- rules ------------------------------------------------------------------------------------------


@router.get("/tag-rules", tags=["tag rules"])
def list_tag_rules(auth: Read, session: SessionDep) -> list[TagRuleOut]:
    """The workspace's auto-tagging rules, in the order they run."""
    return [TagRuleOut.model_validate(r) for r in tag_rules.list_rules(session)]


@router.get("/tag-rules/triggers", tags=["tag rules"])
def list_triggers(auth: Read) -> list[str]:
    """The triggers a rule may use in this install."""
    return tag_rules.trigger_names()


@router.post("/tag-rules", status_code=201, tags=["tag rules"])
def create_tag_rule(body: TagRuleIn, auth: Write, session: SessionDep) -> TagRuleOut:
    """A new rule: when its trigger fires for a contact, add and remove tags."""
    rule = tag_rules.create_rule(session, values=body.model_dump(), actor=auth.actor)
    return TagRuleOut.model_validate(rule)


@router.get("/tag-rules/{tag_rule_id}", tags=["tag rules"])
def read_tag_rule(tag_rule_id: int, auth: Read, session: SessionDep) -> TagRuleOut:
    """One rule, with how often it fired."""
    return TagRuleOut.model_validate(tag_rules.get_rule(session, tag_rule_id))


@router.patch("/tag-rules/{tag_rule_id}", tags=["tag rules"])
def update_tag_rule(tag_rule_id: int, body: TagRuleUpdate, auth: Write, session: SessionDep) -> TagRuleOut:
    """Change a rule; the whole rule is checked again."""
    rule = tag_rules.get_rule(session, tag_rule_id)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return TagRuleOut.model_validate(tag_rules.update_rule(session, rule, changes=changes, actor=auth.actor))


@router.delete("/tag-rules/{tag_rule_id}", status_code=204, tags=["tag rules"])
def delete_tag_rule(tag_rule_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a rule; tags it put on contacts stay."""
    tag_rules.delete_rule(session, tag_rules.get_rule(session, tag_rule_id), actor=auth.actor)
    return Response(status_code=204)
