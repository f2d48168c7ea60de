"""Background work of the Official Account: a new follower's profile (`user/info`), off the callback path.

The platform no longer gives nicknames to most accounts (it answers an empty one, or "微信用户"), but it
still gives the unionid of accounts bound to an Open Platform: that identity lets the contact meet the
same person's mini-program and shop records. The call is a read, safe to repeat.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import service
from siyu.channels.base import ChannelError
from siyu.channels.models import ChannelAccount
from siyu.channels.wechat_oa import client
from siyu.channels.wechat_oa.adapter import KIND
from siyu.contacts import service as contacts
from siyu.core import jobs

PROFILE = "wechat_oa.profile"
# What the platform answers instead of a nickname it no longer gives.
_PLACEHOLDER_NAMES = frozenset({"", "微信用户"})


def queue_profile(session: Session, account: ChannelAccount, openid: str) -> None:
    """Fetch a follower's profile in the background (once per account and openid)."""
    jobs.enqueue(session, PROFILE, f"profile:{account.id}:{openid}"[:255], {"account_id": account.id, "openid": openid})


@jobs.handler(PROFILE, external=True, accepts_idempotency_key=True, max_attempts=5)
def fetch_profile(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    account = session.get(ChannelAccount, int(ctx.payload["account_id"]))
    if account is None or account.kind != KIND:
        return {"skipped": "account"}
    openid = str(ctx.payload["openid"])
    try:
        info = service.run_async(client.user_info(account, openid))
    except ChannelError as exc:
        service.record_health(session, account, error=f"{exc.code}: {exc}")
        if exc.retryable:
            raise
        return {"skipped": exc.code}
    service.record_health(session, account)
    identities = [{"type": "wechat_openid", "value": openid}]
    if info.get("unionid"):
        identities.append({"type": "wechat_unionid", "value": str(info["unionid"])})
    nickname = str(info.get("nickname") or "").strip()
    fields = {"nickname": nickname[:120]} if nickname not in _PLACEHOLDER_NAMES else None
    contact, _ = contacts.upsert_contact(session, identities=identities, fields=fields, actor=None,
                                         source=f"channel:{KIND}")
    return {"contact_id": contact.id, "unionid": bool(info.get("unionid")), "nickname": fields is not None}
