"""Console: poster templates (list, editor with a live preview) and the downloads of a code's QR and poster.

Code pages link to a code's files through `acquisition/_code_downloads.html` (it takes `code`, and
`poster_templates` to offer a choice of template); the paths are those of `download_urls`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import FormData, UploadFile

from siyu.acquisition import codes, posters, qr
from siyu.acquisition.api_posters import attachment
from siyu.console.nav import N_
from siyu.console.shell import FLASHES, Console, ConsoleDep, ConsoleRoute, FormDep, explain, redirect
from siyu.core.errors import Invalid, SiyuError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

BASE = "/console/poster-templates"
SHOWN_LINES = 3
LINE_KEYS = ("text", "x", "y", "size", "color", "align")
ALIGN_NAMES = {"left": N_("Left"), "center": N_("Centre"), "right": N_("Right")}
LINE_NAMES = (N_("Title"), N_("Subtitle"), N_("Footnote"), N_("Line 4"), N_("Line 5"), N_("Line 6"))
FLASHES.update({
    "poster_template_saved": N_("Poster template saved."),
    "poster_template_deleted": N_("Poster template deleted."),
})
EXPLAINED: dict[tuple[str, str], str] = {
    ("invalid", "name"): N_("Enter a name of at most 120 characters."),
    ("conflict", "name"): N_("This name is taken already."),
    ("invalid", "background"): N_("This file is not a PNG or JPEG image that can be read."),
    ("too_large", "background"): N_("The image is larger than %(mb)d MB. Save it smaller or as a JPEG."),
    ("unsupported_image", "background"): N_("Only PNG and JPEG images can be backgrounds (not GIF, WebP or others)."),
    ("image_size", "background"): N_("A poster is 100 to 6,000 pixels a side and at most 25 million pixels."),
    ("image_size", "width"): N_("A poster is 100 to 6,000 pixels a side and at most 25 million pixels."),
    ("invalid", "width"): N_("Enter a width from 100 to 6,000 pixels."),
    ("invalid", "height"): N_("Enter a height from 100 to 6,000 pixels."),
    ("invalid", "qr_size"): N_("The QR code is at least 80 pixels and fits on the poster."),
    ("invalid", "qr_x"): N_("Keep the QR code on the poster: its left edge plus its size fit within the width."),
    ("invalid", "qr_y"): N_("Keep the QR code on the poster: its top edge plus its size fit within the height."),
    ("invalid", "lines"): N_("A poster has at most 6 lines of text."),
    ("invalid", "text"): N_("Write a text of at most 200 characters."),
    ("unknown_field", "text"): N_("Use only {{ code.name }}, {{ code.state }} and {{ source.name }} in a text."),
    ("invalid", "x"): N_("Enter a position on the poster, in pixels from the left."),
    ("invalid", "y"): N_("Enter a position on the poster, in pixels from the top."),
    ("invalid", "size"): N_("Enter a text size from 8 to 1,000 pixels."),
    ("invalid", "color"): N_("Choose a colour such as #1f2328."),
    ("invalid", "align"): N_("Choose left, centre or right."),
    ("no_qr", "qr_content"): N_("This code has no QR code yet: create it on its channel first."),
    ("no_qr", "code_ids"): N_("A chosen code has no QR code yet: create it on its channel first."),
    ("invalid", "code_ids"): N_("Choose from 1 to 200 codes."),
    ("invalid", "size_mm"): N_("Choose a size from 10 to 1,000 mm (at most 12,000 pixels at this resolution)."),
    ("invalid", "dpi"): N_("Choose a resolution from 72 to 1,200 dpi."),
}


def download_urls(code_id: int) -> dict[str, str]:
    """Where the console serves a code's files: its QR as PNG and SVG, and its poster."""
    return {name: f"/console/acquisition/codes/{code_id}/{name}" for name in ("qr.png", "qr.svg", "poster.png")}


def _where(field: str | None) -> tuple[str, str]:
    """(error key on the page, the field's kind): lines[2].size shows on line-<row>-size."""
    field = field or "_form"
    found = re.match(r"^lines\[(\d+)\]\.(\w+)$", field)
    if found:
        return f"line-{found.group(1)}-{found.group(2)}", found.group(2)
    return field, field


def explain_here(exc: SiyuError, console: Console) -> str:
    """A translated sentence for a refusal of the poster pages."""
    message = EXPLAINED.get((exc.code, _where(exc.field)[1]))
    if message is None:
        return explain(exc, console.locale)
    text = console.gettext(message)
    return text % {"mb": posters.max_background_bytes() // (1024 * 1024)} if "%(mb)d" in message else text


def _translated(exc: SiyuError, console: Console) -> SiyuError:
    """The same refusal carrying its translated sentence (error pages show the message as it is)."""
    return type(exc)(explain_here(exc, console), field=exc.field, code=exc.code)


# --- the form ---------------------------------------------------------------------------------------


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _rows(form: Any) -> list[dict[str, str]]:
    """Every line row of the editor (blank ones included), as typed."""
    rows = []
    for i in range(posters.MAX_LINES):
        if f"line-{i}-text" not in form and i >= SHOWN_LINES:
            break
        rows.append({k: _text(form, f"line-{i}-{k}").strip() if k != "text" else _text(form, f"line-{i}-text")
                     for k in LINE_KEYS})
    return rows


def layout_values(form: Any) -> tuple[dict[str, Any], list[int]]:
    """The template values a form (or a preview's query) describes, and the row of each line kept."""
    values: dict[str, Any] = {k: _text(form, k).strip() for k in ("width", "height", "qr_x", "qr_y", "qr_size")}
    values["name"] = _text(form, "name")
    kept, lines = [], []
    for i, row in enumerate(_rows(form)):
        if row["text"].strip():
            kept.append(i)
            lines.append({"text": row["text"], "x": row["x"], "y": row["y"], "size": row["size"],
                          "color": row["color"] or "#000000", "align": row["align"] or "left"})
    values["lines"] = lines
    return values, kept


def _form_values(template: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"name": "", "width": "", "height": "", "qr_x": "", "qr_y": "", "qr_size": ""}
    lines: list[dict[str, Any]] = []
    if template is not None:
        values.update({k: str(getattr(template, k)) for k in ("name", "width", "height", "qr_x", "qr_y", "qr_size")})
        lines = list(template.lines or [])
    return {**values, "rows": _padded([{k: str(line.get(k, "")) for k in LINE_KEYS} for line in lines])}


def _padded(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    blank = {"text": "", "x": "", "y": "", "size": "", "color": "#1f2328", "align": "center"}
    shown = rows[: posters.MAX_LINES]
    return shown + [dict(blank) for _ in range(max(0, SHOWN_LINES - len(shown)))]


def _refused(exc: SiyuError, console: Console, kept: list[int]) -> dict[str, str]:
    key, _ = _where(exc.field)
    found = re.match(r"^line-(\d+)-(\w+)$", key)
    if found and int(found.group(1)) < len(kept):
        key = f"line-{kept[int(found.group(1))]}-{found.group(2)}"
    return {key: explain_here(exc, console)}


# --- pages ------------------------------------------------------------------------------------------


@router.get(BASE)
def template_list(console: ConsoleDep) -> Response:
    """The workspace's poster templates, and a batch of posters to print."""
    console.auth.require("acquisition", "read")
    return console.page("acquisition/posters.html", templates=posters.list_templates(console.db),
                        codes=codes.list_codes(console.db), editable=console.can("acquisition", "write"),
                        errors={})


def _editor(console: Console, *, template: Any, values: dict[str, Any], errors: dict[str, str] | None = None,
            status: int = 200) -> Response:
    return console.page("acquisition/posters_editor.html", status=status, saved=template, values=values,
                        errors=errors or {}, align_names=ALIGN_NAMES, line_names=LINE_NAMES,
                        codes=codes.list_codes(console.db),
                        editable=console.can("acquisition", "write"),
                        max_mb=posters.max_background_bytes() // (1024 * 1024))


@router.get(BASE + "/new")
def new_template(console: ConsoleDep) -> Response:
    """An empty poster template editor."""
    console.auth.require("acquisition", "write")
    values = _form_values(None)
    values["rows"][0].update(text="{{ code.name }}", x="874", y="220", size="110")
    values["rows"][1].update(text="{{ source.name }}", x="874", y="400", size="64", color="#57606a")
    return _editor(console, template=None, values=values)


def _preview_query(form: Any, template_id: int | None) -> str:
    values, _ = layout_values(form)
    query: list[tuple[str, str]] = [(k, str(values[k])) for k in ("width", "height", "qr_x", "qr_y", "qr_size")]
    for i, line in enumerate(values["lines"]):
        query += [(f"line-{i}-{k}", str(line[k])) for k in LINE_KEYS]
    if template_id is not None:
        query.append(("template_id", str(template_id)))
    code_id = _text(form, "preview_code_id")
    if code_id.isdigit():
        query.append(("code_id", code_id))
    return urlencode(query)


def _preview_layout(console: Console, form: Any, template_id: int | None) -> tuple[posters.Layout, Any]:
    """The layout a preview asks for, checked like a save would check it (the saved background under it)."""
    values, kept = layout_values(form)
    template = posters.get_template(console.db, template_id) if template_id is not None else None
    values = posters.with_defaults(values, width=template.width if template else posters.BUILT_IN.width,
                                   height=template.height if template else posters.BUILT_IN.height)
    clean = posters.check_layout(values)
    background = posters.background_of(console.db, template) if template else None
    return posters.Layout(background=background, **clean), kept


@router.get(BASE + "/preview")
def preview_fragment(console: ConsoleDep, template_id: int | None = Query(default=None, ge=1)) -> Response:
    """The editor's live preview: the poster image for the fields as they are, or why it can't be drawn."""
    console.auth.require("acquisition", "read")
    form = console.request.query_params
    try:
        _, kept = _preview_layout(console, form, template_id)
    except SiyuError as exc:
        _, kept = layout_values(form)
        return console.page("acquisition/_poster_preview.html", src=None,
                            error=next(iter(_refused(exc, console, kept).values())))
    return console.page("acquisition/_poster_preview.html", error=None,
                        src=f"{BASE}/preview.png?{_preview_query(form, template_id)}")


@router.get(BASE + "/preview.png")
def preview_png(console: ConsoleDep, template_id: int | None = Query(default=None, ge=1),
                code_id: int | None = Query(default=None, ge=1)) -> Response:
    """The preview image: sample values and a sample QR, or a chosen code's."""
    console.auth.require("acquisition", "read")
    try:
        layout, _ = _preview_layout(console, console.request.query_params, template_id)
        if code_id is not None:
            code = codes.get_code(console.db, code_id)
            png = posters.draw(layout, qr_content=qr.content_of(code), fields=posters.fields_of(console.db, code))
        else:
            png = posters.preview(layout)
    except SiyuError as exc:
        raise _translated(exc, console) from exc
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def _upload(form: FormData) -> bytes | None:
    upload = form.get("background")
    if isinstance(upload, UploadFile) and upload.filename:
        return upload.file.read()
    return None


def _save(console: Console, form: FormData, template: Any) -> Response:
    console.auth.require("acquisition", "write")
    values, kept = layout_values(form)
    background = _upload(form)
    shown = {**{k: values[k] for k in ("name", "width", "height", "qr_x", "qr_y", "qr_size")},
             "rows": _padded(_rows(form))}
    try:
        with console.db.begin_nested():
            if template is None:
                saved = posters.create_template(console.db, values=values, background=background,
                                                actor=console.actor)
            else:
                changes = posters.with_defaults(values, width=template.width, height=template.height)
                saved = posters.update_template(console.db, template, changes=changes, actor=console.actor)
                if background is not None:
                    posters.set_background(console.db, saved, content=background, actor=console.actor)
                elif _text(form, "remove_background") == "on" and template.background_mime:
                    posters.set_background(console.db, saved, content=None, actor=console.actor)
    except SiyuError as exc:
        return _editor(console, template=template, values=shown, errors=_refused(exc, console, kept),
                       status=exc.status)
    return redirect(f"{BASE}/{saved.id}", flash="poster_template_saved")


@router.post(BASE)
def create_template(console: ConsoleDep, form: FormDep) -> Response:
    """Save a new poster template with its background; a refused field is shown next to its input."""
    return _save(console, form, None)


@router.get(BASE + "/{poster_template_id}")
def edit_template(poster_template_id: int, console: ConsoleDep) -> Response:
    """One poster template in the editor."""
    console.auth.require("acquisition", "read")
    template = posters.get_template(console.db, poster_template_id)
    return _editor(console, template=template, values=_form_values(template))


@router.post(BASE + "/{poster_template_id}")
def update_template(poster_template_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Save a template's changes (and a new background, when one was chosen)."""
    return _save(console, form, posters.get_template(console.db, poster_template_id))


@router.post(BASE + "/{poster_template_id}/delete")
def delete_template(poster_template_id: int, console: ConsoleDep, form: FormDep) -> Response:
    """Delete a poster template."""
    console.auth.require("acquisition", "write")
    posters.delete_template(console.db, posters.get_template(console.db, poster_template_id), actor=console.actor)
    return redirect(BASE, flash="poster_template_deleted")


@router.get(BASE + "/{poster_template_id}/background")
def background(poster_template_id: int, console: ConsoleDep) -> Response:
    """The template's background image (for its thumbnail)."""
    console.auth.require("acquisition", "read")
    template = posters.get_template(console.db, poster_template_id)
    content = posters.background_of(console.db, template)
    if content is None or template.background_mime is None:
        raise _translated(Invalid("no background", field="background"), console)
    return Response(content, media_type=template.background_mime, headers={"Cache-Control": "private, max-age=60"})


# --- a code's files ---------------------------------------------------------------------------------


def _download(console: Console, make: Any, name: str, media_type: str) -> Response:
    try:
        content = make()
    except SiyuError as exc:
        raise _translated(exc, console) from exc
    return Response(content, media_type=media_type, headers={"Content-Disposition": attachment(name)})


@router.get("/console/acquisition/codes/{code_id}/qr.png")
def code_qr_png(code_id: int, console: ConsoleDep, size_mm: float = qr.DEFAULT_SIZE_MM,
                dpi: int = qr.DEFAULT_DPI) -> Response:
    """The code's QR as a PNG for print."""
    console.auth.require("acquisition", "read")
    code = codes.get_code(console.db, code_id)
    return _download(console, lambda: qr.png(code, size_mm=size_mm, dpi=dpi), posters.file_name(code, "qr.png"),
                     "image/png")


@router.get("/console/acquisition/codes/{code_id}/qr.svg")
def code_qr_svg(code_id: int, console: ConsoleDep) -> Response:
    """The code's QR as a scalable SVG."""
    console.auth.require("acquisition", "read")
    code = codes.get_code(console.db, code_id)
    return _download(console, lambda: qr.svg(code), posters.file_name(code, "qr.svg"), "image/svg+xml")


@router.get("/console/acquisition/codes/{code_id}/poster.png")
def code_poster(code_id: int, console: ConsoleDep, template_id: str = "") -> Response:
    """The code's poster, from the chosen template (none: the workspace's first, or the built-in one)."""
    console.auth.require("acquisition", "read")
    code = codes.get_code(console.db, code_id)
    template = posters.pick_template(console.db, template_id or None)
    return _download(console, lambda: posters.render(console.db, code, template=template),
                     posters.file_name(code), "image/png")


@router.post("/console/acquisition/posters/batch")
def poster_batch(console: ConsoleDep, form: FormDep) -> Response:
    """A zip of the chosen codes' posters; a refusal shows on the posters page."""
    console.auth.require("acquisition", "read")
    ids = [v for v in form.getlist("code_ids") if isinstance(v, str) and v.isdigit()]
    try:
        chunks = posters.batch(console.db, code_ids=[int(v) for v in ids],
                               template_id=_text(form, "template_id") or None)
    except SiyuError as exc:
        if exc.status == 404:
            raise
        return console.page("acquisition/posters.html", status=exc.status,
                            templates=posters.list_templates(console.db), codes=codes.list_codes(console.db),
                            editable=console.can("acquisition", "write"),
                            errors={"code_ids": explain_here(exc, console)})
    return StreamingResponse(chunks, media_type="application/zip",
                             headers={"Content-Disposition": attachment("posters.zip")})
