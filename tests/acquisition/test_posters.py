"""Poster templates and the posters drawn from them: the printed poster scans back to the code's content
whatever the background (JPEG, PNG with transparency, none) and whatever the script of its texts; bad
backgrounds and layouts are refused on their field with nothing stored; batches zip one poster a code."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
from PIL import Image
from sqlalchemy import select

from siyu.acquisition import codes, posters
from siyu.core.errors import Conflict, Invalid, NotFound
from siyu.core.models import AuditEntry
from siyu.core.tenancy import bind_workspace
from siyu.settings import get_settings
from tests.acquisition.poster_support import ACTOR, LINK_URL, WECOM_URL, decode, make_code, picture

TITLE = {"text": "扫码添加 {{ code.name }}", "x": 600, "y": 80, "size": 72, "color": "#ffffff", "align": "center"}
SUBTITLE = {"text": "{{ source.name }} · 每日上新", "x": 600, "y": 200, "size": 40, "color": "#fefefe",
            "align": "center"}


@pytest.fixture
def ws(db, make_workspace):
    workspace = make_workspace("Tea Shop")
    bind_workspace(db, workspace.id)
    return workspace


def template_values(**changes):
    return {"name": "双十一海报", "lines": [TITLE, SUBTITLE], "qr_x": 350, "qr_y": 500, "qr_size": 500, **changes}


def test_a_poster_on_a_jpeg_background_with_chinese_text_scans_back_to_the_code(db, ws):
    code = make_code(db)
    template = posters.create_template(db, values=template_values(), background=picture("JPEG"), actor=ACTOR)

    png = posters.render(db, code, template=template)

    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1200, 1600)  # the background's size
    assert decode(png) == [WECOM_URL]
    red, green, blue = image.getpixel((20, 1500))
    assert (red > 150, green < 90, blue < 90) == (True, True, True)  # the background shows around the QR


def test_the_texts_are_drawn_in_the_cjk_font(db, ws):
    assert posters.FONT_PATH.exists(), "make system-deps installs fonts-wqy-microhei"
    layout = posters.Layout(width=800, height=1000, qr_x=150, qr_y=350, qr_size=500,
                            lines=[{"text": "{{ code.name }}", "x": 400, "y": 60, "size": 80, "color": "#000000",
                                    "align": "center"}])
    def title(name):
        png = posters.draw(layout, qr_content=LINK_URL, fields={"code.name": name})
        return Image.open(io.BytesIO(png)).convert("L").crop((0, 40, 800, 200))

    parcel, express, blank = title("包裹卡"), title("快递卡"), title(" ")
    # Without CJK glyphs both would be three identical boxes.
    assert parcel.tobytes() != express.tobytes()
    assert parcel.tobytes() != blank.tobytes()
    assert parcel.getextrema()[0] < 60


def test_placeholders_are_filled_for_each_code(db, ws):
    code = make_code(db, name="门店 A")

    assert posters.fields_of(db, code) == {"code.name": "门店 A", "code.state": code.state,
                                           "source.name": "包裹卡 Parcel cards"}
    assert posters.fill("扫码 {{code.name}} / {{ source.name }}", posters.fields_of(db, code)) == \
        "扫码 门店 A / 包裹卡 Parcel cards"


def test_a_png_background_with_transparency_is_laid_on_white(db, ws):
    code = make_code(db, qr_content=LINK_URL)
    background = picture("PNG", size=(900, 900), color=(0, 0, 255, 0), mode="RGBA")
    template = posters.create_template(db, values={"name": "透明"}, background=background, actor=ACTOR)

    png = posters.render(db, code, template=template)

    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.getpixel((5, 5)) == (255, 255, 255)
    assert (template.qr_size, template.qr_x, template.qr_y) == (450, 225, 225)  # centred when not placed
    assert decode(png) == [LINK_URL]


def test_the_built_in_layout_serves_a_workspace_without_templates(db, ws):
    code = make_code(db, name="Live stream 直播间")

    assert posters.pick_template(db) is None
    png = posters.render(db, code, template=None)

    assert Image.open(io.BytesIO(png)).size == (posters.BUILT_IN.width, posters.BUILT_IN.height)
    assert Image.open(io.BytesIO(png)).info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert decode(png) == [WECOM_URL]


def test_without_a_named_template_the_first_one_is_used(db, ws):
    first = posters.create_template(db, values=template_values(name="A"), actor=ACTOR)
    posters.create_template(db, values=template_values(name="B"), actor=ACTOR)

    assert posters.pick_template(db) == first
    assert posters.pick_template(db, "") == first


def test_a_text_wider_than_the_poster_is_shrunk_onto_it(db, ws):
    long = {"text": "很长很长的标题" * 8, "x": 0, "y": 10, "size": 120, "color": "#000000", "align": "left"}
    layout = posters.Layout(width=600, height=800, qr_x=100, qr_y=300, qr_size=400, lines=[long])

    image = Image.open(io.BytesIO(posters.draw(layout, qr_content=LINK_URL, fields={}))).convert("L")

    assert image.crop((0, 0, 600, 150)).getextrema()[0] < 60
    assert decode(posters.draw(layout, qr_content=LINK_URL, fields={})) == [LINK_URL]


@pytest.mark.parametrize(("content", "code"), [
    (b"this is not an image", "invalid"),
    (picture("GIF", size=(400, 400)), "unsupported_image"),
    (picture("BMP", size=(400, 400)), "unsupported_image"),
    (picture("PNG", size=(7000, 120)), "image_size"),
    (picture("PNG", size=(60, 60)), "image_size"),
    (picture("JPEG")[:2000], "invalid"),  # cut off
])
def test_bad_backgrounds_are_refused_on_their_field_and_nothing_is_stored(db, ws, content, code):
    with pytest.raises(Invalid) as refused:
        posters.create_template(db, values=template_values(), background=content, actor=ACTOR)

    assert refused.value.field == "background"
    assert refused.value.code == code
    assert posters.list_templates(db) == []
    assert db.execute(select(AuditEntry).where(AuditEntry.entity_type == "poster_template")).first() is None


def test_a_background_over_the_size_limit_is_refused(db, ws, monkeypatch):
    monkeypatch.setattr(get_settings(), "poster_max_bytes", 50_000)
    noisy = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    assert len(out.getvalue()) > 50_000

    with pytest.raises(Invalid) as refused:
        posters.create_template(db, values={"name": "big"}, background=out.getvalue(), actor=ACTOR)

    assert (refused.value.field, refused.value.code) == ("background", "too_large")
    assert posters.list_templates(db) == []


def test_replacing_a_background_with_a_bad_file_keeps_the_old_one(db, ws):
    template = posters.create_template(db, values=template_values(), background=picture("JPEG"), actor=ACTOR)

    with pytest.raises(Invalid):
        posters.set_background(db, template, content=picture("GIF", size=(300, 300)), actor=ACTOR)

    assert template.background_mime == "image/jpeg"
    assert posters.background_of(db, template)[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(("changes", "field"), [
    ({"name": " "}, "name"),
    ({"width": 50}, "width"),
    ({"width": 6000, "height": 6000}, "width"),
    ({"qr_size": 40}, "qr_size"),
    ({"qr_x": 900}, "qr_x"),
    ({"qr_y": 1200}, "qr_y"),
    ({"lines": [{**TITLE, "text": "{{ contact.phone }}"}]}, "lines[0].text"),
    ({"lines": [{**TITLE, "text": "{% for x in y %}"}]}, "lines[0].text"),
    ({"lines": [TITLE, {**SUBTITLE, "color": "red"}]}, "lines[1].color"),
    ({"lines": [{**TITLE, "align": "justify"}]}, "lines[0].align"),
    ({"lines": [{**TITLE, "size": 2}]}, "lines[0].size"),
    ({"lines": [{**TITLE, "x": 5000}]}, "lines[0].x"),
    ({"lines": [{**TITLE, "font": "Arial"}]}, "lines[0].font"),
    ({"lines": [TITLE] * 7}, "lines"),
])
def test_bad_layouts_are_refused_on_their_field(db, ws, changes, field):
    with pytest.raises(Invalid) as refused:
        posters.create_template(db, values={**template_values(width=1200, height=1600), **changes}, actor=ACTOR)

    assert refused.value.field == field
    assert posters.list_templates(db) == []


def test_names_are_unique_in_a_workspace(db, ws):
    posters.create_template(db, values=template_values(), actor=ACTOR)

    with pytest.raises(Conflict) as refused:
        posters.create_template(db, values=template_values(), actor=ACTOR)
    assert refused.value.field == "name"


def test_writes_are_audited_without_the_image(db, ws):
    template = posters.create_template(db, values=template_values(), background=picture("JPEG"), actor=ACTOR)
    posters.update_template(db, template, changes={"qr_size": 400}, actor=ACTOR)
    posters.set_background(db, template, content=None, actor=ACTOR)
    posters.delete_template(db, template, actor=ACTOR)

    entries = db.execute(select(AuditEntry).where(AuditEntry.entity_type == "poster_template")
                         .order_by(AuditEntry.id)).scalars().all()
    assert [e.action for e in entries] == ["poster_template.create", "poster_template.update",
                                           "poster_template.background", "poster_template.delete"]
    assert "background" not in entries[0].after
    assert len(entries[0].after["background_sha256"]) == 64
    assert entries[1].before == {"qr_size": 500, "updated_at": entries[1].before["updated_at"]}
    assert entries[2].after["background_mime"] is None


def test_a_batch_zips_one_scannable_poster_per_code(db, ws):
    codes = [make_code(db, name=name, qr_content=f"{LINK_URL}{n}")
             for n, name in enumerate(["快递卡", "Store poster / 门店", "直播间"])]
    template = posters.create_template(db, values=template_values(), background=picture("JPEG"), actor=ACTOR)

    data = b"".join(posters.batch(db, code_ids=[c.id for c in codes] + [codes[0].id], template_id=template.id))

    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    assert names == [posters.file_name(c) for c in codes]
    assert names[1] == f"{codes[1].id}-Store-poster-门店-poster.png"
    for n, name in enumerate(names):
        assert decode(archive.read(name)) == [f"{LINK_URL}{n}"]


def test_a_batch_with_a_code_lacking_its_qr_is_refused_before_anything_is_drawn(db, ws):
    ready = make_code(db, name="ready")
    pending = make_code(db, name="pending", qr_content=None)

    with pytest.raises(Invalid) as refused:
        posters.batch(db, code_ids=[ready.id, pending.id])
    assert refused.value.field == "code_ids"
    assert "pending" in refused.value.message
    with pytest.raises(Invalid):
        posters.batch(db, code_ids=[])
    with pytest.raises(Invalid):
        posters.batch(db, code_ids=range(1, posters.MAX_BATCH + 2))


def test_file_names_keep_letters_and_drop_what_a_file_system_trips_on(db, ws):
    code = make_code(db, name="../../etc/passwd 快递\\卡:*?")

    assert posters.file_name(code) == f"{code.id}-etc-passwd-快递-卡-poster.png"
    assert posters.file_name(make_code(db, name="///")) .endswith("-poster.png")


def test_another_workspaces_codes_and_templates_are_not_found(db, ws, make_workspace):
    mine = make_code(db)
    other = make_workspace("Other")
    bind_workspace(db, other.id)
    theirs = make_code(db, source_name="their source")
    their_template = posters.create_template(db, values=template_values(), actor=ACTOR)
    db.flush()
    bind_workspace(db, ws.id)

    with pytest.raises(NotFound):
        codes.get_code(db, theirs.id)
    with pytest.raises(NotFound):
        posters.get_template(db, their_template.id)
    with pytest.raises(NotFound):
        posters.batch(db, code_ids=[mine.id, theirs.id])
    with pytest.raises(NotFound):
        posters.batch(db, code_ids=[mine.id], template_id=their_template.id)
    assert posters.list_templates(db) == []
    assert posters.pick_template(db) is None
