"""A local SMTP server (aiosmtpd) on a free port: checks AUTH, keeps what arrives, and refuses when told
(a 4xx "try later" or a 5xx "no such user" for a recipient), as real mail servers do."""

from __future__ import annotations

import ipaddress
import ssl
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.servers import free_port

_connections = count(1)


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    connection: int = 0  # which client connection (SMTP session) brought it


@dataclass
class FakeSmtp:
    username: str = "mailer"
    password: str = "mail-pass"
    received: list[Received] = field(default_factory=list)
    # Recipient -> the reply RCPT TO gets ("451 4.7.1 Try again later", "550 5.1.1 No such user").
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse.pop(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not hasattr(session, "serial"):
            session.serial = next(_connections)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content),
                                      session.serial))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == (
            self.username, self.password)
        # handled=False: aiosmtpd then answers 535 itself (handled=True would leave the client waiting).
        return AuthResult(success=ok, handled=False)


def self_signed(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A server TLS context with a fresh certificate for 127.0.0.1, and that certificate in PEM (the CA a
    client must trust)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (directory / "cert.pem").write_text(cert_pem)
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context, cert_pem


@contextmanager
def smtp_server(fake: FakeSmtp | None = None, *, starttls: ssl.SSLContext | None = None
                ) -> Iterator[tuple[FakeSmtp, int]]:
    """Run the fake on 127.0.0.1 until the block ends; yields it and its port. With `starttls`, the
    server offers STARTTLS, requires it before anything else, and AUTH only over TLS."""
    fake = fake or FakeSmtp()
    port = free_port()
    tls: dict[str, Any] = {"tls_context": starttls, "require_starttls": True} if starttls else {}
    controller = Controller(fake, hostname="127.0.0.1", port=port, authenticator=fake.authenticate,
                            auth_required=True, auth_require_tls=starttls is not None,
                            auth_exclude_mechanism=["LOGIN"], **tls)
    with warnings.catch_warnings():
        # Plain AUTH without TLS is what a loopback test server does; aiosmtpd warns about it.
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        controller.start()
    try:
        yield fake, port
    finally:
        controller.stop()
