"""Consent per channel type, and the one question every sender asks: may we contact this person here?

The rules, in order (`contact_permission` says which one decided):

1. `do_not_contact` on the contact refuses everything, service messages included.
2. A withdrawn consent on the channel (unsubscribed, unfollowed, replied "TD") refuses everything there.
3. A granted consent allows. SMS and email are granted only by an explicit opt-in; WeChat OA and WeCom
   by the person following the account or adding the staff member (`grant_from_channel`, called by
   the channels module), since that is the only way those channels can reach them at all.
4. Without any consent row: a *service* message (an order update, an answer the person asked for) may
   go by SMS or email; *marketing* may not. WeChat OA and WeCom can't reach a person who never
   followed or added, whatever the purpose.

The current state is one row per (contact, channel); its history is in the events
`consent.granted` / `consent.withdrawn`, with source and proof.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts.models import Consent, Contact
from siyu.core import audit, clock
from siyu.core.audit import Actor
from siyu.core.db import any_of
from siyu.core.errors import Invalid
from siyu.core.events import record_event

CHANNELS: tuple[str, ...] = ("wechat_oa", "wecom", "sms", "email")
STATUSES = ("granted", "withdrawn")
PURPOSES = ("marketing", "service")
# Channels a person joins by an act of their own (follow, add): that act is the consent.
JOINED_CHANNELS = ("wechat_oa", "wecom")


@dataclass(frozen=True)
class Permission:
    """The answer to "may we contact them?" and the rule that gave it."""

    allowed: bool
    # do_not_contact | withdrawn | granted | no_opt_in | not_connected | service_message
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def _check(channel: str, status: str | None = None) -> None:
    if channel not in CHANNELS:
        raise Invalid(f"channel is one of {', '.join(CHANNELS)}", field="channel")
    if status is not None and status not in STATUSES:
        raise Invalid(f"status is one of {', '.join(STATUSES)}", field="status")


def list_consents(session: Session, contact: Contact) -> list[Consent]:
    """A contact's consent per channel (channels never asked have no row)."""
    return list(session.execute(
        select(Consent).where(Consent.contact_id == contact.id).order_by(Consent.channel)
    ).scalars())


def consent_of(session: Session, contact: Contact, channel: str) -> Consent | None:
    """The contact's current consent on one channel, if any."""
    return session.execute(
        select(Consent).where(Consent.contact_id == contact.id, Consent.channel == channel)
    ).scalar_one_or_none()


def set_consent(
    session: Session, contact: Contact, *, channel: str, status: str, source: str, proof: str | None = None,
    actor: Actor | None,
) -> Consent:
    """Record a grant or a withdrawal on one channel, with where it came from and its proof."""
    _check(channel, status)
    source = (source or "").strip() if isinstance(source, str) else ""
    if not source or len(source) > 80:
        raise Invalid("source says where the consent came from, 1 to 80 characters", field="source")
    if proof is not None and (not isinstance(proof, str) or len(proof) > 10_000 or "\x00" in proof):
        raise Invalid("proof is text of at most 10,000 characters", field="proof")
    row = consent_of(session, contact, channel)
    before = audit.snapshot(row) if row is not None else None
    if row is None:
        row = Consent(contact_id=contact.id, channel=channel, status=status, source=source, proof=proof)
        session.add(row)
    else:
        row.status, row.source, row.proof = status, source, proof
    row.at = clock.now()
    session.flush()
    record_event(session, type=f"consent.{status}", contact_id=contact.id,
                 properties={"channel": channel, "source": source, "proof": proof}, source="contacts")
    if actor is not None:
        audit.record(session, actor, workspace_id=contact.workspace_id, action=f"contact.consent_{status}",
                     entity_type="contact", entity_id=contact.id, before=before, after=audit.snapshot(row))
    return row


def grant_from_channel(
    session: Session, contact: Contact, channel: str, *, source: str, proof: str | None = None
) -> Consent:
    """The person followed the official account or added the staff member: that channel is granted."""
    if channel not in JOINED_CHANNELS:
        raise Invalid("only wechat_oa and wecom are granted by joining; sms and email need an opt-in",
                      field="channel")
    return set_consent(session, contact, channel=channel, status="granted", source=source, proof=proof, actor=None)


def withdraw_from_channel(
    session: Session, contact: Contact, channel: str, *, source: str, proof: str | None = None
) -> Consent:
    """The person unfollowed, deleted the staff member or unsubscribed: that channel is withdrawn."""
    return set_consent(session, contact, channel=channel, status="withdrawn", source=source, proof=proof,
                       actor=None)


def set_do_not_contact(session: Session, contacts: Sequence[Contact], value: bool, *, actor: Actor) -> int:
    """Set or clear the do-not-contact flag, which refuses every channel; how many contacts changed."""
    changed = 0
    for contact in contacts:
        if contact.do_not_contact == value:
            continue
        contact.do_not_contact = value
        changed += 1
        record_event(session, type="contact.updated", contact_id=contact.id,
                     properties={"fields": ["do_not_contact"], "source": "console" if actor.via == "console" else
                                 actor.via}, source="contacts")
        audit.record(session, actor, workspace_id=contact.workspace_id, action="contact.update",
                     entity_type="contact", entity_id=contact.id, before={"do_not_contact": not value},
                     after={"do_not_contact": value})
    session.flush()
    return changed


def contact_permission(session: Session, contact: Contact, channel: str, purpose: str = "marketing") -> Permission:
    """Whether a message of `purpose` may go to the contact on `channel`, and the rule that decided."""
    return contact_permissions(session, [contact], channel, purpose)[contact.id]


def contact_permissions(
    session: Session, contacts: Sequence[Contact], channel: str, purpose: str = "marketing",
) -> dict[int, Permission]:
    """`contact_permission` for many contacts at once (one query for their consents), by contact id."""
    _check(channel)
    if purpose not in PURPOSES:
        raise Invalid(f"purpose is one of {', '.join(PURPOSES)}", field="purpose")
    asked = [c for c in contacts if not c.do_not_contact]
    consents: dict[int, str] = {}
    if asked:
        rows = session.execute(select(Consent.contact_id, Consent.status).where(
            any_of(session, Consent.contact_id, [c.id for c in asked]), Consent.channel == channel))
        consents.update({int(contact_id): str(status) for contact_id, status in rows})
    found: dict[int, Permission] = {}
    for contact in contacts:
        if contact.do_not_contact:
            found[contact.id] = Permission(False, "do_not_contact")
        elif contact.id in consents:
            found[contact.id] = Permission(consents[contact.id] == "granted", consents[contact.id])
        elif channel in JOINED_CHANNELS:
            found[contact.id] = Permission(False, "not_connected")
        elif purpose == "service":
            found[contact.id] = Permission(True, "service_message")
        else:
            found[contact.id] = Permission(False, "no_opt_in")
    return found


def may_contact(session: Session, contact: Contact, channel: str, purpose: str = "marketing") -> bool:
    """True when a message of `purpose` may go to the contact on `channel` (see the module's rules)."""
    return contact_permission(session, contact, channel, purpose).allowed
