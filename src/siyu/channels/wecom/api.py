"""REST endpoints of a WeCom account's contact ways and customer transfers (module "channels")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from siyu.channels.wecom import service
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Strict

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("channels", "read"))]
Write = Annotated[Auth, Depends(api_auth("channels", "write"))]
UserId = Annotated[str, Field(min_length=1, max_length=64)]
ConfigId = Annotated[str, Field(min_length=1, max_length=64)]
BASE = "/channel-accounts/{account_id}/wecom"


class ContactWayIn(Strict):
    users: list[UserId] = Field(min_length=1, max_length=100, description="member userids")
    type: Literal["single", "multi"] = "single"
    scene: Literal["qr_code", "mini_program"] = "qr_code"
    parties: list[int] = Field(default_factory=list, max_length=100)
    state: str = Field(default="", max_length=30, description="comes back on each add (channel codes)")
    remark: str = Field(default="", max_length=30)
    skip_verify: bool = True


class ContactWayUpdate(Strict):
    users: list[UserId] | None = Field(default=None, max_length=100)
    parties: list[int] | None = Field(default=None, max_length=100)
    state: str | None = Field(default=None, max_length=30)
    remark: str | None = Field(default=None, max_length=30)
    skip_verify: bool | None = None


class ContactWayOut(BaseModel):
    config_id: str
    qr_code: str = ""
    details: dict[str, Any] = Field(default_factory=dict, description="the contact way as WeCom keeps it")


class TransferIn(Strict):
    handover_userid: UserId
    takeover_userid: UserId
    external_userids: list[UserId] = Field(min_length=1, max_length=100)
    message: str | None = Field(default=None, max_length=200, description="what the customer is told")


class TransferOut(BaseModel):
    customers: list[dict[str, Any]] = Field(description="per customer: external_userid and errcode (0: accepted)")


@router.post(BASE + "/contact-ways", status_code=201, tags=["channels"])
def create_contact_way(account_id: int, body: ContactWayIn, auth: Write, session: SessionDep) -> ContactWayOut:
    """A WeCom contact way (「联系我」 QR code); `state` comes back with every add through it."""
    account = service.wecom_account(session, account_id)
    config_id, qr_code = service.create_contact_way(
        session, account, users=body.users, way_type=body.type, scene=body.scene, parties=body.parties,
        state=body.state, remark=body.remark, skip_verify=body.skip_verify, actor=auth.actor)
    return ContactWayOut(config_id=config_id, qr_code=qr_code)


@router.get(BASE + "/contact-ways/{config_id}", tags=["channels"])
def read_contact_way(account_id: int, config_id: ConfigId, auth: Read, session: SessionDep) -> ContactWayOut:
    """One contact way."""
    account = service.wecom_account(session, account_id)
    way = service.get_contact_way(session, account, config_id)
    return ContactWayOut(config_id=config_id, qr_code=str(way.get("qr_code", "")), details=way)


@router.patch(BASE + "/contact-ways/{config_id}", tags=["channels"])
def update_contact_way(account_id: int, config_id: ConfigId, body: ContactWayUpdate, auth: Write,
                       session: SessionDep) -> ContactWayOut:
    """Change a contact way's members, state, remark or verification."""
    account = service.wecom_account(session, account_id)
    service.update_contact_way(session, account, config_id, actor=auth.actor, **body.model_dump(exclude_unset=True))
    return ContactWayOut(config_id=config_id)


@router.delete(BASE + "/contact-ways/{config_id}", status_code=204, tags=["channels"])
def delete_contact_way(account_id: int, config_id: ConfigId, auth: Write, session: SessionDep) -> Response:
    """Delete a contact way."""
    account = service.wecom_account(session, account_id)
    service.delete_contact_way(session, account, config_id, actor=auth.actor)
    return Response(status_code=204)


@router.post(BASE + "/transfers", status_code=201, tags=["channels"])
def transfer(account_id: int, body: TransferIn, auth: Write, session: SessionDep) -> TransferOut:
    """Move customers from one staff member to another (each customer may refuse within 24 hours)."""
    account = service.wecom_account(session, account_id)
    customers = service.transfer_customers(
        session, account, handover_userid=body.handover_userid, takeover_userid=body.takeover_userid,
        external_userids=body.external_userids, message=body.message, actor=auth.actor)
    return TransferOut(customers=customers)
