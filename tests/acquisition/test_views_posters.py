"""Console: poster templates (empty state, upload with field errors, live preview) and a code's downloads."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from siyu.acquisition import posters
from siyu.core.tenancy import bind_workspace
from tests.acquisition.poster_support import ACTOR, LINK_URL, WECOM_URL, decode, make_code, picture
from tests.console.helpers import page_token, post, sign_in

BASE = "/console/poster-templates"


@pytest.fixture
def signed_in(client, db, make_workspace, make_user):
    ws = make_workspace(locale="en")
    user = make_user(ws, "operator")
    assert sign_in(client, user.email).status_code == 303
    bind_workspace(db, ws.id)
    return ws


def form(**changes):
    values = {"name": "门店海报", "width": "", "height": "", "qr_x": "", "qr_y": "", "qr_size": "",
              "line-0-text": "扫码加好友 {{ code.name }}", "line-0-x": "600", "line-0-y": "80",
              "line-0-size": "72", "line-0-color": "#ffffff", "line-0-align": "center",
              "line-1-text": "", "line-1-x": "", "line-1-y": "", "line-1-size": "", "line-1-color": "#000000",
              "line-1-align": "center",
              "line-2-text": "{{ source.name }}", "line-2-x": "600", "line-2-y": "1500", "line-2-size": "40",
              "line-2-color": "#ffffff", "line-2-align": "center"}
    return {**values, **changes}


def test_empty_page_says_what_to_do(client, signed_in):
    page = client.get(BASE)

    assert page.status_code == 200
    assert "No poster templates yet" in page.text
    assert "No channel codes yet" in page.text


def test_a_template_is_uploaded_previewed_and_used_for_a_code(client, db, signed_in):
    code = make_code(db)
    db.commit()
    assert client.get(BASE + "/new").status_code == 200

    saved = post(client, BASE, form(), files={"background": ("bg.jpg", picture("JPEG"), "image/jpeg")})

    assert saved.status_code == 303, saved.text
    bind_workspace(db, signed_in.id)
    [template] = posters.list_templates(db)
    assert (template.width, template.height, template.background_mime) == (1200, 1600, "image/jpeg")
    # The blank middle row is dropped; the footnote keeps its place.
    assert [line["text"] for line in template.lines] == ["扫码加好友 {{ code.name }}", "{{ source.name }}"]
    editor = client.get(saved.headers["location"])
    assert 'value="扫码加好友 {{ code.name }}"' in editor.text

    fragment = client.get(BASE + "/preview", params={**form(), "template_id": template.id,
                                                     "preview_code_id": code.id})
    assert 'id="poster-preview-image"' in fragment.text
    src = fragment.text.split('src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    image = client.get(src)
    assert image.headers["content-type"] == "image/png"
    assert decode(image.content) == [WECOM_URL]

    poster = client.get(f"/console/acquisition/codes/{code.id}/poster.png", params={"template_id": template.id})
    assert Image.open(io.BytesIO(poster.content)).size == (1200, 1600)
    assert decode(poster.content) == [WECOM_URL]


def test_a_preview_of_a_bad_layout_says_why(client, signed_in):
    fragment = client.get(BASE + "/preview", params=form(**{"line-2-size": "2"}))

    assert "Enter a text size from 8 to 1,000 pixels." in fragment.text
    assert "poster-preview-image" not in fragment.text


@pytest.mark.parametrize(("content", "message"), [
    (b"not an image", "This file is not a PNG or JPEG image that can be read."),
    (picture("GIF", size=(300, 300)), "Only PNG and JPEG images can be backgrounds"),
])
def test_bad_uploads_show_next_to_the_field_and_store_nothing(client, db, signed_in, content, message):
    refused = post(client, BASE, form(), files={"background": ("bg.gif", content, "image/gif")})

    assert refused.status_code == 422
    assert 'aria-invalid="true" aria-describedby="background-error"' in refused.text
    assert message in refused.text
    assert 'value="门店海报"' in refused.text  # what was typed stays
    bind_workspace(db, signed_in.id)
    assert posters.list_templates(db) == []


def test_a_line_error_shows_on_its_own_row(client, db, signed_in):
    refused = post(client, BASE, form(**{"line-2-color": "red"}))

    assert refused.status_code == 422
    assert 'aria-describedby="line-2-color-error"' in refused.text
    assert "Choose a colour such as #1f2328." in refused.text


def test_a_new_background_replaces_the_old_and_a_bad_one_keeps_it(client, db, signed_in):
    bind_workspace(db, signed_in.id)
    template = posters.create_template(db, values={"name": "A"}, background=picture("JPEG"), actor=ACTOR)
    db.commit()

    kept = post(client, f"{BASE}/{template.id}", form(name="A", width="1200", height="1600"),
                files={"background": ("x.gif", picture("GIF", size=(300, 300)), "image/gif")})
    assert kept.status_code == 422
    db.expire_all()
    assert template.background_mime == "image/jpeg"

    replaced = post(client, f"{BASE}/{template.id}", form(name="B", width="1200", height="1600"),
                    files={"background": ("x.png", picture("PNG"), "image/png")})
    assert replaced.status_code == 303
    db.expire_all()
    assert (template.name, template.background_mime) == ("B", "image/png")
    assert client.get(f"{BASE}/{template.id}/background").headers["content-type"] == "image/png"

    assert post(client, f"{BASE}/{template.id}/delete").status_code == 303
    assert "No poster templates yet" in client.get(BASE).text


def test_code_downloads_and_a_batch_from_the_posters_page(client, db, signed_in):
    first = make_code(db, name="快递卡")
    second = make_code(db, name="直播间", qr_content=LINK_URL)
    pending = make_code(db, name="pending", qr_content=None)
    db.commit()

    page = client.get(BASE)
    assert f'id="code-downloads-{first.id}"' in page.text
    assert f"/console/acquisition/codes/{first.id}/qr.svg" in page.text
    assert "No QR code yet" in page.text
    png = client.get(f"/console/acquisition/codes/{second.id}/qr.png", params={"size_mm": 40, "dpi": 600})
    assert Image.open(io.BytesIO(png.content)).size == (945, 945)
    assert decode(png.content) == [LINK_URL]
    assert "attachment" in client.get(f"/console/acquisition/codes/{first.id}/qr.svg").headers[
        "content-disposition"]
    missing = client.get(f"/console/acquisition/codes/{pending.id}/poster.png")
    assert missing.status_code == 422
    assert "This code has no QR code yet" in missing.text

    batch = client.post("/console/acquisition/posters/batch",
                        data={"csrf_token": page_token(client, BASE), "code_ids": [str(first.id), str(second.id)],
                              "template_id": ""})
    assert batch.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(batch.content))
    assert [decode(archive.read(n)) for n in archive.namelist()] == [[WECOM_URL], [LINK_URL]]

    none = client.post("/console/acquisition/posters/batch", data={"csrf_token": page_token(client, BASE)})
    assert none.status_code == 422
    assert "Choose from 1 to 200 codes." in none.text


def test_another_workspaces_code_and_template_are_not_found(client, db, signed_in, make_workspace):
    other = make_workspace("Other")
    bind_workspace(db, other.id)
    code = make_code(db, source_name="theirs")
    template = posters.create_template(db, values={"name": "theirs"}, actor=ACTOR)
    db.commit()

    assert client.get(f"/console/acquisition/codes/{code.id}/qr.png").status_code == 404
    assert client.get(f"{BASE}/{template.id}").status_code == 404
    assert client.get(f"{BASE}/preview.png", params={"template_id": template.id}).status_code == 404


def test_the_pages_speak_chinese(client, db, make_workspace, make_user):
    ws = make_workspace(locale="zh_Hans")
    user = make_user(ws, "operator")
    sign_in(client, user.email)
    bind_workspace(db, ws.id)
    make_code(db)
    db.commit()

    assert "海报" in client.get(BASE).text
    gif = picture("GIF", size=(300, 300))
    refused = post(client, BASE, form(), files={"background": ("x.gif", gif, "image/gif")})
    assert "只有 PNG 和 JPEG 图片可以作为背景" in refused.text
