"""WeCom's background work: the Customer Service pull (`kf`), and a new customer's profile.

An add callback carries only the customer's external_userid; `wecom.profile` then reads their profile
(`externalcontact/get`) and gives the contact their WeCom name, gender and unionid. The unionid is the
same person's key on the brand's Official Account, so the two contacts become one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import service
from siyu.channels.base import ChannelError, adapter_for
from siyu.channels.models import ChannelAccount
from siyu.channels.wecom import kf  # noqa: F401  (registers the Customer Service pull)
from siyu.channels.wecom.client import RetryLater, WeComClient
from siyu.contacts import service as contacts
from siyu.core import jobs
from siyu.core.tenancy import parse_id

PROFILE = "wecom.profile"
GENDERS = {1: "male", 2: "female"}


def queue_profile(session: Session, account: ChannelAccount, external_userid: str, dedupe_key: str) -> None:
    """Read the profile of a customer who just added a member, in a worker."""
    key = "profile:" + hashlib.sha256(f"{account.id}:{dedupe_key}".encode()).hexdigest()
    jobs.enqueue(session, PROFILE, key, {"account_id": account.id, "external_userid": external_userid})


def _profile(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    account = session.get(ChannelAccount, parse_id(ctx.payload["account_id"], "account"))
    if account is None:
        return {"skipped": "account_deleted"}
    external = str(ctx.payload["external_userid"])
    try:
        answer = service.run_async(WeComClient.of(account.config, account.secrets).call(
            "/cgi-bin/externalcontact/get", params={"external_userid": external}))
    except ChannelError as exc:
        if exc.retryable:
            raise RetryLater(exc) from exc
        service.record_health(session, account, error=f"{exc.code}: {exc}")
        return {"failed": f"{exc.code}: {exc}"}
    found = answer.get("external_contact")
    profile: dict[str, Any] = found if isinstance(found, dict) else {}
    identities = [{"type": account_identity(account), "value": external}]
    if profile.get("unionid"):
        identities.append({"type": "unionid", "value": str(profile["unionid"])})
    fields: dict[str, Any] = {}
    if profile.get("name"):
        fields["nickname"] = str(profile["name"])[:120]
    if profile.get("gender") in GENDERS:
        fields["gender"] = GENDERS[profile["gender"]]
    contact, _ = contacts.upsert_contact(session, identities=identities, fields=fields, actor=None,
                                         source=f"channel:{account.kind}")
    service.record_health(session, account)
    return {"contact_id": contact.id}


def account_identity(account: ChannelAccount) -> str:
    """The identity type addressing a person on the account's channel."""
    adapter = adapter_for(account.kind)
    return adapter.rules.identity_type if adapter is not None else "wecom_external_userid"


# A read: repeating it after a lost worker does no harm.
jobs.handler(PROFILE, external=True, accepts_idempotency_key=True)(_profile)
