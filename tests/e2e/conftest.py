"""A real server in its own process over committed data, and a real Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.db import make_engine
from siyu.core.models import Event
from siyu.core.tenancy import bind_workspace
from tests.support import fresh_database

CHROMIUM = Path("/usr/bin/chromium")
EMAIL, PASSWORD = "owner@example.com", "correct horse battery"


@dataclass(frozen=True)
class Server:
    """Where the console listens and who may sign in."""

    base_url: str
    email: str
    password: str
    database_url: str = ""  # the server's database, for tests that seed their own data


def _seed(url: str) -> None:
    """Two workspaces with one owner in both; the second has two weeks of events to chart."""
    from sqlalchemy.orm import Session

    from siyu.core import workspaces

    engine = make_engine(url)
    actor = Actor.cli("e2e")
    with Session(engine) as session:
        owner = workspaces.create_user(session, email=EMAIL, name="Olivia Chen", password=PASSWORD)
        acme = workspaces.create_workspace(session, actor, name="Acme Tea", owner=owner, locale="en", timezone="UTC")
        _seed_contacts(session, acme.id)
        second = workspaces.create_workspace(
            session, actor, name="Second Shop", owner=owner, locale="en", timezone="UTC", currency="USD"
        )
        bind_workspace(session, second.id)
        now = clock.now()
        for day in range(14):
            for n in range((day * 7) % 11 + 2):
                session.add(
                    Event(
                        type="order.paid",
                        occurred_at=now - timedelta(days=day, minutes=n),
                        idempotency_key=f"seed-{day}-{n}",
                        properties={},
                    )
                )
        session.commit()
    engine.dispose()


def _seed_contacts(session: Session, workspace_id: int) -> None:
    """A handful of contacts in Acme Tea, for the segment builder to count."""
    from siyu.contacts.models import Contact

    bind_workspace(session, workspace_id)
    for name, city in (("Li Na", "Shanghai"), ("Wang Fang", "Beijing"), ("Zhao Lei", "Shanghai"),
                       ("Chen Jie", "Hangzhou"), ("Liu Yang", "Shanghai")):
        session.add(Contact(name=name, city=city))
    session.flush()
    bind_workspace(session, None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """uvicorn serving `create_app` on a free loopback port, over a database of its own."""
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium")
    with fresh_database() as url, tempfile.TemporaryDirectory(prefix="siyu-e2e-") as var:
        _seed(url)
        port = _free_port()
        env = {
            **os.environ,
            "SIYU_DATABASE_URL": url,
            "SIYU_VAR_DIR": var,
            "SIYU_SECRET_KEY": "e2e-secret-key-not-for-production",
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "siyu.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        try:
            # http://localhost is a secure origin to Chromium, so the Secure cookies work without TLS.
            base = f"http://localhost:{port}"
            _wait_until_up(f"http://127.0.0.1:{port}/healthz", proc)
            yield Server(base_url=base, email=EMAIL, password=PASSWORD, database_url=url)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _wait_until_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not start within a minute")


@pytest.fixture(scope="session")
def browser(server: Server) -> Iterator[object]:
    """Debian's Chromium, headless, kept off the network except for the loopback server."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-gpu",
                "--host-resolver-rules=MAP localhost 127.0.0.1",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server: Server) -> Iterator[object]:
    """A fresh browser context (no cookies) and page."""
    context = browser.new_context(
        base_url=server.base_url, viewport={"width": 1360, "height": 900}, locale="en-US"
    )
    pg = context.new_page()
    yield pg
    context.close()


PASSWORD = "correct horse battery"


@contextmanager
def own_workspace(url: str, *, email: str, owner: str, name: str) -> Iterator[tuple[Session, Actor]]:
    """A workspace of a test's own on the server's database, owned by `email`; committed when the block ends."""
    from siyu.core import workspaces

    engine = make_engine(url)
    actor = Actor.cli("e2e")
    try:
        with Session(engine) as session:
            user = workspaces.create_user(session, email=email, name=owner, password=PASSWORD)
            ws = workspaces.create_workspace(session, actor, name=name, owner=user, locale="en", timezone="UTC")
            bind_workspace(session, ws.id)
            yield session, actor
            session.commit()
    finally:
        engine.dispose()


def sign_in(page, email: str) -> list[str]:
    """Sign `email` in on the console; the list collects the page's script errors from then on."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto("/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    return problems
