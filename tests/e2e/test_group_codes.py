"""Creating a group code in Chromium makes a WeCom join way of the chosen group (on the local WeCom
server) and shows the code with its empty chart; a code without a group is refused next to the groups."""

from __future__ import annotations

import pytest

from siyu.acquisition.group_models import CustomerGroup
from tests.e2e.conftest import own_workspace, sign_in
from tests.servers import serve
from tests.servers.wecom import AES_KEY, CORP_ID, SECRET, TOKEN, FakeWeCom

pytestmark = pytest.mark.e2e
EMAIL = "community@example.com"


def test_a_group_code_is_created_in_the_console_as_a_wecom_join_way(page, server):
    fake = FakeWeCom()
    fake.add_group("wrLiveRoom1", name="直播福利群1")
    with serve(fake.app()) as wecom_url:
        from siyu.channels import service

        with own_workspace(server.database_url, email=EMAIL, owner="Mei Lin", name="Live Tea") as (session, actor):
            account = service.create_account(
                session, kind="wecom", name="Tea WeCom", actor=actor,
                config={"corp_id": CORP_ID, "agent_id": "1000002", "api_base": wecom_url},
                secrets={"secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY})
            session.add(CustomerGroup(account_id=account.id, chat_id="wrLiveRoom1", name="直播福利群1",
                                      status="active", member_count=12, external_count=11))
        problems = sign_in(page, EMAIL)

        page.goto("/console/group-codes")
        assert page.get_by_text("No group codes yet").is_visible()
        page.get_by_role("link", name="New group code").click()
        page.get_by_label("Name", exact=True).fill("Live room code")
        page.get_by_label("State", exact=True).fill("live-0601")
        page.get_by_role("button", name="Create group code").click()  # no group chosen
        assert page.locator("#group_ids-error").is_visible()
        assert fake.join_ways == {}

        page.get_by_label("直播福利群1").check()
        page.get_by_label("Group welcome").fill("欢迎来到直播福利群")
        page.get_by_role("button", name="Create group code").click()

        page.wait_for_url("**/console/group-codes/*")
        assert page.get_by_role("heading", name="Live room code").is_visible()
        assert page.get_by_text("Nobody joined through this code yet").is_visible()
        assert page.locator("#code-groups").get_by_text("直播福利群1").is_visible()
        (way,) = fake.join_ways.values()
        assert (way["chat_id_list"], way["state"]) == (["wrLiveRoom1"], "live-0601")
        assert [t["text"]["content"] for t in fake.group_welcome_templates.values()] == ["欢迎来到直播福利群"]
        page.goto("/console/group-codes")
        assert page.get_by_role("link", name="Live room code").is_visible()
        assert problems == []
