"""Email channel: SMTP (STARTTLS, implicit TLS or plain), DKIM-signed when a key is set, with an
unsubscribe link and the List-Unsubscribe / List-Unsubscribe-Post headers (RFC 8058 one-click).

Content is `{"type": "email", "subject", "text", "html"}`. Each message gets a `Message-ID` made from
our idempotency key, which is also its `external_id`: bounce and complaint events name it
(`siyu.channels.email_feedback`). SMTP servers don't dedupe on it, so an answer lost after the data was
sent leaves the job `unknown` rather than mailing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import smtplib
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization

from siyu.channels.base import URL, ChannelError, ConfigField, PlatformRules, SendResult, register_adapter
from siyu.channels.email_feedback import open_token, unsubscribe_token
from siyu.channels.models import ChannelAccount
from siyu.channels.webhook import check_url
from siyu.core import clock
from siyu.core.errors import Invalid
from siyu.settings import get_settings

SECURITY = ("starttls", "ssl", "none")
# The footer link's words: the recipient's language is the brand's to choose, per account.
DEFAULT_UNSUBSCRIBE_LABEL = "退订 · Unsubscribe"
TIMEOUT_SECONDS = 30.0
# Headers the DKIM signature covers (those a forwarder must not change).
SIGNED_HEADERS = (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"MIME-Version", b"Content-Type",
                  b"List-Unsubscribe", b"List-Unsubscribe-Post")


def N_(message: str) -> str:
    return message


def message_id(idempotency_key: str, domain: str) -> str:
    """The Message-ID of the message sent under this key: the same key, the same id."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"


def _domain(account: ChannelAccount) -> str:
    return str(account.config.get("dkim_domain") or str(account.config.get("from_address", "")).rpartition("@")[2])


def _public(account: ChannelAccount) -> str:
    """Where recipients reach siyu: the account's own address if it has one, else SIYU_PUBLIC_URL."""
    return str(account.config.get("public_url") or get_settings().public_url).rstrip("/")


def unsubscribe_url(account: ChannelAccount, address: str) -> str:
    """The page where the recipient confirms; RFC 8058 one-click POSTs go to the same URL."""
    return f"{_public(account)}/u/{unsubscribe_token(account.workspace_id, account.id, address)}"


def html_of(text: str) -> str:
    """The HTML part of a text-only email: escaped, line breaks kept, links clickable (a broadcast's tracked
    links among them)."""
    escaped = html.escape(text)
    linked = URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
    return f"<p>{linked}</p>".replace("\n", "<br>")


def build_message(account: ChannelAccount, address: str, content: Mapping[str, Any], idempotency_key: str) -> bytes:
    """The message as it goes on the wire: text + HTML, unsubscribe link and headers, DKIM-signed when
    the account has a key."""
    config = account.config
    link = unsubscribe_url(account, address)
    text = str(content.get("text") or "")
    body_html = str(content.get("html") or "") or html_of(text)
    msg = EmailMessage()
    msg["From"] = formataddr((str(config.get("from_name") or ""), str(config["from_address"])))
    msg["To"] = address
    msg["Subject"] = str(content.get("subject") or "")
    msg["Date"] = format_datetime(clock.now())
    msg["Message-ID"] = message_id(idempotency_key, _domain(account))
    mailto = f"mailto:{config['from_address']}?subject=unsubscribe"
    msg["List-Unsubscribe"] = f"<{link}>, <{mailto}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    label = str(config.get("unsubscribe_label") or DEFAULT_UNSUBSCRIBE_LABEL)
    msg.set_content(f"{text}\n\n--\n{label}: {link}\n")
    pixel = ""
    if str(config.get("track_opens") or "off") == "on":
        token = open_token(account.workspace_id, account.id, msg["Message-ID"])
        pixel = f'<img src="{_public(account)}/o/{token}.gif" width="1" height="1" alt="">'
    msg.add_alternative(
        f'{body_html}\n<p style="font-size:12px;color:#888"><a href="{html.escape(link)}">{html.escape(label)}</a></p>'
        f"{pixel}\n", subtype="html",
    )
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    key = str(account.secrets.get("dkim_private_key") or "")
    if key and config.get("dkim_selector"):
        signature = dkim.sign(raw, str(config["dkim_selector"]).encode(), _domain(account).encode(), key.encode(),
                              canonicalize=(b"relaxed", b"relaxed"), include_headers=list(SIGNED_HEADERS))
        raw = signature + raw
    return raw


def tls_context(config: Mapping[str, Any]) -> ssl.SSLContext:
    """Certificates checked against the system's CAs, or only the account's own CA when it has one."""
    ca = str(config.get("tls_ca") or "")
    return ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()


def _connect(account: ChannelAccount) -> smtplib.SMTP:
    config = account.config
    host, port = str(config["host"]), int(config.get("port") or 25)
    security = str(config.get("security") or "starttls")
    context = tls_context(config)
    smtp: smtplib.SMTP
    if security == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
        if security == "starttls":
            smtp.starttls(context=context)
    if config.get("username"):
        smtp.login(str(config["username"]), str(account.secrets.get("password") or ""))
    return smtp


def _refusal(code: int, text: bytes | str) -> ChannelError:
    reason = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    # 4xx: the server asks us to come back later; 5xx: a permanent refusal.
    return ChannelError(str(code), reason or "refused", retryable=400 <= code < 500)


# The connections a batch of sends keeps open, per account (set by `EmailAdapter.connections`).
_OPEN: ContextVar[dict[int, smtplib.SMTP] | None] = ContextVar("siyu_email_connections", default=None)


def _open(account: ChannelAccount) -> smtplib.SMTP:
    try:
        return _connect(account)
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelError(str(exc.smtp_code), "the SMTP server refused the username or password") from exc
    except smtplib.SMTPResponseException as exc:
        raise _refusal(exc.smtp_code, exc.smtp_error) from exc
    except (OSError, smtplib.SMTPException) as exc:
        # Nothing was sent yet: trying again later is safe.
        raise ChannelError("unreachable", f"{type(exc).__name__}: {exc}", retryable=True) from exc


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _reusable(smtp: smtplib.SMTP) -> bool:
    """Whether a kept connection still answers (servers close idle ones)."""
    try:
        return smtp.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


def _send_now(account: ChannelAccount, address: str, raw: bytes,
              kept: dict[int, smtplib.SMTP] | None = None) -> None:
    """Send one message, on the batch's open connection to the account's server when there is one (and
    it still answers), else on a new one; `kept` gets the connection back unless the send broke it."""
    smtp = kept.pop(account.id, None) if kept is not None else None
    if smtp is not None and not _reusable(smtp):
        smtp.close()
        smtp = None
    if smtp is None:
        smtp = _open(account)
    healthy = False
    try:
        refused = smtp.sendmail(str(account.config["from_address"]), [address], raw)
        healthy = True
    except smtplib.SMTPRecipientsRefused as exc:
        healthy = True  # sendmail reset the transaction: the connection serves the next message
        code, text = next(iter(exc.recipients.values()))
        raise _refusal(code, text) from exc
    except smtplib.SMTPResponseException as exc:
        raise _refusal(exc.smtp_code, exc.smtp_error) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise ChannelError("unknown", f"the connection ended during the send: {exc}", unknown=True) from exc
    finally:
        if healthy and kept is not None and account.id not in kept:
            kept[account.id] = smtp
        else:  # broken, no batch, or another send of the batch already put one back
            _close(smtp)
    if refused:
        code, text = next(iter(refused.values()))
        raise _refusal(code, text)


def _check_connection(account: ChannelAccount) -> str:
    try:
        smtp = _connect(account)
        code, _ = smtp.noop()
        smtp.quit()
    except smtplib.SMTPResponseException as exc:
        raise _refusal(exc.smtp_code, exc.smtp_error) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise ChannelError("unreachable", f"{type(exc).__name__}: {exc}", retryable=True) from exc
    return f"SMTP {account.config['host']} answered NOOP with {code}"


class EmailAdapter:
    kind = "email"
    label = N_("Email (SMTP)")
    rules = PlatformRules(
        identity_type="email", consent_channel="email", content_types=("email",),
        notes=(N_("Every message carries an unsubscribe link and one-click List-Unsubscribe headers."),
               N_("Set a DKIM key and publish its selector in DNS so mailboxes trust the sender.")),
    )
    fields: tuple[ConfigField, ...] = (
        ConfigField("host", N_("SMTP host")),
        ConfigField("port", N_("Port"), default="587"),
        ConfigField("security", N_("Security"), default="starttls", help=N_("starttls, ssl or none")),
        ConfigField("tls_ca", N_("Trusted CA certificate (PEM)"), required=False,
                    help=N_("Only for a relay whose certificate comes from your own CA.")),
        ConfigField("username", N_("Username"), required=False),
        ConfigField("password", N_("Password"), secret=True, required=False),
        ConfigField("from_address", N_("From address")),
        ConfigField("from_name", N_("From name"), required=False),
        ConfigField("public_url", N_("siyu's public address"), required=False,
                    help=N_("Unsubscribe links point here, e.g. https://siyu.example.com.")),
        ConfigField("unsubscribe_label", N_("Unsubscribe link text"), required=False,
                    default=DEFAULT_UNSUBSCRIBE_LABEL,
                    help=N_("The footer link's words, in your recipients' language.")),
        ConfigField("track_opens", N_("Track opens"), required=False, default="off",
                    help=N_("on: a 1-pixel image marks messages opened when mail clients load images.")),
        ConfigField("dkim_selector", N_("DKIM selector"), required=False),
        ConfigField("dkim_domain", N_("DKIM domain"), required=False),
        ConfigField("dkim_private_key", N_("DKIM private key (PEM)"), secret=True, required=False),
        ConfigField("webhook_secret", N_("Events signing secret"), secret=True, required=False,
                    help=N_("Signs bounce and complaint events POSTed to /hooks/email/<account>/events.")),
    )
    accepts_idempotency_key = False

    def validate_config(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        if not str(config.get("host") or "").strip():
            raise Invalid("the SMTP host is required", field="config.host")
        port = str(config.get("port") or "")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise Invalid("a port from 1 to 65535", field="config.port")
        if str(config.get("security") or "starttls") not in SECURITY:
            raise Invalid(f"security is one of {', '.join(SECURITY)}", field="config.security")
        if config.get("tls_ca"):
            try:
                tls_context(config)
            except (ssl.SSLError, ValueError) as exc:
                raise Invalid("a CA certificate in PEM", field="config.tls_ca") from exc
        sender = str(config.get("from_address") or "")
        if "@" not in sender.strip("@") or any(c in sender for c in " <>\r\n"):
            raise Invalid("a from address like news@example.com", field="config.from_address")
        if config.get("public_url"):
            check_url(config["public_url"], "config.public_url")
        if str(config.get("track_opens") or "off") not in ("on", "off"):
            raise Invalid("track_opens is on or off", field="config.track_opens")
        key = str(secrets.get("dkim_private_key") or "")
        if key:
            if not config.get("dkim_selector"):
                raise Invalid("a DKIM key needs its selector", field="config.dkim_selector")
            try:
                serialization.load_pem_private_key(key.encode(), password=None)
            except (ValueError, TypeError) as exc:
                raise Invalid("a PEM private key without a passphrase", field="secrets.dkim_private_key") from exc
        secret = str(secrets.get("webhook_secret") or "")
        if secret and len(secret) < 16:
            raise Invalid("an events secret of at least 16 characters", field="secrets.webhook_secret")

    async def check_connection(self, account: ChannelAccount) -> str:
        return await asyncio.to_thread(_check_connection, account)

    @asynccontextmanager
    async def connections(self) -> AsyncIterator[None]:
        """Sends inside the block share one SMTP connection per account (a batch of deliver jobs opens,
        starts TLS and logs in once instead of once per message); all are closed at its end."""
        kept: dict[int, smtplib.SMTP] = {}
        token = _OPEN.set(kept)
        try:
            yield
        finally:
            _OPEN.reset(token)
            for smtp in kept.values():
                await asyncio.to_thread(_close, smtp)

    async def send(self, account: ChannelAccount, address: str, content: Mapping[str, Any], *,
                   idempotency_key: str) -> SendResult:
        if not str(content.get("subject") or "").strip():
            raise ChannelError("no_subject", "an email needs a subject")
        try:
            raw = build_message(account, address, content, idempotency_key)
        except (ValueError, dkim.DKIMException) as exc:
            # A header with a line break, an address the parser refuses, a key dkimpy can't use: sending
            # again would fail the same way.
            raise ChannelError("bad_message", f"the message could not be built: {exc}") from exc
        await asyncio.to_thread(_send_now, account, address, raw, _OPEN.get())
        return SendResult(external_id=message_id(idempotency_key, _domain(account)))


ADAPTER = register_adapter(EmailAdapter())
