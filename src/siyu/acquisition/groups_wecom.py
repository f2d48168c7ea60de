"""WeCom's customer-group APIs as acquisition uses them: join ways (「加入群聊」, the group live code's QR),
group details and lists, and group welcome templates (入群欢迎语素材).

A person's request goes through `siyu.channels.wecom.service.call` (the account's shared token and
limits; WeCom's refusal becomes a 502 PlatformRefused, a busy platform a 503). A background job calls
through `job_call`, which turns a retryable failure into `RetryLater` for the worker.

Rules from WeCom's docs: a join way lists 1 to 5 customer groups (`chat_id_list`); `state` and
`remark` are at most 30 characters; `room_base_name` at most 40; configs made by API are not shown in
WeCom's admin console and count against the corp's 500,000 (shared with contact ways), so each
`config_id` is ours to keep. An app sees only the join ways it created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.base import ChannelError
from siyu.channels.models import ChannelAccount
from siyu.channels.wecom import service as wecom
from siyu.channels.wecom.client import RetryLater, WeComClient
from siyu.core.errors import Invalid

MAX_CHATS = 5
MAX_STATE = 30
MAX_REMARK = 30
MAX_ROOM_BASE_NAME = 40
MAX_WELCOME_TEXT = 4000
SCENE_QR = 2
JOIN_WAY = "/cgi-bin/externalcontact/groupchat/"
WELCOME = "/cgi-bin/externalcontact/group_welcome_template/"


def check_chat_ids(chat_ids: Sequence[str]) -> list[str]:
    """1 to 5 distinct chat ids, as a join way takes them."""
    ids = list(dict.fromkeys(str(c).strip() for c in chat_ids))
    if not 1 <= len(ids) <= MAX_CHATS or any(not c or len(c) > 64 for c in ids):
        raise Invalid(f"a group code brings people into 1 to {MAX_CHATS} groups", field="group_ids")
    return ids


def check_state(state: str) -> str:
    """A join way's state: 1 to 30 characters."""
    state = (state or "").strip()
    if not state or len(state) > MAX_STATE:
        raise Invalid(f"a state of 1 to {MAX_STATE} characters", field="state")
    return state


def _way_body(*, chat_ids: Sequence[str], state: str, remark: str, auto_create_room: bool,
              room_base_name: str, room_base_id: int | None) -> dict[str, Any]:
    if len(remark) > MAX_REMARK:
        raise Invalid(f"at most {MAX_REMARK} characters", field="remark")
    if len(room_base_name) > MAX_ROOM_BASE_NAME:
        raise Invalid(f"at most {MAX_ROOM_BASE_NAME} characters", field="room_base_name")
    if auto_create_room and not room_base_name.strip():
        raise Invalid("name the groups WeCom creates when all are full", field="room_base_name")
    if room_base_id is not None and not 0 <= room_base_id <= 1_000_000:
        raise Invalid("the first group's number is 0 to 1,000,000", field="room_base_id")
    body: dict[str, Any] = {"scene": SCENE_QR, "remark": remark, "auto_create_room": int(auto_create_room),
                            "chat_id_list": check_chat_ids(chat_ids), "state": check_state(state)}
    if auto_create_room:
        body["room_base_name"] = room_base_name.strip()
        if room_base_id is not None:
            body["room_base_id"] = room_base_id
    return body


def add_join_way(session: Session, account: ChannelAccount, *, chat_ids: Sequence[str], state: str,
                 remark: str = "", auto_create_room: bool = False, room_base_name: str = "",
                 room_base_id: int | None = None) -> str:
    """A new QR join way of these groups; its config_id (the QR code comes from `get_join_way`)."""
    body = _way_body(chat_ids=chat_ids, state=state, remark=remark, auto_create_room=auto_create_room,
                     room_base_name=room_base_name, room_base_id=room_base_id)
    answer = wecom.call(session, account, JOIN_WAY + "add_join_way", body, idempotent=False)
    return str(answer.get("config_id", ""))


def get_join_way(session: Session, account: ChannelAccount, config_id: str) -> dict[str, Any]:
    """A join way as WeCom keeps it (scene, chat_id_list, qr_code, state...)."""
    answer = wecom.call(session, account, JOIN_WAY + "get_join_way", {"config_id": config_id})
    way = answer.get("join_way")
    return dict(way) if isinstance(way, dict) else {}


def update_join_way(session: Session, account: ChannelAccount, config_id: str, *, chat_ids: Sequence[str],
                    state: str, remark: str = "", auto_create_room: bool = False, room_base_name: str = "",
                    room_base_id: int | None = None) -> None:
    """Rewrite a join way whole (WeCom's update takes every field again); its QR code stays."""
    body = _way_body(chat_ids=chat_ids, state=state, remark=remark, auto_create_room=auto_create_room,
                     room_base_name=room_base_name, room_base_id=room_base_id)
    wecom.call(session, account, JOIN_WAY + "update_join_way", {"config_id": config_id, **body})


def del_join_way(session: Session, account: ChannelAccount, config_id: str) -> None:
    """Delete a join way: its QR code stops working for good."""
    wecom.call(session, account, JOIN_WAY + "del_join_way", {"config_id": config_id})


def list_group_chats(session: Session, account: ChannelAccount, *, cursor: str = "",
                     limit: int = 1000) -> tuple[list[dict[str, Any]], str]:
    """One page of the corp's customer groups the app may see ({chat_id, status}) and the next cursor."""
    answer = wecom.call(session, account, JOIN_WAY + "list",
                        {"status_filter": 0, "cursor": cursor, "limit": max(1, min(limit, 1000))})
    rows = [dict(r) for r in answer.get("group_chat_list") or [] if isinstance(r, dict)]
    return rows, str(answer.get("next_cursor") or "")


def welcome_body(content: dict[str, Any]) -> dict[str, Any]:
    """The template body of a group welcome ({"text": ..., "link": {...}} in siyu's content shape)."""
    text = str(content.get("text") or "").strip()
    if not text:
        raise Invalid("write the welcome text", field="welcome")
    if len(text) > MAX_WELCOME_TEXT:
        raise Invalid(f"at most {MAX_WELCOME_TEXT} characters", field="welcome")
    body: dict[str, Any] = {"text": {"content": text}}
    if content.get("url"):
        body["link"] = {"title": str(content.get("title") or text[:40]), "url": str(content["url"])}
    return body


def save_welcome_template(session: Session, account: ChannelAccount, content: dict[str, Any], *,
                          template_id: str | None) -> str:
    """Create the group welcome template, or edit the one kept; its template_id."""
    body = welcome_body(content)
    if template_id:
        wecom.call(session, account, WELCOME + "edit", {"template_id": template_id, **body})
        return template_id
    answer = wecom.call(session, account, WELCOME + "add", {**body, "notify": 1}, idempotent=False)
    return str(answer.get("template_id", ""))


def delete_welcome_template(session: Session, account: ChannelAccount, template_id: str) -> None:
    """Delete a group welcome template."""
    wecom.call(session, account, WELCOME + "del", {"template_id": template_id})


def job_call(account: ChannelAccount, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A call from a background job: the answer; RetryLater when WeCom is busy or limits us,
    ChannelError when it refused for good."""
    try:
        return channels.run_async(WeComClient.of(account.config, account.secrets).call(path, body))
    except ChannelError as exc:
        if exc.retryable:
            raise RetryLater(exc) from exc
        raise


def fetch_group_chat(account: ChannelAccount, chat_id: str) -> dict[str, Any]:
    """A group's details and members (`groupchat/get`, with names) from a job."""
    answer = job_call(account, JOIN_WAY + "get", {"chat_id": chat_id, "need_name": 1})
    chat = answer.get("group_chat")
    return dict(chat) if isinstance(chat, dict) else {}


def rewrite_join_way(account: ChannelAccount, config_id: str, body: dict[str, Any]) -> None:
    """Rewrite a join way from a job (a full group taken out of its list)."""
    job_call(account, JOIN_WAY + "update_join_way", {"config_id": config_id, **body})
