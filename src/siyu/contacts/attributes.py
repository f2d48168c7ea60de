"""A contact's fields: the standard ones and the workspace's custom attributes, checked before any write."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts.identities import normalize_email, normalize_phone
from siyu.contacts.models import AttributeDefinition
from siyu.core import audit, clock
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Invalid
from siyu.core.tenancy import bound_workspace, get_scoped

STANDARD_FIELDS: tuple[str, ...] = (
    "name", "nickname", "avatar_url", "gender", "birthday", "city", "locale", "phone", "email",
)
GENDERS = ("male", "female", "other")
ATTRIBUTE_TYPES = ("text", "number", "date", "choice", "multi_choice")
_TEXT_LIMITS = {"name": 120, "nickname": 120, "city": 120}
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8}){0,2}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_TEXT_ATTRIBUTE = 2000
MAX_CHOICES = 200


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _text(key: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{key} is text", field=key)
    clean = value.strip()
    if len(clean) > limit:
        raise Invalid(f"{key} is at most {limit} characters", field=key)
    if "\x00" in clean:
        raise Invalid(f"{key} may not contain the NUL character", field=key)
    return clean


def _date(key: str, value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise Invalid(f"{key} is a date written YYYY-MM-DD", field=key)


def clean_field(key: str, value: Any) -> Any:
    """One standard field's stored value (None clears it), or Invalid naming the field."""
    if key not in STANDARD_FIELDS:
        raise Invalid(f"{key!r} is not a contact field", field=key, code="unknown_field")
    if _empty(value):
        return None
    if key in _TEXT_LIMITS:
        return _text(key, value, _TEXT_LIMITS[key])
    if key == "avatar_url":
        url = _text(key, value, 1000)
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise Invalid("avatar_url is an http:// or https:// address", field=key)
        return url
    if key == "gender":
        if value not in GENDERS:
            raise Invalid(f"gender is one of {', '.join(GENDERS)}", field=key)
        return value
    if key == "birthday":
        born = _date(key, value)
        if born > clock.now().date():
            raise Invalid("birthday is in the future", field=key)
        if born.year < 1900:
            raise Invalid("birthday is before 1900", field=key)
        return born
    if key == "locale":
        text = _text(key, value, 16)
        if not _LOCALE.match(text):
            raise Invalid("locale is a language tag such as zh_CN or en", field=key)
        return text
    if key == "phone":
        return normalize_phone(_text(key, value, 64))
    return normalize_email(_text(key, value, 254))  # email


def _attribute_value(definition: AttributeDefinition, value: Any) -> Any:
    where = f"attributes.{definition.key}"
    if definition.type == "text":
        return _text(where, value, MAX_TEXT_ATTRIBUTE)
    if definition.type == "number":
        if isinstance(value, bool):
            raise Invalid(f"{where} is a number", field=where)
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise Invalid(f"{where} is a number", field=where) from None
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise Invalid(f"{where} is a number", field=where)
        return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)
    if definition.type == "date":
        return _date(where, value).isoformat()
    if definition.type == "choice":
        if value not in definition.choices:
            raise Invalid(f"{where} is one of {', '.join(definition.choices)}", field=where)
        return value
    # multi_choice: a list, or one line of comma-separated choices (a spreadsheet cell)
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise Invalid(f"{where} is a list of choices", field=where)
    picked: list[str] = []
    for item in items:
        if item not in definition.choices:
            raise Invalid(f"{where}: {item!r} is not one of {', '.join(definition.choices)}", field=where)
        if item not in picked:
            picked.append(item)
    return picked


def definitions_by_key(session: Session) -> dict[str, AttributeDefinition]:
    """The workspace's attribute definitions by key."""
    return {d.key: d for d in session.execute(select(AttributeDefinition)).scalars()}


def validate_fields(
    session: Session,
    fields: Mapping[str, Any] | None,
    attributes: Mapping[str, Any] | None,
    *,
    definitions: Mapping[str, AttributeDefinition] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Clean standard fields and custom attributes (None means clear), or Invalid naming the first bad one."""
    clean_fields = {key: clean_field(key, value) for key, value in (fields or {}).items()}
    clean_attributes: dict[str, Any] = {}
    if attributes:
        if not isinstance(attributes, Mapping):
            raise Invalid("attributes is an object of key: value", field="attributes")
        known = definitions if definitions is not None else definitions_by_key(session)
        for key, value in attributes.items():
            definition = known.get(key)
            if definition is None:
                raise Invalid(f"{key!r} is not an attribute of this workspace's contacts",
                              field=f"attributes.{key}", code="unknown_attribute")
            clean_attributes[key] = None if _empty(value) else _attribute_value(definition, value)
    return clean_fields, clean_attributes


# --- attribute definitions ------------------------------------------------------------------------


def _choices(kind: str, choices: Sequence[str] | None) -> list[str]:
    if kind not in ("choice", "multi_choice"):
        if choices:
            raise Invalid("only choice and multi_choice attributes have choices", field="choices")
        return []
    clean: list[str] = []
    for item in choices or []:
        text = _text("choices", item, 120)
        if not text or "," in text:
            raise Invalid("a choice is 1 to 120 characters without a comma", field="choices")
        if text not in clean:
            clean.append(text)
    if not clean:
        raise Invalid("a choice attribute needs at least one choice", field="choices")
    if len(clean) > MAX_CHOICES:
        raise Invalid(f"at most {MAX_CHOICES} choices", field="choices")
    return clean


def list_attribute_definitions(session: Session) -> list[AttributeDefinition]:
    """The workspace's custom attributes, by key."""
    return list(session.execute(select(AttributeDefinition).order_by(AttributeDefinition.key)).scalars())


def get_attribute_definition(session: Session, definition_id: Any) -> AttributeDefinition:
    """One attribute definition of the workspace (404 otherwise)."""
    return get_scoped(session, AttributeDefinition, definition_id, what="attribute")


def create_attribute_definition(
    session: Session, *, key: str, label: str, type: str, choices: Sequence[str] | None = None, actor: Actor
) -> AttributeDefinition:
    """Define a custom attribute of the workspace's contacts."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise Invalid("key is 1 to 64 lowercase letters, digits and _, starting with a letter", field="key")
    if type not in ATTRIBUTE_TYPES:
        raise Invalid(f"type is one of {', '.join(ATTRIBUTE_TYPES)}", field="type")
    label = _text("label", label, 120)
    if not label:
        raise Invalid("label may not be empty", field="label")
    if key in definitions_by_key(session):
        raise Conflict(f"an attribute {key!r} already exists", field="key")
    definition = AttributeDefinition(key=key, label=label, type=type, choices=_choices(type, choices))
    session.add(definition)
    session.flush()
    audit.record(session, actor, workspace_id=_workspace(session), action="contact_attribute.create",
                 entity_type="contact_attribute", entity_id=definition.id, after=audit.snapshot(definition))
    return definition


def update_attribute_definition(
    session: Session, definition: AttributeDefinition, *, label: str | None = None,
    choices: Sequence[str] | None = None, actor: Actor,
) -> AttributeDefinition:
    """Rename an attribute or change its choices (its key and type stay: stored values depend on them)."""
    before = audit.snapshot(definition)
    if label is not None:
        text = _text("label", label, 120)
        if not text:
            raise Invalid("label may not be empty", field="label")
        definition.label = text
    if choices is not None:
        definition.choices = _choices(definition.type, choices)
    session.flush()
    audit.record(session, actor, workspace_id=_workspace(session), action="contact_attribute.update",
                 entity_type="contact_attribute", entity_id=definition.id, before=before,
                 after=audit.snapshot(definition))
    return definition


def delete_attribute_definition(session: Session, definition: AttributeDefinition, *, actor: Actor) -> None:
    """Forget an attribute definition; contacts keep their stored values, which no longer show or validate."""
    before = audit.snapshot(definition)
    session.delete(definition)
    session.flush()
    audit.record(session, actor, workspace_id=_workspace(session), action="contact_attribute.delete",
                 entity_type="contact_attribute", entity_id=before["id"], before=before)


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    assert workspace_id is not None, "contacts are written through a session bound to a workspace"
    return workspace_id
