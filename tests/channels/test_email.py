"""Email through a local SMTP server: headers, DKIM that verifies, unsubscribe (page and one-click),
refusals, and the mail service's signed bounce / complaint events."""

from __future__ import annotations

import base64
import email
import json
import re
import socket
from email.message import Message as MailMessage
from email.policy import default
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from siyu.channels import email as email_channel
from siyu.channels import service, webhook
from siyu.contacts import service as contacts
from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.errors import Invalid
from siyu.core.models import Event, Job
from tests.servers.smtp import self_signed, smtp_server

# aiosmtpd warns, per connection, that its AUTH runs without TLS: fine on the loopback.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")
EVENTS_SECRET = "events-secret-0123456789"
CONTENT = {"type": "email", "subject": "双十一 · Early access", "text": "Hello 小明,\nour sale starts now.",
           "html": "<p>Hello 小明, our sale starts <b>now</b>.</p>"}


@pytest.fixture(scope="module")
def dkim_key() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture
def smtp():
    with smtp_server() as running:
        yield running


def make_account(db, port: int, dkim_pem: str = "", password: str = "mail-pass"):
    return service.create_account(
        db, kind="email", name="Newsletter", actor=ACTOR,
        config={"host": "127.0.0.1", "port": str(port), "security": "none", "username": "mailer",
                "from_address": "news@shop.example", "from_name": "Shop 商店", "public_url": "https://siyu.example.com",
                "dkim_selector": "s1" if dkim_pem else "", "dkim_domain": "shop.example"},
        secrets={"password": password, "dkim_private_key": dkim_pem, "webhook_secret": EVENTS_SECRET},
    )


def subscriber(db, address: str = "xiaoming@example.com"):
    contact, _ = contacts.upsert_contact(db, identities=[{"type": "email", "value": address}], actor=None)
    contacts.set_consent(db, contact, channel="email", status="granted", source="signup form", actor=ACTOR)
    return contact


def send(db, account, contact, key: str = "news:1", run_jobs=None):
    message = service.queue_send(db, account=account, contact_id=contact.id, content=CONTENT, origin="test",
                                 idempotency_key=key, purpose="marketing")
    run_jobs()
    return service.get_message(db, message.id)


def parsed(raw: bytes) -> MailMessage:
    return email.message_from_bytes(raw, policy=default)


def token_of(mail: MailMessage) -> str:
    match = re.search(r"<https://siyu\.example\.com/u/([^>]+)>", str(mail["List-Unsubscribe"]))
    assert match is not None
    return match.group(1)


def test_a_message_arrives_with_its_headers_parts_and_a_dkim_signature_that_verifies(
        db, ws, smtp, dkim_key, run_jobs):
    fake, port = smtp
    pem, dns_record = dkim_key
    account = make_account(db, port, pem)
    message = send(db, account, subscriber(db), run_jobs=run_jobs)

    (got,) = fake.received
    assert (got.sender, got.recipients) == ("news@shop.example", ["xiaoming@example.com"])
    mail = parsed(got.data)
    assert mail["Subject"] == "双十一 · Early access"
    assert mail["From"].addresses[0].display_name == "Shop 商店"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "<mailto:news@shop.example?subject=unsubscribe>" in mail["List-Unsubscribe"]
    assert (message.status, message.external_id) == ("sent", mail["Message-ID"])
    assert mail["Message-ID"] == email_channel.message_id(f"msg:{message.id}", "shop.example")
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert "our sale starts now." in text.get_content()
    assert "<b>now</b>" in html.get_content()
    assert f"/u/{token_of(mail)}" in text.get_content()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return dns_record if name == b"s1._domainkey.shop.example." else b""

    assert dkim.verify(got.data, dnsfunc=dns)
    tampered = got.data.replace(b"our sale starts", b"our sale stopped")
    assert tampered != got.data
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_the_unsubscribe_page_asks_first_then_withdraws_email_consent(db, ws, smtp, run_jobs, client):
    fake, port = smtp
    contact = subscriber(db)
    send(db, make_account(db, port), contact, run_jobs=run_jobs)
    token = token_of(parsed(fake.received[0].data))

    page = client.get(f"/u/{token}", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200
    assert "xiaoming@example.com" in page.text
    assert f'action="/u/{token}?lang=zh_Hans"' in page.text
    db.expire_all()
    assert contacts.may_contact(db, contact, "email")  # a mail scanner following the link changes nothing

    done = client.post(f"/u/{token}?lang=en", data={})
    assert done.status_code == 200
    assert "You are unsubscribed" in done.text
    db.expire_all()
    assert contacts.contact_permission(db, contact, "email").reason == "withdrawn"
    again = service.queue_send(db, account=service.list_accounts(db, kind="email")[0], contact_id=contact.id,
                               content=CONTENT, origin="test", idempotency_key="news:2", purpose="marketing")
    assert (again.status, again.error) == ("skipped", "consent:withdrawn")


def test_a_one_click_post_withdraws_without_a_page_and_forged_tokens_do_nothing(db, ws, smtp, run_jobs, client):
    fake, port = smtp
    contact = subscriber(db)
    send(db, make_account(db, port), contact, run_jobs=run_jobs)
    token = token_of(parsed(fake.received[0].data))
    payload, _, mac = token.partition(".")
    other = base64.urlsafe_b64encode(json.dumps([ws.id, 1, "someone@example.com"]).encode()).decode().rstrip("=")

    assert client.post(f"/u/{other}.{mac}", content=b"List-Unsubscribe=One-Click").status_code == 404
    assert client.get(f"/u/{payload}.AAAA").status_code == 404
    db.expire_all()
    assert contacts.may_contact(db, contact, "email")

    answer = client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (answer.status_code, answer.text) == (200, "unsubscribed")
    db.expire_all()
    assert not contacts.may_contact(db, contact, "email")
    (event,) = db.execute(select(Event.properties).where(Event.type == "consent.withdrawn")).scalars()
    assert event["source"] == "email one-click unsubscribe"


def test_an_open_pixel_marks_the_message_opened_and_a_forged_one_changes_nothing(db, ws, smtp, run_jobs, client):
    fake, port = smtp
    account = make_account(db, port)
    account.config = {**account.config, "track_opens": "on", "unsubscribe_label": "取消订阅"}
    message = send(db, account, subscriber(db), run_jobs=run_jobs)
    html = parsed(fake.received[0].data).get_body(("html",)).get_content()
    assert "取消订阅</a>" in html
    match = re.search(r'src="https://siyu\.example\.com(/o/[^"]+\.gif)"', html)
    assert match is not None

    forged = client.get(match.group(1).replace("/o/", "/o/x"))
    assert (forged.status_code, forged.headers["content-type"]) == (200, "image/gif")
    db.expire_all()
    assert service.get_message(db, message.id).status == "sent"
    assert client.get(match.group(1)).content == forged.content
    db.expire_all()
    assert service.get_message(db, message.id).status == "opened"


def test_smtp_refusals_fail_or_retry_by_their_code(db, ws, smtp, run_jobs, frozen_now):
    fake, port = smtp
    account = make_account(db, port)
    fake.refuse = {"gone@example.com": "550 5.1.1 No such user", "busy@example.com": "451 4.7.1 Try again later"}
    gone = send(db, account, subscriber(db, "gone@example.com"), key="a", run_jobs=run_jobs)
    assert (gone.status, gone.error) == ("failed", "550: 5.1.1 No such user")
    busy = send(db, account, subscriber(db, "busy@example.com"), key="b", run_jobs=run_jobs)
    assert busy.status == "queued"
    frozen_now.advance(seconds=120)
    run_jobs()
    assert service.get_message(db, busy.id).status == "sent"
    assert [r.recipients for r in fake.received] == [["busy@example.com"]]


def test_a_batch_of_messages_shares_one_connection_and_a_refusal_does_not_break_it(db, ws, smtp, run_jobs):
    fake, port = smtp
    account = make_account(db, port)
    fake.refuse = {"gone@example.com": "550 5.1.1 No such user"}
    people = [subscriber(db, f"p{i}@example.com") for i in range(2)] + [subscriber(db, "gone@example.com")]
    people.append(subscriber(db, "p3@example.com"))
    queued = [service.queue_send(db, account=account, contact_id=p.id, content=CONTENT, origin="test",
                                 idempotency_key=f"batch:{i}", purpose="marketing") for i, p in enumerate(people)]
    run_jobs()
    assert [service.get_message(db, m.id).status for m in queued] == ["sent", "sent", "failed", "sent"]
    assert [r.recipients for r in fake.received] == [["p0@example.com"], ["p1@example.com"], ["p3@example.com"]]
    assert len({r.connection for r in fake.received}) == 1


def test_a_kept_connection_the_server_dropped_is_replaced_before_the_send(db, ws, smtp):
    fake, port = smtp
    account = make_account(db, port)
    raw = email_channel.build_message(account, "a@example.com", CONTENT, "k1")
    kept: dict = {}
    email_channel._send_now(account, "a@example.com", raw, kept)
    kept[account.id].sock.shutdown(socket.SHUT_RDWR)  # what an idle timeout on the server leaves behind
    email_channel._send_now(account, "a@example.com", raw, kept)
    assert len(fake.received) == 2
    assert fake.received[0].connection != fake.received[1].connection
    email_channel._close(kept.pop(account.id))


def test_a_send_finding_the_batch_already_kept_a_connection_closes_its_own(db, ws, smtp, monkeypatch):
    _, port = smtp
    account = make_account(db, port)
    raw = email_channel.build_message(account, "a@example.com", CONTENT, "k1")
    kept: dict = {}
    other = email_channel._open(account)
    mine = email_channel._open(account)
    real_sendmail = mine.sendmail

    def sendmail(*args: Any) -> Any:
        kept[account.id] = other  # a send of the same batch finished first and put its connection back
        return real_sendmail(*args)

    monkeypatch.setattr(mine, "sendmail", sendmail)
    monkeypatch.setattr(email_channel, "_open", lambda _account: mine)
    email_channel._send_now(account, "a@example.com", raw, kept)
    assert kept == {account.id: other}
    assert mine.sock is None  # closed, not leaked
    email_channel._close(other)


def test_starttls_is_required_and_the_servers_certificate_checked(db, ws, run_jobs, tmp_path):
    context, ca = self_signed(tmp_path)
    with smtp_server(starttls=context) as (fake, port):
        trusting = make_account(db, port)
        trusting.config = {**trusting.config, "security": "starttls", "tls_ca": ca}
        sent = send(db, trusting, subscriber(db), key="tls:1", run_jobs=run_jobs)
        assert sent.status == "sent"
        assert [r.recipients for r in fake.received] == [["xiaoming@example.com"]]

        doubting = service.create_account(db, kind="email", name="No CA", actor=ACTOR,
                                          config={**trusting.config, "tls_ca": ""}, secrets={"password": "mail-pass"})
        refused = send(db, doubting, subscriber(db, "b@example.com"), key="tls:2", run_jobs=run_jobs)
    assert refused.status == "queued"  # retried: the certificate is checked against the system's CAs
    assert "CERTIFICATE_VERIFY_FAILED" in db.get(Job, refused.job_id).last_error
    assert len(fake.received) == 1


def test_a_header_injection_fails_the_message_without_sending(db, ws, smtp, run_jobs):
    fake, port = smtp
    account = make_account(db, port)
    message = service.queue_send(db, account=account, contact_id=subscriber(db).id, origin="test",
                                 content={**CONTENT, "subject": "Hi\r\nBcc: everyone@example.com"},
                                 idempotency_key="inject", purpose="marketing")
    run_jobs()
    failed = service.get_message(db, message.id)
    assert (failed.status, failed.error.split(":")[0]) == ("failed", "bad_message")
    assert fake.received == []


def test_a_wrong_password_fails_the_message_and_test_connection_says_why(db, ws, smtp, run_jobs):
    _, port = smtp
    account = make_account(db, port, password="wrong")
    failed = send(db, account, subscriber(db), run_jobs=run_jobs)
    assert failed.status == "failed"
    assert "username or password" in failed.error
    account.secrets = {**account.secrets, "password": "mail-pass"}
    assert "NOOP with 250" in service.run_async(email_channel.ADAPTER.check_connection(account))


def post_events(client, account_id: int, items, *, secret: str = EVENTS_SECRET, age: int = 0):
    body = json.dumps(items).encode()
    timestamp = str(int(clock.now().timestamp()) - age)
    return client.post(f"/hooks/email/{account_id}/events", content=body,
                       headers={"X-Siyu-Timestamp": timestamp, "Content-Type": "application/json",
                                "X-Siyu-Signature": webhook.sign(secret, timestamp, body)})


def test_bounces_and_complaints_update_messages_and_withdraw_consent(db, ws, smtp, run_jobs, client):
    _, port = smtp
    account = make_account(db, port)
    hard, soft, angry = (subscriber(db, f"{n}@example.com") for n in ("hard", "soft", "angry"))
    m_hard, m_soft, m_angry = (send(db, account, c, key=f"k{c.id}", run_jobs=run_jobs) for c in (hard, soft, angry))

    answer = post_events(client, account.id, [
        {"type": "bounce", "message_id": m_hard.external_id, "email": "hard@example.com", "reason": "5.1.1 unknown"},
        {"type": "bounce", "bounce_type": "soft", "message_id": m_soft.external_id.strip("<>"),
         "reason": "mailbox full"},
        {"type": "open", "message_id": m_angry.external_id},
        {"type": "complaint", "message_id": m_angry.external_id, "email": "angry@example.com"},
        {"type": "delivered", "message_id": "<nobody@shop.example>"},
    ])
    assert answer.json() == {"processed": 4, "unknown": 1, "withdrawn": 2}
    db.expire_all()
    assert (service.get_message(db, m_hard.id).status, service.get_message(db, m_hard.id).error) == (
        "failed", "bounce: 5.1.1 unknown")
    assert service.get_message(db, m_soft.id).status == "failed"
    assert service.get_message(db, m_angry.id).status == "opened"
    assert [contacts.may_contact(db, c, "email") for c in (hard, soft, angry)] == [False, True, False]


def test_unsigned_stale_or_malformed_events_are_refused_and_change_nothing(db, ws, smtp, run_jobs, client):
    _, port = smtp
    account = make_account(db, port)
    contact = subscriber(db)
    message = send(db, account, contact, run_jobs=run_jobs)
    bounce = [{"type": "bounce", "message_id": message.external_id, "email": "xiaoming@example.com"}]

    forged = post_events(client, account.id, bounce, secret="not-the-secret-at-all")
    assert (forged.status_code, forged.json()["error"]["field"]) == (403, "signature")
    assert post_events(client, account.id, bounce, age=3600).status_code == 403
    assert post_events(client, 999999, bounce).status_code == 404
    bad = post_events(client, account.id, [{"type": "bounced", "message_id": "x"}])
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "0.type")
    db.expire_all()
    assert service.get_message(db, message.id).status == "sent"
    assert contacts.may_contact(db, contact, "email")


def test_bad_settings_are_refused_with_the_field(db, ws):
    config = {"host": "smtp.example.com", "port": "587", "security": "starttls", "from_address": "news@example.com",
              "public_url": "https://siyu.example.com", "dkim_selector": "s1"}
    changes = (({"port": "0"}, "config.port"), ({"security": "tls"}, "config.security"),
               ({"from_address": "news"}, "config.from_address"), ({"public_url": "siyu"}, "config.public_url"))
    for change, field in changes:
        with pytest.raises(Invalid) as refused:
            service.create_account(db, kind="email", name="x", config={**config, **change}, secrets={}, actor=ACTOR)
        assert refused.value.field == field
    with pytest.raises(Invalid) as refused:
        service.create_account(db, kind="email", name="x", config=config,
                               secrets={"dkim_private_key": "-----BEGIN PRIVATE KEY-----\nnope"}, actor=ACTOR)
    assert refused.value.field == "secrets.dkim_private_key"


def test_the_html_part_of_a_text_email_is_escaped_with_its_links_clickable():
    assert email_channel.html_of('Hi <b>&\nsee https://s.example/l/Ab1?x=1&y=2 now') == (
        '<p>Hi &lt;b&gt;&amp;<br>see <a href="https://s.example/l/Ab1?x=1&amp;y=2">'
        'https://s.example/l/Ab1?x=1&amp;y=2</a> now</p>')
    assert email_channel.html_of("详见 https://s.example/l/Ab1。") == (
        '<p>详见 <a href="https://s.example/l/Ab1">https://s.example/l/Ab1</a>。</p>')
