"""REST: a code's QR (PNG at a size and dpi, SVG) and poster, batches as a zip, poster templates with a
multipart background upload; bad uploads are 422 on `background` with nothing stored; another workspace's
codes and templates are 404."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest
from PIL import Image

from siyu.acquisition import posters
from siyu.core.tenancy import bind_workspace
from siyu.settings import get_settings
from tests.acquisition.poster_support import LINK_URL, WECOM_URL, decode, make_code, picture, raster, svg_modules
from tests.conftest import bearer

API = "/api/v1"
LINES = [{"text": "扫码领券 {{ code.name }}", "x": 600, "y": 90, "size": 70, "color": "#FFFFFF", "align": "center"}]


@pytest.fixture
def shop(db, make_workspace, make_key):
    ws = make_workspace("Tea Shop")
    key = bearer(make_key(ws, ["all:write"]))
    bind_workspace(db, ws.id)
    code = make_code(db)
    db.commit()
    return ws, key, code


@pytest.fixture
def other(db, make_workspace, make_key):
    ws = make_workspace("Other Shop")
    bind_workspace(db, ws.id)
    code = make_code(db, name="theirs", qr_content=LINK_URL, source_name="their source")
    template = posters.create_template(db, values={"name": "theirs"}, actor=posters_actor())
    db.commit()
    bind_workspace(db, None)
    return code, template


def posters_actor():
    from tests.acquisition.poster_support import ACTOR

    return ACTOR


def upload(client, key, *, name="双十一", background=None, **fields):
    files = {"background": ("bg.jpg", background, "image/jpeg")} if background is not None else None
    data = {"name": name, **{k: (json.dumps(v) if k == "lines" else str(v)) for k, v in fields.items()}}
    return client.post(f"{API}/poster-templates", headers=key, data=data, files=files)


def test_qr_png_at_300_dpi_and_svg(client, shop):
    _, key, code = shop

    png = client.get(f"{API}/channel-codes/{code.id}/qr.png", headers=key, params={"size_mm": 30, "dpi": 300})
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert "attachment" in png.headers["content-disposition"]
    image = Image.open(io.BytesIO(png.content))
    assert image.size == (354, 354)
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert decode(png.content) == [WECOM_URL]

    svg = client.get(f"{API}/channel-codes/{code.id}/qr.svg", headers=key)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    root, dark = svg_modules(svg.content)
    assert decode(raster(dark, int(float(root.get("viewBox").split()[2])))) == [WECOM_URL]


def test_bad_sizes_and_a_code_without_qr_are_422(client, db, shop):
    ws, key, code = shop
    bind_workspace(db, ws.id)
    pending = make_code(db, name="pending", qr_content=None)
    db.commit()

    assert client.get(f"{API}/channel-codes/{code.id}/qr.png", headers=key, params={"dpi": 10}).status_code == 422
    big = client.get(f"{API}/channel-codes/{code.id}/qr.png", headers=key, params={"size_mm": 1000, "dpi": 1200})
    assert big.json()["error"]["field"] == "size_mm"
    refused = client.get(f"{API}/channel-codes/{pending.id}/poster.png", headers=key)
    assert refused.status_code == 422
    assert refused.json()["error"] == {"code": "no_qr", "field": "qr_content", "message": refused.json()["error"]
                                       ["message"]}


def test_a_template_uploaded_with_a_jpeg_draws_a_scannable_poster(client, shop):
    _, key, code = shop

    made = upload(client, key, background=picture("JPEG"), lines=LINES, qr_x=350, qr_y=500, qr_size=500)
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["width"], body["height"], body["background_mime"]) == (1200, 1600, "image/jpeg")
    assert body["lines"][0]["color"] == "#ffffff"

    poster = client.get(f"{API}/channel-codes/{code.id}/poster.png", headers=key, params={"template_id": body["id"]})
    assert poster.status_code == 200
    assert Image.open(io.BytesIO(poster.content)).size == (1200, 1600)
    assert decode(poster.content) == [WECOM_URL]

    preview = client.get(f"{API}/poster-templates/{body['id']}/preview.png", headers=key)
    assert decode(preview.content) == [posters.SAMPLE_CONTENT]
    background = client.get(f"{API}/poster-templates/{body['id']}/background", headers=key)
    assert background.headers["content-type"] == "image/jpeg"


def test_templates_are_listed_changed_and_deleted(client, shop):
    _, key, _ = shop
    made = upload(client, key, lines=LINES).json()
    assert (made["width"], made["height"], made["background_mime"]) == (1748, 2480, None)

    changed = client.patch(f"{API}/poster-templates/{made['id']}", headers=key,
                           json={"name": "新名字", "qr_size": 600, "qr_x": 100, "qr_y": 100})
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "新名字"
    off = client.patch(f"{API}/poster-templates/{made['id']}", headers=key, json={"qr_x": 1500})
    assert (off.status_code, off.json()["error"]["field"]) == (422, "qr_x")

    put = client.put(f"{API}/poster-templates/{made['id']}/background", headers={**key, "content-type": "image/png"},
                     content=picture("PNG", size=(1748, 2480)))
    assert put.json()["background_mime"] == "image/png"
    assert client.delete(f"{API}/poster-templates/{made['id']}/background", headers=key).json()[
        "background_mime"] is None
    assert [t["name"] for t in client.get(f"{API}/poster-templates", headers=key).json()] == ["新名字"]
    assert client.delete(f"{API}/poster-templates/{made['id']}", headers=key).status_code == 204
    assert client.get(f"{API}/poster-templates", headers=key).json() == []


@pytest.mark.parametrize(("content", "code"), [
    (b"GIF89a not really", "invalid"),
    (picture("GIF", size=(300, 300)), "unsupported_image"),
    (b"%PDF-1.4", "invalid"),
])
def test_bad_uploads_are_refused_on_background_and_nothing_is_stored(client, shop, content, code):
    _, key, _ = shop

    refused = upload(client, key, background=content)

    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "background"
    assert refused.json()["error"]["code"] == code
    assert client.get(f"{API}/poster-templates", headers=key).json() == []


def test_a_too_large_upload_is_refused_on_background(client, shop, monkeypatch):
    _, key, _ = shop
    monkeypatch.setattr(get_settings(), "poster_max_bytes", 100_000)
    noisy = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    out = io.BytesIO()
    noisy.save(out, format="JPEG", quality=100)

    refused = upload(client, key, background=out.getvalue())

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "too_large"
    assert refused.json()["error"]["field"] == "background"
    assert client.get(f"{API}/poster-templates", headers=key).json() == []


def test_a_create_without_multipart_is_refused(client, shop):
    _, key, _ = shop

    refused = client.post(f"{API}/poster-templates", headers=key, json={"name": "x"})

    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "body"


def test_a_batch_is_a_zip_of_scannable_posters(client, db, shop):
    ws, key, code = shop
    bind_workspace(db, ws.id)
    second = make_code(db, name="门店海报", qr_content=LINK_URL)
    db.commit()

    answer = client.post(f"{API}/posters/batch", headers=key, json={"code_ids": [code.id, second.id]})

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert [decode(archive.read(n)) for n in archive.namelist()] == [[WECOM_URL], [LINK_URL]]


def test_another_workspaces_codes_and_templates_are_404(client, shop, other):
    _, key, code = shop
    their_code, their_template = other

    for path in (f"/channel-codes/{their_code.id}/qr.png", f"/channel-codes/{their_code.id}/qr.svg",
                 f"/channel-codes/{their_code.id}/poster.png", f"/poster-templates/{their_template.id}",
                 f"/poster-templates/{their_template.id}/preview.png",
                 f"/poster-templates/{their_template.id}/background"):
        assert client.get(API + path, headers=key).status_code == 404, path
    assert client.get(f"{API}/channel-codes/{code.id}/poster.png", headers=key,
                      params={"template_id": their_template.id}).status_code == 404
    assert client.post(f"{API}/posters/batch", headers=key, json={"code_ids": [code.id, their_code.id]}
                       ).status_code == 404
    assert client.delete(f"{API}/poster-templates/{their_template.id}", headers=key).status_code == 404
    assert client.put(f"{API}/poster-templates/{their_template.id}/background", headers=key,
                      files={"background": ("x.png", picture("PNG"), "image/png")}).status_code == 404
    assert client.get(f"{API}/poster-templates", headers=key).json() == []


def test_a_read_only_key_downloads_but_does_not_write(client, db, shop, make_key):
    ws, _, code = shop
    reader = bearer(make_key(ws, ["acquisition:read"]))

    assert client.get(f"{API}/channel-codes/{code.id}/poster.png", headers=reader).status_code == 200
    assert upload(client, reader).status_code == 403
