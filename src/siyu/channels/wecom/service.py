"""WeCom's external-contact API as siyu services: contact ways (the QR codes a live code is built on),
customer transfers between staff members, tags, a customer's profile. Each takes the account (kind
`wecom`), checks its input before calling WeCom, and audits what a person changed.
"""

from __future__ import annotations

import re
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from siyu.channels import ratelimit
from siyu.channels import service as channels
from siyu.channels.base import ChannelError
from siyu.channels.models import ChannelAccount
from siyu.channels.wecom.client import WeComClient
from siyu.core import audit
from siyu.core.audit import Actor
from siyu.core.errors import Invalid, NotFound, SiyuError

T = TypeVar("T")
MAX_STATE = 30
MAX_REMARK = 30
MAX_USERS = 100
MAX_TRANSFER = 100
MARK_TAG_AT_ONCE = 5
WAY_TYPES = {"single": 1, "multi": 2}
WAY_SCENES = {"mini_program": 1, "qr_code": 2}
_CONFIG_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


class PlatformRefused(SiyuError):
    """WeCom refused or failed a call a person asked for."""

    status = 502
    code = "platform_error"


def wecom_account(session: Session, account_id: Any) -> ChannelAccount:
    """A `wecom` account of the bound workspace (404 for any other)."""
    account = channels.get_account(session, account_id)
    if account.kind != "wecom":
        raise NotFound("no such WeCom account", field="account_id")
    return account


def _run(session: Session, account: ChannelAccount, coro: Coroutine[Any, Any, T]) -> T:
    try:
        result = channels.run_async(coro)
    except ChannelError as exc:
        channels.record_health(session, account, error=f"{exc.code}: {exc}")
        status = 503 if exc.retryable else 502
        error = PlatformRefused(f"WeCom: {exc} ({exc.code})", code=f"wecom_{exc.code}")
        error.status = status
        raise error from exc
    channels.record_health(session, account)
    return result


def _client(account: ChannelAccount) -> WeComClient:
    return WeComClient.of(account.config, account.secrets)


def _userids(values: Sequence[str] | None, field: str) -> list[str]:
    users = [str(v).strip() for v in values or []]
    if len(users) > MAX_USERS or any(not u or len(u) > 64 for u in users):
        raise Invalid(f"up to {MAX_USERS} member userids of 1 to 64 characters", field=field)
    return users


def _short(value: str | None, limit: int, field: str) -> str | None:
    if value is not None and len(value) > limit:
        raise Invalid(f"at most {limit} characters", field=field)
    return value


def _config_id(config_id: str) -> str:
    if not _CONFIG_ID.match(config_id or ""):
        raise NotFound("no such contact way", field="config_id")
    return config_id


def create_contact_way(
    session: Session, account: ChannelAccount, *, users: Sequence[str], way_type: str = "single",
    scene: str = "qr_code", parties: Sequence[int] = (), state: str = "", remark: str = "",
    skip_verify: bool = True, actor: Actor,
) -> tuple[str, str]:
    """A new contact way (「联系我」) of members; its config_id and QR code URL."""
    if way_type not in WAY_TYPES:
        raise Invalid("type is single or multi", field="type")
    if scene not in WAY_SCENES:
        raise Invalid("scene is qr_code or mini_program", field="scene")
    members = _userids(users, "users")
    if way_type == "single" and (len(members) != 1 or parties):
        raise Invalid("a single contact way has exactly one member", field="users")
    if not members and not parties:
        raise Invalid("name at least one member or department", field="users")
    body = {"type": WAY_TYPES[way_type], "scene": WAY_SCENES[scene], "skip_verify": skip_verify,
            "state": _short(state, MAX_STATE, "state"), "remark": _short(remark, MAX_REMARK, "remark"),
            "user": members, "party": [int(p) for p in parties]}
    answer = _run(session, account, _client(account).call("/cgi-bin/externalcontact/add_contact_way", body,
                                                          idempotent=False))
    config_id, qr_code = str(answer.get("config_id", "")), str(answer.get("qr_code", ""))
    audit.record(session, actor, workspace_id=account.workspace_id, action="wecom.contact_way.create",
                 entity_type="channel_account", entity_id=account.id, before=None,
                 after={"config_id": config_id, **{k: v for k, v in body.items() if k != "skip_verify"}})
    return config_id, qr_code


def get_contact_way(session: Session, account: ChannelAccount, config_id: str) -> dict[str, Any]:
    """A contact way as WeCom keeps it (type, scene, members, state, remark, qr_code...)."""
    answer = _run(session, account, _client(account).call(
        "/cgi-bin/externalcontact/get_contact_way", {"config_id": _config_id(config_id)}))
    way = answer.get("contact_way")
    return dict(way) if isinstance(way, dict) else {}


def update_contact_way(
    session: Session, account: ChannelAccount, config_id: str, *, users: Sequence[str] | None = None,
    parties: Sequence[int] | None = None, state: str | None = None, remark: str | None = None,
    skip_verify: bool | None = None, actor: Actor,
) -> None:
    """Change a contact way's members, state, remark or verification (what is None stays)."""
    body: dict[str, Any] = {"config_id": _config_id(config_id)}
    if users is not None:
        body["user"] = _userids(users, "users")
    if parties is not None:
        body["party"] = [int(p) for p in parties]
    if state is not None:
        body["state"] = _short(state, MAX_STATE, "state")
    if remark is not None:
        body["remark"] = _short(remark, MAX_REMARK, "remark")
    if skip_verify is not None:
        body["skip_verify"] = skip_verify
    _run(session, account, _client(account).call("/cgi-bin/externalcontact/update_contact_way", body))
    audit.record(session, actor, workspace_id=account.workspace_id, action="wecom.contact_way.update",
                 entity_type="channel_account", entity_id=account.id, before=None, after=body)


def follow_users(session: Session, account: ChannelAccount) -> list[str]:
    """The members who have the customer-contact permission (客户联系), by userid."""
    answer = _run(session, account, _client(account).call("/cgi-bin/externalcontact/get_follow_user_list"))
    return [str(u) for u in answer.get("follow_user") or []]


def delete_contact_way(session: Session, account: ChannelAccount, config_id: str, *, actor: Actor) -> None:
    """Delete a contact way: its QR code stops adding anyone."""
    _run(session, account, _client(account).call("/cgi-bin/externalcontact/del_contact_way",
                                                 {"config_id": _config_id(config_id)}))
    audit.record(session, actor, workspace_id=account.workspace_id, action="wecom.contact_way.delete",
                 entity_type="channel_account", entity_id=account.id, before={"config_id": config_id}, after=None)


def transfer_customers(
    session: Session, account: ChannelAccount, *, handover_userid: str, takeover_userid: str,
    external_userids: Sequence[str], message: str | None = None, actor: Actor,
) -> list[dict[str, Any]]:
    """Move customers from one member to another (在职继承); each customer's errcode (0: accepted).

    A customer may refuse within 24 h: WeCom then sends `transfer_fail` (the event `channel.transfer_failed`).
    """
    handover, takeover = _userids([handover_userid], "handover_userid"), _userids([takeover_userid], "takeover_userid")
    if handover == takeover:
        raise Invalid("the member taking over is another member", field="takeover_userid")
    customers = [str(u).strip() for u in external_userids]
    if not 1 <= len(customers) <= MAX_TRANSFER or any(not u or len(u) > 64 for u in customers):
        raise Invalid(f"1 to {MAX_TRANSFER} external userids", field="external_userids")
    body: dict[str, Any] = {"handover_userid": handover[0], "takeover_userid": takeover[0],
                            "external_userid": customers}
    if message:
        body["transfer_success_msg"] = _short(message, 200, "message")
    answer = _run(session, account, _client(account).call("/cgi-bin/externalcontact/transfer_customer", body,
                                                          idempotent=False))
    result = [dict(c) for c in answer.get("customer") or [] if isinstance(c, dict)]
    audit.record(session, actor, workspace_id=account.workspace_id, action="wecom.transfer",
                 entity_type="channel_account", entity_id=account.id, before=None,
                 after={**body, "result": result})
    return result


def transfer_result(session: Session, account: ChannelAccount, *, handover_userid: str, takeover_userid: str,
                    cursor: str = "") -> dict[str, Any]:
    """How a transfer went per customer (status 1 accepted, 2 waiting, 3 refused...), a page at a time."""
    return _run(session, account, _client(account).call("/cgi-bin/externalcontact/transfer_result", {
        "handover_userid": handover_userid, "takeover_userid": takeover_userid, "cursor": cursor}))


def external_contact(session: Session, account: ChannelAccount, external_userid: str) -> dict[str, Any]:
    """A customer's profile (name, unionid...) and the members who have them (follow_user)."""
    return _run(session, account, _client(account).call("/cgi-bin/externalcontact/get",
                                                        params={"external_userid": external_userid}))


async def mark_tag_call(client: WeComClient, *, userid: str, external_userid: str, add: Sequence[str] = (),
                        remove: Sequence[str] = ()) -> None:
    """Tag a customer for one member, at most 5 such calls per corp at once (WeCom's rule)."""
    async with ratelimit.concurrently(f"wecom:{client.corp_id}:mark_tag", limit=MARK_TAG_AT_ONCE):
        await client.call("/cgi-bin/externalcontact/mark_tag", {
            "userid": userid, "external_userid": external_userid, "add_tag": list(add), "remove_tag": list(remove)})


def mark_tag(session: Session, account: ChannelAccount, *, userid: str, external_userid: str,
             add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
    """Add and remove WeCom tags (their ids) on a customer as seen by one member."""
    if not add and not remove:
        raise Invalid("name tags to add or remove", field="add")
    _run(session, account, mark_tag_call(_client(account), userid=userid, external_userid=external_userid,
                                         add=add, remove=remove))
