"""Posters in Chromium: upload a template with a JPEG background and a Chinese title, watch the preview,
download a code's poster and the batch zip, and scan them back to the codes' QR contents."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from tests.acquisition.poster_support import LINK_URL, WECOM_URL, decode, make_code, picture
from tests.e2e.conftest import own_workspace, sign_in

pytestmark = pytest.mark.e2e


def test_upload_a_template_and_download_a_scannable_poster(page, server, tmp_path):
    from playwright.sync_api import expect

    with own_workspace(server.database_url, email="posters@example.com", owner="Poster Owner",
                       name="Poster Shop") as (session, _actor):
        parcel = make_code(session, name="快递卡 双十一")
        live = make_code(session, name="直播间", qr_content=LINK_URL, source_name="直播 Live")
        parcel_id, live_id = parcel.id, live.id
    problems = sign_in(page, "posters@example.com")
    expect(page).to_have_url(re.compile(r"/console$"))

    page.goto("/console/poster-templates")
    expect(page.locator("#poster-template-list")).to_contain_text("No poster templates yet")
    page.get_by_role("link", name="New poster template").click()
    expect(page.locator("#poster-preview-image")).to_be_visible()  # the built-in sample, drawn live

    background = tmp_path / "背景.jpg"
    background.write_bytes(picture("JPEG", size=(1200, 1600)))
    page.locator("#name").fill("双十一海报")
    page.locator("#background").set_input_files(str(background))
    page.locator("#line-0-text").fill("扫码领券 {{ code.name }}")
    page.locator("#line-0-x").fill("600")
    page.locator("#line-0-y").fill("90")
    page.locator("#line-0-size").fill("64")
    page.locator("#line-1-x").fill("600")
    page.locator("#line-1-y").fill("1480")
    page.locator("#line-1-size").fill("48")
    page.get_by_role("button", name="Save poster template").click()

    expect(page).to_have_url(re.compile(r"/console/poster-templates/\d+$"))
    expect(page.locator(".flash")).to_contain_text("Poster template saved.")
    preview = page.locator("#poster-preview-image")
    expect(preview).to_be_visible()
    old_src = preview.get_attribute("src")
    page.locator("#qr_size").fill("420")
    expect(preview).not_to_have_attribute("src", old_src)  # the preview follows the fields
    page.locator("#qr_x").fill("390")
    page.locator("#qr_y").fill("600")
    page.get_by_role("button", name="Save poster template").click()
    expect(page.locator(".flash")).to_contain_text("Poster template saved.")

    page.goto("/console/poster-templates")
    row = page.locator(f"#code-downloads-{parcel_id}")
    with page.expect_download() as poster_download:
        row.get_by_role("button", name="Poster (PNG)").click()
    poster = poster_download.value
    assert poster.suggested_filename.endswith("-poster.png")
    assert decode(Path(poster.path()).read_bytes()) == [WECOM_URL]

    page.locator(f"#batch-code-{parcel_id}").check()
    page.locator(f"#batch-code-{live_id}").check()
    with page.expect_download() as zip_download:
        page.get_by_role("button", name="Download posters (zip)").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(zip_download.value.path()).read_bytes()))
    assert sorted(decode(archive.read(name)) for name in archive.namelist()) == sorted([[WECOM_URL], [LINK_URL]])
    assert problems == []
