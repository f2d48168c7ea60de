"""Poster templates and the posters drawn from them: one printable PNG per channel code, or a zip of many.

A template is a background (PNG or JPEG, checked with Pillow), lines of text in Chinese or Latin
script (drawn with the CJK font Debian ships as fonts-wqy-microhei) and where the code's QR goes.
Texts may name `{{ code.name }}`, `{{ code.state }}` and `{{ source.name }}`; nothing else is
substituted, so a template can't reach anything but those three values. A workspace without templates
gets the built-in one: white, the code's name above its QR and the source's name below the title.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from siyu.acquisition import codes, qr
from siyu.acquisition.models import ChannelCode, Source
from siyu.acquisition.poster_models import PosterTemplate
from siyu.core import audit
from siyu.core.audit import Actor
from siyu.core.errors import Conflict, Invalid, TenancyViolation
from siyu.core.tenancy import bound_workspace, get_scoped
from siyu.settings import get_settings

log = logging.getLogger(__name__)

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
MIMES = {"PNG": "image/png", "JPEG": "image/jpeg"}
MIN_SIDE, MAX_SIDE = 100, 6000
# A3 at 300 dpi is 17.4 million pixels; past this a poster is a billboard (and a memory bill).
MAX_PIXELS = 25_000_000
MAX_LINES = 6
MAX_TEXT = 200
MIN_FONT, MAX_FONT = 8, 1000
MIN_QR = 80
ALIGNS = ("left", "center", "right")
ANCHORS = {"left": "la", "center": "ma", "right": "ra"}
PLACEHOLDERS = ("code.name", "code.state", "source.name")
MAX_BATCH = 200
POSTER_DPI = 300
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_LINE_KEYS = frozenset({"text", "x", "y", "size", "color", "align"})


@dataclass(frozen=True)
class Layout:
    """What a poster is drawn from: the canvas, its background, its texts and the QR's square."""

    width: int
    height: int
    lines: list[dict[str, Any]]
    qr_x: int
    qr_y: int
    qr_size: int
    background: bytes | None = field(default=None, repr=False)


# A5 at 300 dpi, plain white: the code's name as title, the source's name under it, a large QR.
BUILT_IN = Layout(
    width=1748, height=2480,
    lines=[
        {"text": "{{ code.name }}", "x": 874, "y": 220, "size": 110, "color": "#1f2328", "align": "center"},
        {"text": "{{ source.name }}", "x": 874, "y": 400, "size": 64, "color": "#57606a", "align": "center"},
    ],
    qr_x=374, qr_y=700, qr_size=1000,
)


def max_background_bytes() -> int:
    """The largest background accepted (SIYU_POSTER_MAX_BYTES)."""
    return int(get_settings().poster_max_bytes)


def _workspace(session: Session) -> int:
    workspace_id = bound_workspace(session)
    if workspace_id is None:
        raise TenancyViolation("poster templates are managed through a session bound to a workspace")
    return workspace_id


# --- checking ---------------------------------------------------------------------------------------


def check_background(content: bytes) -> tuple[str, int, int]:
    """(mime, width, height) of an uploaded background; anything but a sound PNG or JPEG of a sane size
    is refused on the `background` field."""
    limit = max_background_bytes()
    if not content:
        raise Invalid("choose a PNG or JPEG image", field="background")
    if len(content) > limit:
        raise Invalid(f"the image is larger than {limit // (1024 * 1024)} MB", field="background",
                      code="too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as probe:
                kind, (width, height) = probe.format, probe.size
                if kind not in MIMES:
                    raise Invalid(f"a {kind or 'file of this kind'} is not accepted: use a PNG or JPEG image",
                                  field="background", code="unsupported_image")
                _check_size(width, height, field="background")
                probe.verify()
            with Image.open(io.BytesIO(content)) as image:
                image.load()
    except Invalid:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Invalid("this file is not a readable PNG or JPEG image", field="background") from exc
    return MIMES[kind], width, height


def _check_size(width: int, height: int, *, field: str) -> None:
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE) or width * height > MAX_PIXELS:
        raise Invalid(f"a poster is {MIN_SIDE} to {MAX_SIDE} pixels a side and at most "
                      f"{MAX_PIXELS // 1_000_000} million pixels", field=field, code="image_size")


def _int(values: Mapping[str, Any], key: str, low: int, high: int, *, field: str | None = None) -> int:
    value = values.get(key)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"a whole number from {low} to {high}", field=field or key)
    return value


def check_text(text: Any, *, field: str) -> str:
    """A line's text: 1 to MAX_TEXT characters, naming only the known placeholders."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT or "\x00" in text:
        raise Invalid(f"a text of 1 to {MAX_TEXT} characters", field=field)
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            raise Invalid(f"{{{{ {name} }}}} is not known; use {', '.join(PLACEHOLDERS)}", field=field,
                          code="unknown_field")
    if "{{" in _PLACEHOLDER.sub("", text) or "{%" in text:
        raise Invalid("write a placeholder as {{ code.name }}", field=field, code="unknown_field")
    return text


def _line(raw: Any, index: int, width: int, height: int) -> dict[str, Any]:
    at = f"lines[{index}]"
    if not isinstance(raw, Mapping):
        raise Invalid("a line is {text, x, y, size, color, align}", field=at)
    unknown = sorted(set(raw) - _LINE_KEYS)
    if unknown:
        raise Invalid(f"unknown key {unknown[0]!r}", field=f"{at}.{unknown[0]}")
    color = raw.get("color", "#000000")
    if not isinstance(color, str) or not _COLOR.match(color.strip()):
        raise Invalid("a colour as #RRGGBB", field=f"{at}.color")
    align = raw.get("align", "left")
    if align not in ALIGNS:
        raise Invalid(f"align is one of {', '.join(ALIGNS)}", field=f"{at}.align")
    return {
        "text": check_text(raw.get("text"), field=f"{at}.text"),
        "x": _int(raw, "x", 0, width, field=f"{at}.x"),
        "y": _int(raw, "y", 0, height - 1, field=f"{at}.y"),
        "size": _int(raw, "size", MIN_FONT, MAX_FONT, field=f"{at}.size"),
        "color": color.strip().lower(),
        "align": align,
    }


def check_layout(values: Mapping[str, Any]) -> dict[str, Any]:
    """A layout's size, lines and QR square, checked: every refusal names its field."""
    width = _int(values, "width", MIN_SIDE, MAX_SIDE)
    height = _int(values, "height", MIN_SIDE, MAX_SIDE)
    _check_size(width, height, field="width")
    lines = values.get("lines") or []
    if not isinstance(lines, list) or len(lines) > MAX_LINES:
        raise Invalid(f"at most {MAX_LINES} lines of text", field="lines")
    qr_size = _int(values, "qr_size", MIN_QR, min(width, height))
    qr_x = _int(values, "qr_x", 0, width - qr_size)
    qr_y = _int(values, "qr_y", 0, height - qr_size)
    return {"width": width, "height": height, "qr_x": qr_x, "qr_y": qr_y, "qr_size": qr_size,
            "lines": [_line(line, i, width, height) for i, line in enumerate(lines)]}


def with_defaults(values: Mapping[str, Any], *, width: int, height: int) -> dict[str, Any]:
    """The values with a missing size taken as `width` × `height`, and a missing QR square in the
    middle, half the short side wide."""
    merged = dict(values)
    for key, default in (("width", width), ("height", height)):
        if merged.get(key) in (None, ""):
            merged[key] = default
    if all(merged.get(k) in (None, "") for k in ("qr_x", "qr_y", "qr_size")):
        try:
            w, h = _int(merged, "width", MIN_SIDE, MAX_SIDE), _int(merged, "height", MIN_SIDE, MAX_SIDE)
        except Invalid:
            return merged
        size = max(MIN_QR, min(w, h) // 2)
        merged.update(qr_size=size, qr_x=(w - size) // 2, qr_y=(h - size) // 2)
    return merged


def _clean(session: Session, values: Mapping[str, Any], template_id: int | None) -> dict[str, Any]:
    name = values.get("name")
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 120 or "\x00" in name:
        raise Invalid("a name of 1 to 120 characters", field="name")
    other = session.execute(select(PosterTemplate.id).where(PosterTemplate.name == name)).scalar_one_or_none()
    if other is not None and other != template_id:
        raise Conflict("another poster template has this name", field="name")
    return {"name": name, **check_layout(values)}


# --- templates --------------------------------------------------------------------------------------


def _snapshot(template: PosterTemplate) -> dict[str, Any]:
    """The audited columns: the image itself stays out, its fingerprint goes in."""
    mapper = inspect(PosterTemplate)
    shot = {}
    for col in mapper.column_attrs:
        if col.key != "background":
            value = getattr(template, col.key)
            shot[col.key] = value.isoformat() if isinstance(value, datetime) else value
    return shot


def list_templates(session: Session) -> list[PosterTemplate]:
    """The workspace's poster templates by name."""
    stmt = select(PosterTemplate).order_by(PosterTemplate.name, PosterTemplate.id)
    return list(session.execute(stmt).scalars())


def get_template(session: Session, template_id: Any) -> PosterTemplate:
    """One poster template of the bound workspace (404 for any other)."""
    return get_scoped(session, PosterTemplate, template_id, what="poster template")


def background_of(session: Session, template: PosterTemplate) -> bytes | None:
    """The template's background image, loaded only now."""
    stmt = select(PosterTemplate.background).where(PosterTemplate.id == template.id)
    return session.execute(stmt).scalar_one_or_none()


def create_template(session: Session, *, values: Mapping[str, Any], background: bytes | None = None,
                    actor: Actor) -> PosterTemplate:
    """A new poster template; without a size it takes the background's (or A5 at 300 dpi), without a QR
    square the QR goes in the middle, half the short side wide."""
    image = check_background(background) if background is not None else None
    sized = (image[1], image[2]) if image else (BUILT_IN.width, BUILT_IN.height)
    merged = with_defaults(values, width=sized[0], height=sized[1])
    template = PosterTemplate(workspace_id=_workspace(session), created_by=actor.label,
                              **_clean(session, merged, None))
    if image is not None and background is not None:
        template.background, template.background_mime = background, image[0]
        template.background_bytes = len(background)
    session.add(template)
    session.flush()
    after = _snapshot(template)
    after["background_sha256"] = hashlib.sha256(background).hexdigest() if background else None
    audit.record(session, actor, workspace_id=template.workspace_id, action="poster_template.create",
                 entity_type="poster_template", entity_id=template.id, after=after)
    return template


def update_template(session: Session, template: PosterTemplate, *, changes: Mapping[str, Any],
                    actor: Actor) -> PosterTemplate:
    """Change a template's name, size, lines or QR square; the whole layout is checked again."""
    current = {k: getattr(template, k) for k in ("name", "width", "height", "lines", "qr_x", "qr_y", "qr_size")}
    clean = _clean(session, {**current, **changes}, template.id)
    before = _snapshot(template)
    for key, value in clean.items():
        setattr(template, key, value)
    session.flush()
    audit.record(session, actor, workspace_id=template.workspace_id, action="poster_template.update",
                 entity_type="poster_template", entity_id=template.id, before=before, after=_snapshot(template))
    return template


def set_background(session: Session, template: PosterTemplate, *, content: bytes | None,
                   actor: Actor) -> PosterTemplate:
    """Replace the template's background (None: plain white); it is scaled to cover the canvas."""
    before = _snapshot(template)
    if content is None:
        template.background, template.background_mime, template.background_bytes = None, None, 0
    else:
        mime, _, _ = check_background(content)
        template.background, template.background_mime, template.background_bytes = content, mime, len(content)
    session.flush()
    after = _snapshot(template)
    after["background_sha256"] = hashlib.sha256(content).hexdigest() if content else None
    audit.record(session, actor, workspace_id=template.workspace_id, action="poster_template.background",
                 entity_type="poster_template", entity_id=template.id, before=before, after=after)
    return template


def delete_template(session: Session, template: PosterTemplate, *, actor: Actor) -> None:
    """Delete a poster template (posters already printed are not affected)."""
    audit.record(session, actor, workspace_id=template.workspace_id, action="poster_template.delete",
                 entity_type="poster_template", entity_id=template.id, before=_snapshot(template))
    session.delete(template)
    session.flush()


# --- drawing ----------------------------------------------------------------------------------------


def layout_of(session: Session, template: PosterTemplate | None) -> Layout:
    """A saved template as a layout to draw (the built-in one for None)."""
    if template is None:
        return BUILT_IN
    return Layout(width=template.width, height=template.height, lines=list(template.lines or []),
                  qr_x=template.qr_x, qr_y=template.qr_y, qr_size=template.qr_size,
                  background=background_of(session, template))


def pick_template(session: Session, template_id: Any = None) -> PosterTemplate | None:
    """The template named, or (none named) the workspace's first one, or None for the built-in layout."""
    if template_id not in (None, ""):
        return get_template(session, template_id)
    stmt = select(PosterTemplate).order_by(PosterTemplate.id).limit(1)
    return session.execute(stmt).scalars().first()


def fields_of(session: Session, code: ChannelCode) -> dict[str, str]:
    """The values a poster's texts may name, for one code."""
    source = get_scoped(session, Source, code.source_id, what="source")
    return {"code.name": code.name, "code.state": code.state, "source.name": source.name}


def fill(text: str, fields: Mapping[str, str]) -> str:
    """A line's text with its placeholders replaced (an unknown one leaves nothing)."""
    return _PLACEHOLDER.sub(lambda m: fields.get(m.group(1), ""), text)


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The CJK font at `size` pixels; without it Latin text still draws and Chinese shows as boxes."""
    if FONT_PATH.exists():
        return ImageFont.truetype(str(FONT_PATH), size)
    log.warning("poster font %s is missing (Debian package fonts-wqy-microhei): Chinese text will not render",
                FONT_PATH)
    return ImageFont.load_default(size=size)


def _fitted(draw: ImageDraw.ImageDraw, text: str, line: Mapping[str, Any], width: int) -> Any:
    """The line's font, smaller when the text would run off the canvas."""
    x, size = int(line["x"]), int(line["size"])
    room = {"left": width - x, "right": x, "center": 2 * min(x, width - x)}[line.get("align", "left")]
    chosen = font(size)
    used = draw.textlength(text, font=chosen)
    if used > room > 0:
        chosen = font(max(MIN_FONT, int(size * room / used)))
    return chosen


def _background(content: bytes, width: int, height: int) -> Image.Image:
    with Image.open(io.BytesIO(content)) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            flat = Image.new("RGBA", image.size, "white")
            flat.alpha_composite(image)
            image = flat
        image = image.convert("RGB")
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)


def draw(layout: Layout, *, qr_content: str, fields: Mapping[str, str]) -> bytes:
    """The poster as a PNG: background, texts, then the QR (quiet zone included) on top, at 300 dpi."""
    if layout.background:
        canvas = _background(layout.background, layout.width, layout.height)
    else:
        canvas = Image.new("RGB", (layout.width, layout.height), "white")
    pen = ImageDraw.Draw(canvas)
    for line in layout.lines:
        text = fill(str(line.get("text", "")), fields)
        if not text.strip():
            continue
        pen.text((int(line["x"]), int(line["y"])), text, font=_fitted(pen, text, line, layout.width),
                 fill=str(line.get("color", "#000000")), anchor=ANCHORS.get(line.get("align", "left"), "la"))
    canvas.paste(qr.image(qr_content, layout.qr_size, field="qr_size").convert("RGB"), (layout.qr_x, layout.qr_y))
    out = io.BytesIO()
    canvas.save(out, format="PNG", dpi=(POSTER_DPI, POSTER_DPI))
    return out.getvalue()


def render(session: Session, code: ChannelCode, *, template: PosterTemplate | None = None) -> bytes:
    """One code's poster as a PNG, drawn from `template` (None: the built-in layout)."""
    return draw(layout_of(session, template), qr_content=qr.content_of(code), fields=fields_of(session, code))


SAMPLE_FIELDS = {"code.name": "门店海报 Store poster", "code.state": "sample", "source.name": "线下门店 In store"}
SAMPLE_CONTENT = "https://work.weixin.qq.com/ca/sample"


def preview(layout: Layout) -> bytes:
    """A layout drawn with sample values and a sample QR, for the editor."""
    return draw(layout, qr_content=SAMPLE_CONTENT, fields=SAMPLE_FIELDS)


def file_name(code: ChannelCode, suffix: str = "poster.png") -> str:
    """A download name for a code's file: its id and name, with nothing a file system would trip on."""
    safe = re.sub(r"[^\w\-]+", "-", code.name, flags=re.UNICODE).strip("-_")[:60]
    return f"{code.id}-{safe}-{suffix}" if safe else f"{code.id}-{suffix}"


# --- batches ----------------------------------------------------------------------------------------


class _Sink(io.RawIOBase):
    """What zipfile writes, kept until the stream takes it (zipfile treats it as unseekable)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _zip(entries: Iterable[tuple[str, Layout, str, Mapping[str, str]]]) -> Iterator[bytes]:
    sink = _Sink()
    # Posters are PNGs, compressed already: stored, each is written and sent as soon as it is drawn.
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, layout, content, fields in entries:
            archive.writestr(name, draw(layout, qr_content=content, fields=fields))
            yield sink.take()
    yield sink.take()


def batch(session: Session, *, code_ids: Iterable[Any], template_id: Any = None) -> Iterator[bytes]:
    """A zip of one poster per code, streamed; every code and the template are checked before the first byte."""
    ids = list(dict.fromkeys(code_ids))
    if not ids:
        raise Invalid("choose at least one code", field="code_ids")
    if len(ids) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} codes a batch", field="code_ids")
    chosen = [codes.get_code(session, code_id) for code_id in ids]
    layout = layout_of(session, pick_template(session, template_id))
    entries = []
    for code in chosen:
        try:
            content = qr.content_of(code)
        except Invalid as exc:
            raise Invalid(f"{code.name}: {exc.message}", field="code_ids", code=exc.code) from exc
        entries.append((file_name(code), layout, content, fields_of(session, code)))
    return _zip(entries)
