"""A local SMTP server (aiosmtpd) on a free port: checks AUTH, keeps what arrives, and refuses when told
(a 4xx "try later" or a 5xx "no such user" for a recipient), as real mail servers do."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


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
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == (
            self.username, self.password)
        # handled=False: aiosmtpd then answers 535 itself (handled=True would leave the client waiting).
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(fake: FakeSmtp | None = None) -> Iterator[tuple[FakeSmtp, int]]:
    """Run the fake on 127.0.0.1 until the block ends; yields it and its port."""
    fake = fake or FakeSmtp()
    port = free_port()
    controller = Controller(fake, hostname="127.0.0.1", port=port, authenticator=fake.authenticate,
                            auth_required=True, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
    with warnings.catch_warnings():
        # Plain AUTH without TLS is what a loopback test server does; aiosmtpd warns about it.
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        controller.start()
    try:
        yield fake, port
    finally:
        controller.stop()
