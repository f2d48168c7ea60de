"""The channel accounts pages: empty state, the form rendered from the adapter's fields, secrets as
password inputs that show "set" and keep their value when left empty, field errors, pause/resume,
delete, the connection test, and who may do what."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from siyu.channels import service
from siyu.channels.base import ConfigField, PlatformRules
from siyu.channels.models import ChannelAccount
from siyu.core.audit import Actor
from siyu.core.tenancy import bind_workspace
from tests.console.helpers import post, sign_in
from tests.servers import serve
from tests.servers.webhook_receiver import Receiver

SECRET = "s3cret-s3cret-s3cret"
ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")


@pytest.fixture
def shop(client, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, "operator", email="op@example.com")
    assert sign_in(client, "op@example.com").status_code == 303
    return ws


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Receiver]]:
    receiver = Receiver(secret=SECRET)
    with serve(receiver.app()) as base:
        yield f"{base}/hook", receiver


def _account(db, ws, url="https://example.com/hook") -> ChannelAccount:
    bind_workspace(db, ws.id)
    account = service.create_account(db, kind="webhook", name="Shop app", config={"url": url},
                                     secrets={"secret": SECRET}, actor=ACTOR)
    db.commit()
    bind_workspace(db, None)
    return account


def _stored(db, account_id: int) -> ChannelAccount:
    db.expire_all()
    return db.get(ChannelAccount, account_id)


def test_the_empty_list_says_what_to_connect_first_and_offers_every_kind(client, shop):
    page = client.get("/console/channels")

    assert page.status_code == 200
    assert "No channel accounts yet" in page.text
    assert "Connect your WeChat Official Account or WeCom app first" in page.text
    assert 'href="/console/channels/new?kind=webhook"' in page.text
    assert 'href="/console/channels/new?kind=wecom_archive"' in page.text
    assert 'href="/console/channels"' in client.get("/console").text  # in the sidebar


def test_the_form_is_rendered_from_the_fields_and_creates_an_account(client, db, shop):
    form = client.get("/console/channels/new?kind=webhook")
    created = post(client, "/console/channels", {"kind": "webhook", "name": "Shop app",
                                                 "config.url": "https://example.com/hook", "secrets.secret": SECRET})

    assert 'name="config.url"' in form.text
    assert 'name="secrets.secret" type="password"' in form.text
    assert created.status_code == 303, created.text
    account_id = int(created.headers["location"].rsplit("/", 1)[1])
    detail = client.get(created.headers["location"])
    assert 'class="badge badge-ok secret-set"' in detail.text
    assert SECRET not in detail.text
    assert _stored(db, account_id).secrets == {"secret": SECRET}


def test_a_bad_setting_is_shown_on_its_field_and_nothing_is_saved(client, db, shop):
    refused = post(client, "/console/channels", {"kind": "webhook", "name": "Shop app",
                                                 "config.url": "ftp://nope", "secrets.secret": SECRET})

    assert refused.status_code == 422
    assert 'id="config.url-error"' in refused.text
    assert "Enter an http:// or https:// URL." in refused.text
    assert 'value="ftp://nope"' in refused.text
    assert f'type="password" autocomplete="new-password" value="{SECRET}"' in refused.text  # not saved yet: kept
    assert db.execute(select(func.count()).select_from(ChannelAccount)).scalar_one() == 0


def test_an_empty_secret_keeps_the_saved_one_and_pause_resume_delete_work(client, db, shop):
    account = _account(db, shop)

    saved = post(client, f"/console/channels/{account.id}", {"name": "Renamed", "config.url": "https://b.example.com/h",
                                                              "secrets.secret": ""})
    paused = post(client, f"/console/channels/{account.id}/status")
    paused_state = _stored(db, account.id).status
    post(client, f"/console/channels/{account.id}/status")
    resumed_state = _stored(db, account.id).status

    assert saved.status_code == 303
    stored = _stored(db, account.id)
    assert (stored.name, stored.config, stored.secrets) == ("Renamed", {"url": "https://b.example.com/h"},
                                                            {"secret": SECRET})
    assert paused.status_code == 303
    assert (paused_state, resumed_state) == ("paused", "active")
    page = client.get(f"/console/channels/{account.id}")
    assert "data-confirm=" in page.text
    assert post(client, f"/console/channels/{account.id}/delete").status_code == 303
    assert _stored(db, account.id) is None


def test_test_connection_shows_the_answer_and_the_health(client, db, shop, endpoint):
    url, receiver = endpoint
    account = _account(db, shop, url=url)

    worked = post(client, f"/console/channels/{account.id}/test", headers={"HX-Request": "true"})
    receiver.fail_with.append(500)
    failed = post(client, f"/console/channels/{account.id}/test")

    assert worked.status_code == 200
    assert "Connection works: HTTP 200" in worked.text
    assert 'id="account-health"' in worked.text
    assert "<html" not in worked.text
    assert "Connection failed: 500: the endpoint answered 500" in failed.text
    assert "failing" in failed.text
    listed = client.get("/console/channels")
    assert "the endpoint answered 500" in listed.text


def test_analysts_see_accounts_read_only_and_staff_not_at_all(client, db, make_workspace, make_user):
    ws = make_workspace("Acme Tea", locale="en")
    make_user(ws, "analyst", email="analyst@example.com")
    make_user(ws, "staff", email="staff@example.com")
    account = _account(db, ws)

    sign_in(client, "analyst@example.com")
    page = client.get(f"/console/channels/{account.id}")
    refused = post(client, f"/console/channels/{account.id}/test")
    sign_in(client, "staff@example.com")
    hidden = client.get("/console/channels")

    assert page.status_code == 200
    assert "test-connection" not in page.text
    assert "disabled" in page.text
    assert refused.status_code == 403
    assert hidden.status_code == 403


def test_the_pages_speak_chinese(client, make_workspace, make_user):
    ws = make_workspace("茶店", locale="zh_Hans")
    make_user(ws, "owner", email="owner@example.com")
    sign_in(client, "owner@example.com")

    assert "还没有渠道账号" in client.get("/console/channels").text


def test_an_archive_account_shows_its_position_and_pulls_now(client, db, shop):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from siyu.channels import accounts, chat_archive
    from siyu.core.models import Job

    pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    bind_workspace(db, shop.id)
    account = accounts.create(db, kind="wecom_archive", name="Archive", actor=ACTOR,
                              config={"corp_id": "ww1", "publickey_ver": "1"},
                              secrets={"secret": "s", "private_key": pem})
    db.commit()
    bind_workspace(db, None)

    page = client.get(f"/console/channels/{account.id}")
    pulled = post(client, f"/console/channels/{account.id}/pull")

    assert "Archive position" in page.text
    assert "seq 0" in page.text
    assert "BEGIN PRIVATE KEY" not in page.text
    assert pulled.status_code == 303
    db.expire_all()
    keys = db.execute(select(Job.idempotency_key).where(Job.kind == chat_archive.PULL)).scalars().all()
    assert any(":now:" in k for k in keys)


class FakeOA:
    """A kind with a callback and the Token / EncodingAESKey pair the platform's admin asks for."""

    kind = "fake_oa"
    label = "Fake OA"
    rules = PlatformRules(identity_type="wechat_openid", consent_channel="wechat_oa")
    fields = (ConfigField("app_id", "AppID"), ConfigField("token", "Token", secret=True),
              ConfigField("encoding_aes_key", "EncodingAESKey", secret=True))
    accepts_idempotency_key = False

    def validate_config(self, config, secrets) -> None:
        return None

    async def check_connection(self, account) -> str:
        return "ok"

    async def send(self, account, address, content, *, idempotency_key):
        raise AssertionError("not sent in this test")


@pytest.fixture
def fake_oa(app):
    from fastapi import APIRouter

    from siyu.channels import base

    base.register_adapter(FakeOA())
    router = APIRouter()

    @router.post("/hooks/fake-oa/{account_id}")
    def hook(account_id: int) -> dict[str, str]:
        return {}

    app.include_router(router)
    yield
    base._ADAPTERS.pop("fake_oa", None)


def test_a_kind_with_callbacks_suggests_its_token_and_shows_the_callback_url(client, db, shop, fake_oa):
    form = client.get("/console/channels/new?kind=fake_oa")
    token = re.search(r'name="secrets.token" type="password"[^>]*value="([A-Za-z0-9]{32})"', form.text)
    aes_key = re.search(r'name="secrets.encoding_aes_key" type="password"[^>]*value="([A-Za-z0-9]{43})"', form.text)
    assert token is not None
    assert aes_key is not None
    assert f'<code class="suggested">{token.group(1)}</code>' in form.text

    created = post(client, "/console/channels", {"kind": "fake_oa", "name": "Brand OA", "config.app_id": "wx1",
                                                 "secrets.token": token.group(1),
                                                 "secrets.encoding_aes_key": aes_key.group(1)})
    detail = client.get(created.headers["location"])

    account_id = created.headers["location"].rsplit("/", 1)[1]
    assert f"https://testserver/hooks/fake-oa/{account_id}" in detail.text
    assert "enter the same Token, EncodingAESKey you saved here" in detail.text
    assert token.group(1) not in detail.text
