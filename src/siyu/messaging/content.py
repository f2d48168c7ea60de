"""The shapes of a message's content, checked when a template, welcome or reply is saved, and rendered
for one contact when it is sent.

`{"type": "text", "text"}`; `{"type": "link", "title", "description", "url", "pic_url"}`;
`{"type": "image", "media_id" | "url"}`; `{"type": "miniprogram", "appid", "pagepath", "title",
"thumb_media_id"}`; `{"type": "email", "subject", "text"}` (the channel builds the HTML part from the
text); `{"type": "sms", "template_code", "params", "text"}` (`text`: the words the provider's template
makes, kept in the archive); `{"type": "template", "template_id", "data", "url", "text"}` (an Official
Account template message: `data` fills the template's fields, any time, no 48-hour window).
A text may carry `attachments` (cards of the link, image and mini-program shapes: a welcome's text and
card). Every string may use the template language over the contact's fields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from siyu.contacts import service as contacts
from siyu.core.errors import Invalid
from siyu.messaging import templates

# The shapes, as the API documents them.
HELP = (
    "{type: text, text} | {type: link, title, description, url, pic_url} | {type: image, media_id | url} | "
    "{type: miniprogram, appid, pagepath, title, thumb_media_id} | {type: email, subject, text} | "
    "{type: sms, template_code, params, text: what the provider's template reads as} | "
    "{type: template, template_id, data: {field: text}, url, text} (Official Account template message); "
    "every text may use {{ contact fields }} with | default(...)"
)
TYPES = ("text", "link", "image", "miniprogram", "email", "sms", "template")
CARD_TYPES = ("link", "image", "miniprogram")
MAX_ATTACHMENTS = 9  # WeCom's welcome takes at most nine attachments
# Per type: (required fields, optional fields).
_SHAPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "text": (("text",), ()),
    "link": (("title", "url"), ("description", "pic_url")),
    "image": ((), ("media_id", "url")),
    "miniprogram": (("appid", "pagepath", "title"), ("thumb_media_id",)),
    "email": (("subject", "text"), ()),
    "sms": (("template_code",), ("text",)),
    "template": (("template_id",), ("url", "text")),
}
_LIMITS = {"text": 2000, "title": 128, "description": 512, "subject": 200, "url": 2000,
           "pic_url": 2000, "appid": 64, "pagepath": 512, "media_id": 256, "thumb_media_id": 256,
           "template_code": 64, "template_id": 128}
# Where a type takes more than the name's limit: an email's text is its whole body.
_TYPE_LIMITS = {("email", "text"): 20_000}
# Values the platform gives, never rendered as templates.
_LITERAL = ("type", "appid", "media_id", "thumb_media_id", "template_code", "template_id", "welcome_code")
# The name-to-text field a type fills its provider template with.
FILLS = {"sms": "params", "template": "data"}


def fields_of(kind: str) -> tuple[str, ...]:
    """The text fields a content of this type takes (none for an unknown type)."""
    required, optional = _SHAPES.get(kind, ((), ()))
    return (*required, *optional)


def _string(value: Any, field: str, limit: int, *, required: bool) -> str:
    if value is None or value == "":
        if required:
            raise Invalid("this field is required", field=field)
        return ""
    if not isinstance(value, str):
        raise Invalid("a text value", field=field)
    if required and not value.strip():
        raise Invalid("this field is required", field=field)
    if len(value) > limit:
        raise Invalid(f"at most {limit} characters", field=field)
    return value


def _url(value: str, field: str) -> None:
    if value and not (value.startswith(("http://", "https://")) or "{{" in value):
        raise Invalid("an http:// or https:// URL", field=field)


def check_content(content: Any, *, field: str = "content", types: tuple[str, ...] = TYPES,
                  attachments: bool = False) -> dict[str, Any]:
    """The cleaned content, or Invalid naming the first bad field (`content.title`, `content.text`...)."""
    if not isinstance(content, Mapping):
        raise Invalid("content is an object with a type", field=field)
    kind = content.get("type", "text")
    if kind not in types:
        raise Invalid(f"type is one of {', '.join(types)}", field=f"{field}.type")
    required, optional = _SHAPES[kind]
    allowed = {"type", *required, *optional, *((FILLS[kind],) if kind in FILLS else ()),
               *(("attachments",) if attachments and kind == "text" else ())}
    extra = sorted(set(content) - allowed)
    if extra:
        raise Invalid(f"unknown field {extra[0]!r}", field=f"{field}.{extra[0]}", code="unknown_field")
    out: dict[str, Any] = {"type": kind}
    for name in (*required, *optional):
        limit = _TYPE_LIMITS.get((kind, name), _LIMITS[name])
        value = _string(content.get(name), f"{field}.{name}", limit, required=name in required)
        if value:
            if name not in _LITERAL:
                templates.check(value, field=f"{field}.{name}")
            if name in ("url", "pic_url"):
                _url(value, f"{field}.{name}")
            out[name] = value
    if kind == "image" and not (out.get("media_id") or out.get("url")):
        raise Invalid("an image needs a media_id or a url", field=f"{field}.media_id")
    if kind in FILLS:
        out[FILLS[kind]] = _params(content.get(FILLS[kind]), f"{field}.{FILLS[kind]}")
    if "attachments" in allowed and content.get("attachments"):
        out["attachments"] = _attachments(content["attachments"], f"{field}.attachments")
    return out


def _params(raw: Any, field: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or len(raw) > 20:
        raise Invalid("an object of at most 20 names and texts", field=field)
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.isidentifier() or len(key) > 64:
            raise Invalid("a parameter name is letters, digits and _", field=field)
        out[key] = _string(value, f"{field}.{key}", 500, required=False)
        templates.check(out[key], field=f"{field}.{key}")
    return out


def _attachments(raw: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS:
        raise Invalid(f"attachments is a list of at most {MAX_ATTACHMENTS} cards", field=field)
    return [check_content(card, field=f"{field}[{i}]", types=CARD_TYPES) for i, card in enumerate(raw)]


def _render(value: Any, context: Mapping[str, Any], field: str) -> Any:
    if isinstance(value, str):
        return templates.render(value, context, field=field) if ("{{" in value or "{%" in value) else value
    if isinstance(value, list):
        return [_render(v, context, f"{field}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: v if k in _LITERAL else _render(v, context, f"{field}.{k}") for k, v in value.items()}
    return value


def render(content: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """The content with every string rendered over a contact's template context (literal platform
    values left as they are); Invalid naming the field when a template fails to render."""
    rendered: dict[str, Any] = _render(dict(content), context, "content")
    return rendered


def render_for(session: Session, contact_id: int, content: Mapping[str, Any]) -> dict[str, Any]:
    """The content as this contact reads it; Invalid (with the field) when a template fails to render."""
    contact = contacts.get_contact(session, contact_id)
    return render(content, templates.contact_context(session, contact))


def summary(content: Mapping[str, Any]) -> str:
    """One line saying what a content is, for lists."""
    for name in ("text", "title", "subject", "template_code", "template_id", "url", "media_id"):
        value = content.get(name)
        if isinstance(value, str) and value:
            return value[:80]
    return str(content.get("type", ""))


def reply_key(origin: str, account_id: int, dedupe_key: str) -> str:
    """The idempotency key of what siyu sends in answer to one callback item (at most 200 characters)."""
    key = f"{origin}:{account_id}:{dedupe_key}"
    return key if len(key) <= 200 else key[:150] + ":" + hashlib.sha256(key.encode()).hexdigest()[:32]
