"""REST endpoints of channel-code QR images, posters (one, or a zip of many) and poster templates."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile

from siyu.acquisition import codes, posters, qr
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.errors import Invalid, NotFound
from siyu.core.schemas import Strict
from siyu.core.tenancy import MAX_ID

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("acquisition", "read"))]
Write = Annotated[Auth, Depends(api_auth("acquisition", "write"))]

LINE_HELP = ('[{"text": "扫码加好友 {{ code.name }}", "x": 620, "y": 120, "size": 72, "color": "#222222", '
             '"align": "center"}]; x is the anchor of the alignment, y the top of the line; texts may name '
             f"{', '.join('{{ ' + p + ' }}' for p in posters.PLACEHOLDERS)}")
SizeMm = Annotated[float, Query(ge=qr.MIN_SIZE_MM, le=qr.MAX_SIZE_MM, description="printed width in millimetres")]
Dpi = Annotated[int, Query(ge=qr.MIN_DPI, le=qr.MAX_DPI, description="print resolution, dots per inch")]
TemplateId = Annotated[int | None, Query(ge=1, le=MAX_ID, description="a poster template (none: the workspace's "
                                                                       "first, or the built-in one)")]


def attachment(name: str) -> str:
    """A Content-Disposition that names a download (non-ASCII names through RFC 5987)."""
    ascii_name = name.encode("ascii", "ignore").decode().replace('"', "") or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


class LineIn(Strict):
    text: str = Field(min_length=1, max_length=posters.MAX_TEXT)
    x: int = Field(ge=0, le=posters.MAX_SIDE)
    y: int = Field(ge=0, le=posters.MAX_SIDE)
    size: int = Field(ge=posters.MIN_FONT, le=posters.MAX_FONT)
    color: str = Field(default="#000000", pattern=r"^#[0-9a-fA-F]{6}$")
    align: str = Field(default="left", pattern=r"^(left|center|right)$")


class TemplateUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    width: int | None = Field(default=None, ge=posters.MIN_SIDE, le=posters.MAX_SIDE)
    height: int | None = Field(default=None, ge=posters.MIN_SIDE, le=posters.MAX_SIDE)
    lines: list[LineIn] | None = Field(default=None, max_length=posters.MAX_LINES, description=LINE_HELP)
    qr_x: int | None = Field(default=None, ge=0, le=posters.MAX_SIDE)
    qr_y: int | None = Field(default=None, ge=0, le=posters.MAX_SIDE)
    qr_size: int | None = Field(default=None, ge=posters.MIN_QR, le=posters.MAX_SIDE)


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    width: int
    height: int
    lines: list[dict[str, Any]]
    qr_x: int
    qr_y: int
    qr_size: int
    background_mime: str | None = Field(description="image/png or image/jpeg; null: plain white")
    background_bytes: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class BatchIn(Strict):
    code_ids: list[int] = Field(min_length=1, max_length=posters.MAX_BATCH)
    template_id: int | None = Field(default=None, ge=1, le=MAX_ID)


def _png(content: bytes, name: str | None = None) -> Response:
    headers = {"Content-Disposition": attachment(name)} if name else {}
    return Response(content, media_type="image/png", headers=headers)


@router.get("/channel-codes/{code_id}/qr.png", tags=["acquisition"], response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def code_qr_png(code_id: int, auth: Read, session: SessionDep, size_mm: SizeMm = qr.DEFAULT_SIZE_MM,
                dpi: Dpi = qr.DEFAULT_DPI) -> Response:
    """The code's QR as a PNG `size_mm` wide at `dpi` (its dpi is in the file); 422 when it has no QR yet."""
    code = codes.get_code(session, code_id)
    return _png(qr.png(code, size_mm=size_mm, dpi=dpi), posters.file_name(code, "qr.png"))


@router.get("/channel-codes/{code_id}/qr.svg", tags=["acquisition"], response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}})
def code_qr_svg(code_id: int, auth: Read, session: SessionDep,
                size_mm: Annotated[float | None, Query(ge=qr.MIN_SIZE_MM, le=qr.MAX_SIZE_MM)] = None) -> Response:
    """The code's QR as a scalable SVG (`size_mm` wide when given)."""
    code = codes.get_code(session, code_id)
    return Response(qr.svg(code, size_mm=size_mm), media_type="image/svg+xml",
                    headers={"Content-Disposition": attachment(posters.file_name(code, "qr.svg"))})


@router.get("/channel-codes/{code_id}/poster.png", tags=["acquisition"], response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def code_poster(code_id: int, auth: Read, session: SessionDep, template_id: TemplateId = None) -> Response:
    """The code's poster drawn from a template, as a PNG at 300 dpi."""
    code = codes.get_code(session, code_id)
    template = posters.pick_template(session, template_id)
    return _png(posters.render(session, code, template=template), posters.file_name(code))


@router.post("/posters/batch", tags=["acquisition"], response_class=StreamingResponse,
             responses={200: {"content": {"application/zip": {}}}})
def poster_batch(body: BatchIn, auth: Read, session: SessionDep) -> StreamingResponse:
    """A zip of one poster per code, for printing; every code is checked before the zip starts."""
    chunks = posters.batch(session, code_ids=body.code_ids, template_id=body.template_id)
    return StreamingResponse(chunks, media_type="application/zip",
                             headers={"Content-Disposition": attachment("posters.zip")})


_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 120},
                        "background": {"type": "string", "format": "binary",
                                       "description": "PNG or JPEG; none: plain white"},
                        "width": {"type": "integer", "description": "pixels; default: the background's"},
                        "height": {"type": "integer"},
                        "lines": {"type": "string", "description": "JSON " + LINE_HELP},
                        "qr_x": {"type": "integer"},
                        "qr_y": {"type": "integer"},
                        "qr_size": {"type": "integer", "description": "default: half the short side, centred"},
                    },
                }
            }
        },
    }
}
_BACKGROUND_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["background"],
                           "properties": {"background": {"type": "string", "format": "binary"}}}
            },
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def _multipart(request: Request) -> FormData:
    kind = request.headers.get("content-type", "")
    if not kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise Invalid("send the template as multipart/form-data", field="body")
    return await request.form()


async def _file(form: FormData, name: str) -> bytes | None:
    upload = form.get(name)
    if upload is None or (isinstance(upload, str) and not upload):
        return None
    if not isinstance(upload, UploadFile):
        raise Invalid("send the image as a file", field=name)
    return await upload.read()


def lines_from(value: Any) -> list[Any]:
    """Lines sent as a JSON text (multipart) or already decoded."""
    if value in (None, ""):
        return []
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise Invalid("lines are a JSON list of {text, x, y, size, color, align}", field="lines") from None
    if not isinstance(parsed, list):
        raise Invalid("lines are a JSON list of {text, x, y, size, color, align}", field="lines")
    return parsed


@router.get("/poster-templates", tags=["acquisition"])
def list_poster_templates(auth: Read, session: SessionDep) -> list[TemplateOut]:
    """The workspace's poster templates by name."""
    return [TemplateOut.model_validate(t) for t in posters.list_templates(session)]


@router.post("/poster-templates", tags=["acquisition"], status_code=201, openapi_extra=_UPLOAD_DOC)
async def create_poster_template(request: Request, auth: Write, session: SessionDep) -> TemplateOut:
    """A new poster template (multipart: its fields and the `background` image); a refused image is a
    422 on `background` and nothing is stored."""
    form = await _multipart(request)
    background = await _file(form, "background")
    values: dict[str, Any] = {k: form.get(k) for k in ("name", "width", "height", "qr_x", "qr_y", "qr_size")
                              if isinstance(form.get(k), str)}
    values["lines"] = lines_from(form.get("lines"))
    template = posters.create_template(session, values=values, background=background, actor=auth.actor)
    return TemplateOut.model_validate(template)


@router.get("/poster-templates/{poster_template_id}", tags=["acquisition"])
def read_poster_template(poster_template_id: int, auth: Read, session: SessionDep) -> TemplateOut:
    """One poster template."""
    return TemplateOut.model_validate(posters.get_template(session, poster_template_id))


@router.patch("/poster-templates/{poster_template_id}", tags=["acquisition"])
def update_poster_template(poster_template_id: int, body: TemplateUpdate, auth: Write,
                           session: SessionDep) -> TemplateOut:
    """Change a template's name, size, lines or QR square (the background has its own route)."""
    template = posters.get_template(session, poster_template_id)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return TemplateOut.model_validate(posters.update_template(session, template, changes=changes, actor=auth.actor))


@router.delete("/poster-templates/{poster_template_id}", tags=["acquisition"], status_code=204)
def delete_poster_template(poster_template_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a poster template."""
    posters.delete_template(session, posters.get_template(session, poster_template_id), actor=auth.actor)
    return Response(status_code=204)


@router.get("/poster-templates/{poster_template_id}/background", tags=["acquisition"], response_class=Response,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
def read_background(poster_template_id: int, auth: Read, session: SessionDep) -> Response:
    """The template's background image as uploaded (404 when it has none)."""
    template = posters.get_template(session, poster_template_id)
    content = posters.background_of(session, template)
    if content is None or template.background_mime is None:
        raise NotFound("this template has no background image", field="background")
    return Response(content, media_type=template.background_mime)


@router.put("/poster-templates/{poster_template_id}/background", tags=["acquisition"],
            openapi_extra=_BACKGROUND_DOC)
async def replace_background(poster_template_id: int, request: Request, auth: Write,
                             session: SessionDep) -> TemplateOut:
    """Replace the background (multipart `background`, or the image as the raw body)."""
    template = posters.get_template(session, poster_template_id)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        content = await _file(await request.form(), "background")
    else:
        content = await request.body()
    if not content:
        raise Invalid("send a PNG or JPEG image", field="background")
    return TemplateOut.model_validate(posters.set_background(session, template, content=content, actor=auth.actor))


@router.delete("/poster-templates/{poster_template_id}/background", tags=["acquisition"])
def remove_background(poster_template_id: int, auth: Write, session: SessionDep) -> TemplateOut:
    """Take the background away: the poster is drawn on white."""
    template = posters.get_template(session, poster_template_id)
    return TemplateOut.model_validate(posters.set_background(session, template, content=None, actor=auth.actor))


@router.get("/poster-templates/{poster_template_id}/preview.png", tags=["acquisition"], response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def preview_poster_template(poster_template_id: int, auth: Read, session: SessionDep,
                            code_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Response:
    """The template drawn for a code of the workspace, or with sample values and a sample QR."""
    template = posters.get_template(session, poster_template_id)
    if code_id is not None:
        return _png(posters.render(session, codes.get_code(session, code_id), template=template))
    return _png(posters.preview(posters.layout_of(session, template)))
