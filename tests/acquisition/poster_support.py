"""Channel codes made directly (the code service is another part's), images to upload, and QR decoding."""

from __future__ import annotations

import io
import itertools
import re
import xml.etree.ElementTree as ET
from typing import Any

import zxingcpp
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.acquisition.models import ChannelCode, Source
from siyu.core.audit import Actor

ACTOR = Actor.cli("poster-tester")
WECOM_URL = "https://work.weixin.qq.com/ca/cawcde1234"
LINK_URL = "http://127.0.0.1:8000/c/parcel01"
_states = itertools.count(1)


def make_code(db: Session, *, name: str = "快递卡 Parcel card", qr_content: str | None = WECOM_URL,
              source_name: str = "包裹卡 Parcel cards") -> ChannelCode:
    """A code of the bound workspace with the QR content the platform would have given it."""
    source = db.execute(select(Source).where(Source.name == source_name)).scalar_one_or_none()
    if source is None:
        source = Source(name=source_name, type="parcel_card", currency="CNY",
                        cost_model={"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000})
        db.add(source)
        db.flush()
    code = ChannelCode(name=name, source_id=source.id, kind="wecom", state=f"poster{next(_states)}",
                       qr_content=qr_content)
    db.add(code)
    db.flush()
    return code


def picture(fmt: str = "PNG", size: tuple[int, int] = (1200, 1600), color: tuple[int, ...] = (200, 40, 40),
            mode: str = "RGB") -> bytes:
    """An image file of one colour with a lighter band (so it is a real picture, not a blank)."""
    image = Image.new(mode, size, color)
    band = Image.new(mode, (size[0], max(1, size[1] // 5)), (250, 220, 200, 255)[: len(mode)])
    image.paste(band, (0, size[1] // 2))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def decode(png: bytes) -> list[str]:
    """Every QR code zxing-cpp finds in an image file."""
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def svg_modules(svg: bytes) -> tuple[Any, set[tuple[int, int]]]:
    """The parsed SVG and its dark modules, read back from segno's path of horizontal runs."""
    root = ET.fromstring(svg)
    [path] = [e for e in root.iter() if e.get("class") == "qrline"]
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    tokens = re.findall(r"[A-Za-z]|-?\d+(?:\.\d+)?", path.get("d", ""))
    i = 0
    while i < len(tokens):
        command = tokens[i]
        if command == "M":
            x, y = float(tokens[i + 1]), float(tokens[i + 2])
            i += 3
        elif command == "m":
            x, y = x + float(tokens[i + 1]), y + float(tokens[i + 2])
            i += 3
        elif command == "h":
            run = float(tokens[i + 1])
            dark.update((col, int(y)) for col in range(int(x), int(x + run)))
            x += run
            i += 2
        else:
            raise AssertionError(f"unexpected path command {command}")
    return root, dark


def raster(dark: set[tuple[int, int]], modules: int, scale: int = 8) -> bytes:
    """Dark modules drawn as a PNG (for the decoder)."""
    image = Image.new("L", (modules * scale, modules * scale), 255)
    for col, row in dark:
        image.paste(0, (col * scale, row * scale, (col + 1) * scale, (row + 1) * scale))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
