"""A channel code's QR for print: a PNG of exactly the asked size at its dpi, a scalable SVG, both scanning
back to the code's content; a code without QR content is refused."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from siyu.acquisition import qr
from siyu.core.errors import Invalid
from tests.acquisition.poster_support import LINK_URL, WECOM_URL, decode, raster, svg_modules


def code(content: str | None = WECOM_URL, name: str = "快递卡") -> SimpleNamespace:
    return SimpleNamespace(qr_content=content, name=name)


def test_png_at_300_dpi_is_the_printed_size_and_says_its_dpi():
    png = qr.png(code(), size_mm=50, dpi=300)

    image = Image.open(io.BytesIO(png))
    assert image.size == (591, 591)  # 50 mm / 25.4 × 300
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert decode(png) == [WECOM_URL]


def test_png_defaults_to_50_mm_at_300_dpi_and_keeps_a_white_quiet_zone():
    image = Image.open(io.BytesIO(qr.png(code(LINK_URL)))).convert("L")

    assert image.size == (591, 591)
    modules = qr.symbol(LINK_URL).symbol_size(scale=1, border=0)[0]
    quiet = 4 * (591 // (modules + 8))
    assert all(image.getpixel((x, y)) == 255 for x in range(quiet) for y in range(0, 591, 7))


def test_error_correction_is_m_or_better():
    assert qr.symbol(WECOM_URL).error in ("M", "Q", "H")
    assert not qr.symbol(WECOM_URL).is_micro


@settings(max_examples=12, deadline=None)
@given(size_mm=st.integers(min_value=15, max_value=120), dpi=st.sampled_from([72, 150, 300, 600]))
def test_any_size_and_dpi_gives_exactly_that_many_pixels_and_scans(size_mm, dpi):
    png = qr.png(code(LINK_URL), size_mm=size_mm, dpi=dpi)

    side = round(size_mm / 25.4 * dpi)
    assert Image.open(io.BytesIO(png)).size == (side, side)
    assert decode(png) == [LINK_URL]


def test_svg_is_scalable_parses_and_holds_the_qr():
    svg = qr.svg(code())

    root, dark = svg_modules(svg)
    assert root.tag.endswith("svg")
    assert "width" not in root.attrib  # scales to whatever it is placed in
    modules = int(float(root.get("viewBox").split()[2]))
    assert decode(raster(dark, modules)) == [WECOM_URL]
    assert "快递卡" in svg.decode()  # its title


def test_svg_of_a_given_size_says_it_in_millimetres():
    root, dark = svg_modules(qr.svg(code(LINK_URL), size_mm=40))

    assert root.get("width") == "40.0mm"
    assert decode(raster(dark, 37)) == [LINK_URL]


@pytest.mark.parametrize("content", [None, "", "   "])
def test_a_code_without_qr_content_is_refused(content):
    for make in (qr.png, qr.svg):
        with pytest.raises(Invalid) as refused:
            make(code(content))
        assert refused.value.field == "qr_content"
        assert refused.value.code == "no_qr"


@pytest.mark.parametrize(("size_mm", "dpi", "field"), [
    (50, 30, "dpi"), (50, 5000, "dpi"), (5, 300, "size_mm"), (2000, 300, "size_mm"), (1000, 1200, "size_mm"),
])
def test_sizes_and_resolutions_out_of_range_are_refused(size_mm, dpi, field):
    with pytest.raises(Invalid) as refused:
        qr.png(code(), size_mm=size_mm, dpi=dpi)
    assert refused.value.field == field


def test_a_square_too_small_for_the_content_is_refused():
    with pytest.raises(Invalid) as refused:
        qr.image(WECOM_URL, 20, field="qr_size")
    assert refused.value.field == "qr_size"
