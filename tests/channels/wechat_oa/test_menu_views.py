"""The console's custom-menu editor of an Official Account, against the local fake: the current menu read
into the grid, a refused field shown on its cell (even when earlier rows are empty), publish and remove,
who may, and accounts of another kind."""

from __future__ import annotations

import pytest

from siyu.channels import service
from siyu.channels.views_menu import form_field, menu_of, values_of
from siyu.core.tenancy import bind_workspace
from tests.channels.wechat_oa.conftest import ACTOR, _fresh_tokens, fake  # noqa: F401
from tests.console.helpers import post, sign_in
from tests.servers import wechat_oa as fake_oa

MENU = {"button": [
    {"name": "今日歌曲", "type": "click", "key": "V1001_TODAY_MUSIC"},
    {"name": "菜单", "sub_button": [
        {"name": "搜索", "type": "view", "url": "http://www.soso.com/"},
        {"name": "小程序", "type": "miniprogram", "url": "http://mp.weixin.qq.com", "appid": "wx286b93c14bbf93aa",
         "pagepath": "pages/lunar/index"},
        {"name": "赞一下我们", "type": "click", "key": "V1001_GOOD"}]},
]}


@pytest.fixture
def shop(client, db, make_workspace, make_user, fake):  # noqa: F811
    running, base_url = fake
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, "operator", email="op@example.com")
    make_user(ws, "analyst", email="an@example.com")
    bind_workspace(db, ws.id)
    oa = service.create_account(
        db, kind="wechat_oa", name="Shop OA", config={"app_id": fake_oa.APP_ID, "mode": "safe", "api_base": base_url},
        secrets={"app_secret": fake_oa.APP_SECRET, "token": fake_oa.TOKEN, "encoding_aes_key": fake_oa.AES_KEY},
        actor=ACTOR)
    hook = service.create_account(db, kind="webhook", name="Hook", config={"url": "https://example.com/h"},
                                  secrets={"secret": "s" * 20}, actor=ACTOR)
    db.commit()
    bind_workspace(db, None)
    return running, oa, hook


def test_the_editor_round_trips_a_menu_and_maps_rule_fields_back_to_its_cells():
    values = values_of(MENU)
    assert values["b1.s1.value"] == "http://mp.weixin.qq.com"
    assert values["b1.s1.pagepath"] == "pages/lunar/index"
    assert menu_of(values)[0] == MENU
    # Row b0 left empty: the platform's button.0 is the form's b1.
    shifted = {k.replace("b1", "b2").replace("b0", "b1"): v for k, v in values.items()}
    menu, origins = menu_of(shifted)
    assert menu == MENU
    assert form_field("button.1.sub_button.0.url", origins) == "b2.s0.value"
    assert form_field("button.0.name", origins) == "b1.name"
    assert form_field("button.1.sub_button.1.appid", origins) == "b2.s1.appid"
    assert form_field("button", origins) == "_form"


def test_an_operator_reads_edits_publishes_and_removes_the_menu(client, shop):
    running, oa, _hook = shop
    running.menu = MENU
    assert sign_in(client, "op@example.com").status_code == 303
    account_page = client.get(f"/console/channels/{oa.id}")
    assert f'href="/console/channels/{oa.id}/menu"' in account_page.text
    page = client.get(f"/console/channels/{oa.id}/menu")
    assert page.status_code == 200
    assert 'value="V1001_TODAY_MUSIC"' in page.text
    assert 'value="pages/lunar/index"' in page.text

    form = {**values_of(MENU), "b2.name": "领券", "b2.type": "view", "b2.value": "https://shop.example.com/coupon"}
    published = post(client, f"/console/channels/{oa.id}/menu", form)
    assert (published.status_code, published.headers["location"]) == (303, f"/console/channels/{oa.id}/menu")
    assert running.menu["button"][2] == {"name": "领券", "type": "view", "url": "https://shop.example.com/coupon"}

    bad_url = post(client, f"/console/channels/{oa.id}/menu", {**form, "b1.s0.value": "ftp://x"})
    assert bad_url.status_code == 422
    assert 'id="b1.s0.value-error"' in bad_url.text
    assert running.menu["button"][2]["name"] == "领券"  # nothing published
    empty = post(client, f"/console/channels/{oa.id}/menu", {})
    assert empty.status_code == 422
    assert "one to three buttons" in empty.text

    removed = post(client, f"/console/channels/{oa.id}/menu/delete")
    assert removed.status_code == 303
    assert running.menu is None
    assert "Remove menu" not in client.get(f"/console/channels/{oa.id}/menu").text


def test_analysts_see_the_menu_read_only_and_other_kinds_have_none(client, shop):
    running, oa, hook = shop
    running.menu = MENU
    assert sign_in(client, "an@example.com").status_code == 303
    page = client.get(f"/console/channels/{oa.id}/menu")
    assert page.status_code == 200
    assert "Publish to WeChat" not in page.text
    assert " disabled" in page.text
    assert post(client, f"/console/channels/{oa.id}/menu", values_of(MENU)).status_code == 403
    assert client.get(f"/console/channels/{hook.id}/menu").status_code == 404


def test_when_wechat_fails_the_editor_says_so_and_publishing_shows_the_platforms_words(client, shop):
    running, oa, _hook = shop
    assert sign_in(client, "op@example.com").status_code == 303
    running.misbehave("/cgi-bin/menu/get", "frequency")
    page = client.get(f"/console/channels/{oa.id}/menu")
    assert page.status_code == 200
    assert 'id="menu-read-error"' in page.text
    assert "45009" in page.text
    running.misbehave("/cgi-bin/menu/create", "busy")
    refused = post(client, f"/console/channels/{oa.id}/menu", values_of(MENU))
    assert refused.status_code == 502
    assert 'id="menu-error"' in refused.text
    assert running.menu is None
