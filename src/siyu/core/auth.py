"""Who is asking and what they may do: API keys for the REST API, console sessions for the console."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, ParamSpec, TypeVar

import anyio.to_thread
from anyio import CancelScope, CapacityLimiter
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.audit import Actor
from siyu.core.db import get_sessionmaker
from siyu.core.errors import Forbidden, NotAuthenticated
from siyu.core.permissions import allows, scope_allows
from siyu.core.tenancy import bind_workspace
from siyu.core.workspaces import authenticate_api_key

P = ParamSpec("P")
T = TypeVar("T")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_used_at is bookkeeping: refresh it at most this often so reads stay reads.
_TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class Auth:
    """An authenticated caller inside one workspace."""

    workspace_id: int
    actor: Actor
    role: str | None = None  # console users
    scopes: tuple[str, ...] | None = None  # API keys
    user_id: int | None = None

    def can(self, module: str, access: str) -> bool:
        """True when this caller may `access` ("read"/"write") `module`."""
        if self.scopes is not None:
            return scope_allows(list(self.scopes), module, access)
        return self.role is not None and allows(self.role, module, access)

    def require(self, module: str, access: str) -> None:
        """Raise 403 unless this caller may `access` `module`."""
        if not self.can(module, access):
            what = f"the {module}:{access} scope" if self.scopes is not None else f"{access} access to {module}"
            raise Forbidden(f"this {'API key' if self.scopes is not None else 'role'} lacks {what}")


async def get_db(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work: committed when the handler returns, rolled back when it raises.

    The session is made in the event loop (it does no I/O before its first query) and ended in a
    worker thread, as `session_scope` ends one, or closed at once when the handler already committed
    it in its own thread (`in_unit_of_work`): each thread hop spared is one wait for a thread.
    """
    session = get_sessionmaker(request.method not in _READ_METHODS)()
    # Shielded, with a limiter of its own, as FastAPI ends a sync dependency: a cancelled request still
    # gives its connection back, and a full thread pool cannot hold the exit up.
    try:
        yield session
    except BaseException:
        with CancelScope(shield=True):
            await anyio.to_thread.run_sync(_end, session, False, limiter=CapacityLimiter(1))
        raise
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        with CancelScope(shield=True):
            await anyio.to_thread.run_sync(_end, session, True, limiter=CapacityLimiter(1))
    else:
        session.close()


def _end(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def in_unit_of_work(session: Session, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a handler's blocking work in a worker thread and commit the request's session there too.

    One thread hop instead of two (the work's, then get_db's commit); a failed commit raises as get_db's
    would, so the client still sees the failure, and get_db rolls back.
    """

    def work() -> T:
        result = fn(*args, **kwargs)
        session.commit()
        return result

    return await run_in_threadpool(work)


# Function scope: the commit happens when the handler returns, before the response leaves, so a
# client never sees a success whose commit then failed, nor reads before the write is visible.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


def client_ip(request: Request) -> str | None:
    """The caller's address as the server sees it."""
    return request.client.host if request.client else None


def api_auth(module: str, access: str) -> Callable[..., Auth]:
    """A dependency: the API key of the request, its session bound to the key's workspace, scope checked."""

    def dependency(request: Request, session: SessionDep) -> Auth:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated("send an API key as 'Authorization: Bearer <key>'", field="authorization")
        key = authenticate_api_key(session, secret.strip())
        if key is None:
            raise NotAuthenticated("this API key is unknown or revoked", field="authorization")
        now = clock.now()
        if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
            key.last_used_at = now
        bind_workspace(session, key.workspace_id)
        auth = Auth(
            workspace_id=key.workspace_id,
            actor=Actor(type="api_key", id=str(key.id), label=f"API key {key.name} ({key.prefix})", via="api",
                        ip=client_ip(request)),
            scopes=tuple(key.scopes),
        )
        auth.require(module, access)
        return auth

    return dependency
