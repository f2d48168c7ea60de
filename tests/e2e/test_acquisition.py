"""The issue's acquisition scenario in Chromium: add a source, make a WeCom channel code that rotates across
two staff members on the local WeCom test server, download its poster and read the QR back, then send an
add for its state through the real /hooks/wecom route and see it on the code's page (its figures, its
chart and its arrivals) and in the source comparison."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.db import make_engine
from siyu.core.tenancy import bind_workspace
from tests.e2e.conftest import own_workspace, sign_in
from tests.servers import serve
from tests.servers.wecom import AES_KEY, CORP_ID, SECRET, TOKEN, FakeWeCom, add_external_contact_xml, callback_body

pytestmark = pytest.mark.e2e
EMAIL = "grower@example.com"


def _seed(url: str, wecom_url: str) -> int:
    """A workspace of its own with a WeCom account on the local server and two staff members; the account id."""
    from siyu.channels import service as channels
    from siyu.contacts import staff

    with own_workspace(url, email=EMAIL, owner="Gao Yan", name="Growth Tea") as (session, actor):
        account = channels.create_account(
            session, kind="wecom", name="Shop WeCom", actor=actor,
            config={"corp_id": CORP_ID, "api_base": wecom_url, "agent_id": "1000002"},
            secrets={"secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY})
        for name, userid in (("Zhang San", "zhangsan"), ("Li Si", "lisi")):
            staff.create_staff(session, name=name, wecom_userid=userid, actor=actor)
        session.flush()
        return account.id


def _code(url: str, name: str) -> tuple[int, str, int]:
    """The code's id, state and workspace, read from the server's database."""
    from siyu.acquisition.models import ChannelCode

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            bind_workspace(session, None)
            code = session.execute(select(ChannelCode).where(ChannelCode.name == name)).scalar_one()
            return code.id, code.state, code.workspace_id
    finally:
        engine.dispose()


def test_make_a_rotating_wecom_code_and_see_an_add_arrive(page, server):
    from playwright.sync_api import expect

    fake = FakeWeCom()
    with serve(fake.app()) as wecom_url:
        account_id = _seed(server.database_url, wecom_url)
        problems = sign_in(page, EMAIL)

        page.goto("/console/contacts")
        page.locator(".sidebar").get_by_role("link", name="Acquisition").click()
        expect(page.locator("#code-list")).to_contain_text("No channel codes yet")
        page.get_by_role("link", name="Add your first source").click()
        page.get_by_label("Name").fill("Parcel cards")
        page.get_by_label("Type").select_option(label="Parcel card")
        page.get_by_label("Cost model").select_option(label="Per unit (cards, calls, messages)")
        page.get_by_label("Cost of one unit").fill("0.05")
        page.get_by_label("Units a day").fill("1000")
        page.get_by_role("button", name="Save source").click()
        expect(page.locator("#source-list")).to_contain_text("Parcel cards")
        expect(page.locator("#source-list")).to_contain_text("0.05")

        page.locator("#source-list").get_by_role("link", name="New code").click()
        page.get_by_label("Code name").fill("Parcel card June")
        expect(page.get_by_label("Source")).to_have_value(re.compile(r"\d+"))
        page.locator("#c-account-wecom").select_option(label="Shop WeCom")
        page.get_by_label("Welcome message").fill("Thanks for the order! Scan again for the June tea list.")
        for name in ("Zhang San", "Li Si"):
            page.locator("#members").get_by_label(name, exact=True).check()
        page.get_by_label("Rotation").select_option(label="Round robin")
        page.get_by_role("button", name="Save code").click()

        expect(page.locator("h1")).to_contain_text("Parcel card June")
        expect(page.locator("#code-members")).to_contain_text("Zhang San")
        expect(page.locator("#code-members")).to_contain_text("Li Si")
        expect(page.locator("#over-time")).to_contain_text("Nobody came through this code")
        code_id, state, workspace_id = _code(server.database_url, "Parcel card June")
        [(config_id, way)] = fake.contact_ways.items()
        assert (way["state"], sorted(way["user"])) == (state, ["lisi", "zhangsan"])

        # The printed poster carries the QR WeCom made for the code's contact way.
        with page.expect_download() as poster:
            page.locator(f"#code-downloads-{code_id}").get_by_role("button", name="Poster (PNG)").click()
        assert _decode(Path(poster.value.path()).read_bytes()) == [fake.qr_target(config_id)]

        # An add for the code's state, signed and encrypted as WeCom sends it, through the real route.
        query, body = callback_body(add_external_contact_xml("wmE2E01", userid="lisi", state=state,
                                                             welcome_code="WC-E2E"))
        answer = httpx.post(f"{server.base_url.replace('localhost', '127.0.0.1')}/hooks/wecom/{account_id}",
                            params=query, content=body, timeout=20)
        assert answer.text == "success"

        page.reload()
        expect(page.locator("#stat-adds")).to_have_text("1")
        expect(page.locator("#stat-period-adds")).to_have_text("1")
        chart = json.loads(html.unescape(page.locator("#code-chart").get_attribute("data-chart") or "{}"))
        assert [s["counts"][-1] for s in chart["series"]] == [1, 1, 0]
        expect(page.locator("#code-chart canvas")).to_have_count(1)
        expect(page.locator("#arrivals")).to_contain_text("Li Si")
        expect(page.locator("#arrivals")).to_contain_text("Add")
        li_si = _staff_id(server.database_url, workspace_id, "Li Si")
        expect(page.locator(f"#code-member-{li_si}")).to_contain_text("1")
        # The code's own welcome went out with WeCom's welcome code.
        assert [w["welcome_code"] for w in fake.welcomes] == ["WC-E2E"]

        page.goto("/console/channel-codes")
        expect(page.locator(f"#code-{code_id} [data-adds-today]")).to_have_text("1")

        # The new contact counts as acquired by the source in the comparison.
        page.locator(".sidebar").get_by_role("link", name="Source comparison").click()
        expect(page.locator("#comparison tbody tr").filter(has_text="Parcel cards").locator("td").nth(2)) \
            .to_have_text("1")
        assert problems == []


def _decode(png: bytes) -> list[str]:
    import io

    import zxingcpp
    from PIL import Image

    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def _staff_id(url: str, workspace_id: int, name: str) -> int:
    from siyu.contacts.models import StaffMember

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            bind_workspace(session, workspace_id)
            return int(session.execute(select(StaffMember.id).where(StaffMember.name == name)).scalar_one())
    finally:
        engine.dispose()
