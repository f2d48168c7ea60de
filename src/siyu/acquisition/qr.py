"""A channel code's QR image for print: PNG at a size in millimetres and a resolution, or a scalable SVG.

The QR always carries a quiet zone of at least four modules and error correction M or better (segno
raises it when the same symbol size allows). A PNG is made of whole pixels per module, so a printer
sees crisp edges: what the requested size leaves over goes to a wider white margin, never to
stretched modules.
"""

from __future__ import annotations

import io
from typing import Any

import segno
from PIL import Image

from siyu.core.errors import Invalid

DEFAULT_DPI = 300
DEFAULT_SIZE_MM = 50.0
MIN_DPI, MAX_DPI = 72, 1200
MIN_SIZE_MM, MAX_SIZE_MM = 10.0, 1000.0
# A side past this many pixels is a wall, not a QR code (and a memory bill).
MAX_SIDE_PX = 12_000
QUIET_MODULES = 4
MM_PER_INCH = 25.4


def content_of(code: Any) -> str:
    """What the code's QR encodes; a code the platform hasn't given a QR yet is refused."""
    content = (getattr(code, "qr_content", None) or "").strip()
    if not content:
        raise Invalid("this code has no QR content yet: create it on its channel first (or give its link)",
                      field="qr_content", code="no_qr")
    return content


def symbol(content: str) -> segno.QRCode:
    """The QR symbol of `content`: a full QR code (never a Micro QR), error correction M or better."""
    try:
        return segno.make(content, error="m", boost_error=True, micro=False)
    except segno.DataOverflowError as exc:
        raise Invalid("this content is too long for a QR code", field="qr_content") from exc


def pixels(size_mm: float, dpi: int) -> int:
    """How many pixels `size_mm` is at `dpi` (checked against the limits)."""
    if not MIN_DPI <= dpi <= MAX_DPI:
        raise Invalid(f"dpi is between {MIN_DPI} and {MAX_DPI}", field="dpi")
    if not MIN_SIZE_MM <= size_mm <= MAX_SIZE_MM:
        raise Invalid(f"the size is between {MIN_SIZE_MM:g} and {MAX_SIZE_MM:g} mm", field="size_mm")
    px = round(size_mm / MM_PER_INCH * dpi)
    if px > MAX_SIDE_PX:
        raise Invalid(f"at most {MAX_SIDE_PX} pixels a side: choose a smaller size or dpi", field="size_mm")
    return px


def image(content: str, side_px: int, *, field: str = "size") -> Image.Image:
    """The QR of `content` as a square black-on-white image of exactly `side_px` pixels, quiet zone included."""
    qr = symbol(content)
    modules = qr.symbol_size(scale=1, border=QUIET_MODULES)[0]
    scale = side_px // modules
    if scale < 1:
        raise Invalid(f"a QR code of this content needs at least {modules} pixels a side", field=field)
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=scale, border=QUIET_MODULES, dark="#000", light="#fff")
    buf.seek(0)
    drawn = Image.open(buf).convert("L")
    canvas = Image.new("L", (side_px, side_px), 255)
    offset = (side_px - drawn.width) // 2
    canvas.paste(drawn, (offset, offset))
    return canvas


def png(code: Any, *, size_mm: float = DEFAULT_SIZE_MM, dpi: int = DEFAULT_DPI) -> bytes:
    """The code's QR as a PNG `size_mm` wide at `dpi` (the PNG says its dpi, so it prints at that size)."""
    content = content_of(code)
    side = pixels(size_mm, dpi)
    out = io.BytesIO()
    image(content, side, field="size_mm").save(out, format="PNG", dpi=(dpi, dpi), optimize=True)
    return out.getvalue()


def svg(code: Any, *, size_mm: float | None = None) -> bytes:
    """The code's QR as an SVG: scalable (a viewBox in modules), `size_mm` wide when given, white behind."""
    content = content_of(code)
    qr = symbol(content)
    title = (getattr(code, "name", None) or "").strip() or None
    out = io.BytesIO()
    if size_mm is None:
        qr.save(out, kind="svg", border=QUIET_MODULES, omitsize=True, dark="#000", light="#fff", title=title)
    else:
        if not MIN_SIZE_MM <= size_mm <= MAX_SIZE_MM:
            raise Invalid(f"the size is between {MIN_SIZE_MM:g} and {MAX_SIZE_MM:g} mm", field="size_mm")
        modules = qr.symbol_size(scale=1, border=QUIET_MODULES)[0]
        qr.save(out, kind="svg", border=QUIET_MODULES, scale=size_mm / modules, unit="mm", dark="#000",
                light="#fff", title=title)
    return out.getvalue()
