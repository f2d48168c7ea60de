"""Message templates: sandboxed Jinja over a contact's fields, checked when saved, rendered when sent.

A template names contact fields (`{{ nickname }}`, `{{ city }}`, `{{ attributes.level }}`) and may
give a fallback (`{{ nickname | default("朋友") }}`). Saving refuses a name that is not a field; at send
time an empty field renders its fallback, or nothing. Templates run in Jinja's sandbox: no attribute
of Python objects, no imports, only the context siyu builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy.orm import Session

from siyu.contacts import service as contacts
from siyu.contacts.staff import get_staff
from siyu.core.errors import Invalid

# The contact fields a template may name; `attributes.<key>` reaches custom attributes.
FIELDS: tuple[str, ...] = (*contacts.STANDARD_FIELDS, "attributes", "stage", "owner")
MAX_LENGTH = 20_000

_env = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    return _env.from_string(source)


def check(source: str, *, field: str = "body") -> None:
    """Refuse a template that can't render: bad syntax, too long, or a name that is not a contact field."""
    if len(source) > MAX_LENGTH:
        raise Invalid(f"a template is at most {MAX_LENGTH} characters", field=field)
    try:
        parsed = _env.parse(source)
    except TemplateSyntaxError as exc:
        raise Invalid(f"template error on line {exc.lineno}: {exc.message}", field=field) from exc
    unknown = sorted(meta.find_undeclared_variables(parsed) - set(FIELDS))
    if unknown:
        raise Invalid(f"{unknown[0]!r} is not a contact field; use one of {', '.join(FIELDS)}", field=field,
                      code="unknown_field")
    for node in parsed.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name != "attributes":
            raise Invalid(f"{node.node.name}.{node.attr} is not a contact field", field=field, code="unknown_field")


def contact_context(session: Session, contact: Any) -> dict[str, Any]:
    """What a template sees of a contact: its standard fields (empty ones as ""), attributes, stage, owner."""
    context: dict[str, Any] = {name: getattr(contact, name, None) or "" for name in contacts.STANDARD_FIELDS}
    context["birthday"] = contact.birthday.isoformat() if getattr(contact, "birthday", None) else ""
    context["attributes"] = dict(contact.attributes or {})
    context["stage"] = contact.stage or ""
    context["owner"] = get_staff(session, contact.owner_id).name if contact.owner_id else ""
    return context


def render(source: str, context: Mapping[str, Any], *, field: str = "body") -> str:
    """Render a checked template; an error at render time (a filter misused, arithmetic on a missing
    attribute, a division by zero) is an Invalid on `field`, never an exception the caller doesn't expect."""
    try:
        return str(_compile(source).render(**context))
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise Invalid(f"the template could not be rendered: {exc}", field=field) from exc
