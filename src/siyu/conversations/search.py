"""Full-text search of the archive, for Chinese and English alike.

Every message gets a row in `message_search` holding its tokens (`text.document`: rjieba's search cut
of the NFKC-normalised, case-folded text). PostgreSQL keeps them as a `tsvector` (`simple` config, GIN
index); SQLite as a string with an FTS5 index kept in step by triggers. A query is cut the same way and
every token must match. When the tokens find nothing, the search falls back to a substring match
(`pg_trgm` indexes it on PostgreSQL), which catches words rjieba cut differently.

New messages are indexed by the flush hook (`hooks.py`) whatever wrote them; rows written around the
ORM (bulk loads) are caught by `index_missing`, which the sweep job runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from markupsafe import Markup, escape
from sqlalchemy import Table, bindparam, func, literal_column, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from siyu.contacts import service as contacts
from siyu.conversations import text as texts
from siyu.conversations.models import Message, MessageSearch
from siyu.core.errors import Invalid
from siyu.core.pagination import page

MAX_QUERY = 200
SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")
SEARCH_TABLE = cast(Table, MessageSearch.__table__)


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def index_rows(session: Session, rows: Sequence[tuple[int, int, str]]) -> int:
    """Index (message id, workspace id, text) triples; a message already indexed is left as it is."""
    if not rows:
        return 0
    values = [{"m": m, "w": w, "d": texts.document(t or "")} for m, w, t in rows]
    if _pg(session):
        stmt: Any = postgresql.insert(SEARCH_TABLE).values(
            message_id=bindparam("m"), workspace_id=bindparam("w"),
            document=func.to_tsvector(SIMPLE, bindparam("d")),
        ).on_conflict_do_nothing(index_elements=["message_id"])
    else:
        stmt = sqlite.insert(SEARCH_TABLE).values(
            message_id=bindparam("m"), workspace_id=bindparam("w"), document=bindparam("d"),
        ).on_conflict_do_nothing(index_elements=["message_id"])
    session.connection().execute(stmt, values)
    return len(values)


def index_missing(session: Session, *, limit: int = 5000) -> int:
    """Index archived messages that have no search row yet (written around the ORM); how many."""
    rows = session.execute(
        select(Message.id, Message.workspace_id, Message.text)
        .outerjoin(MessageSearch, MessageSearch.message_id == Message.id)
        .where(MessageSearch.message_id.is_(None)).order_by(Message.id).limit(limit)
    ).all()
    return index_rows(session, [(m, w, t) for m, w, t in rows])


def visible_contact_ids(session: Session, viewer: Any) -> Any | None:
    """A subquery of the contact ids a staff-role viewer may see; None when they see everyone."""
    criterion = contacts.visible_contacts(session, viewer) if viewer is not None else None
    if criterion is None:
        return None
    return select(literal_column("contacts.id")).where(criterion)


@dataclass
class Hit:
    """One message found, with where the query matched its text."""

    message: Message
    spans: list[tuple[int, int]]

    @property
    def highlighted(self) -> Markup:
        """The text, escaped, with the matches in <mark>."""
        return highlight(self.message.text, self.spans)


def highlight(value: str, spans: Sequence[tuple[int, int]]) -> Markup:
    """`value` escaped, with the spans wrapped in <mark>."""
    out: list[str] = []
    at = 0
    for start, end in spans:
        out.append(str(escape(value[at:start])))
        out.append("<mark>" + str(escape(value[start:end])) + "</mark>")
        at = end
    out.append(str(escape(value[at:])))
    return Markup("".join(out))


def _match(session: Session, terms: list[str]) -> ColumnElement[bool]:
    if _pg(session):
        query = func.plainto_tsquery(SIMPLE, " ".join(terms))
        return MessageSearch.document.op("@@")(query)
    phrase = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
    fts = text("SELECT rowid FROM message_search_fts WHERE message_search_fts MATCH :fts").bindparams(fts=phrase)
    return MessageSearch.message_id.in_(fts)


def _substring(session: Session, needle: str) -> ColumnElement[bool]:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if _pg(session):
        return Message.text.ilike(f"%{escaped}%", escape="\\")
    return func.lower(Message.text).like(f"%{escaped}%", escape="\\")


def search(
    session: Session, *, q: str = "", contact_id: int | None = None, channel: str | None = None,
    account_id: int | None = None, staff_id: int | None = None, direction: str | None = None,
    since: datetime | None = None, until: datetime | None = None, conversation_id: int | None = None,
    substring: bool = False, viewer: Any = None, cursor: str | None = None, limit: int = 50,
) -> tuple[list[Hit], str | None, bool]:
    """Messages matching the words and filters, newest first: (hits, next cursor, whether they matched as a
    substring). A words search that finds nothing falls back to a substring search; its next pages are
    asked with `substring=True`."""
    q = (q or "").strip()
    if len(q) > MAX_QUERY:
        raise Invalid(f"a query of at most {MAX_QUERY} characters", field="q")
    if direction not in (None, "", "in", "out"):
        raise Invalid("direction is in or out", field="direction")
    stmt = select(Message)
    for column, value in ((Message.contact_id, contact_id), (Message.channel, channel or None),
                          (Message.account_id, account_id), (Message.staff_id, staff_id),
                          (Message.direction, direction or None), (Message.conversation_id, conversation_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(Message.created_at >= since)
    if until is not None:
        stmt = stmt.where(Message.created_at < until)
    visible = visible_contact_ids(session, viewer)
    if visible is not None:
        stmt = stmt.where(Message.contact_id.in_(visible))
    terms = texts.query_terms(q)
    if not q:
        latest, after = page(session, stmt.where(Message.msg_type != "event"), Message.id, cursor=cursor, limit=limit)
        return [Hit(m, []) for m in latest], after, False
    fallback = False
    rows: Sequence[Message] = []
    nxt: str | None = None
    if terms and not substring:
        words = stmt.join(MessageSearch, MessageSearch.message_id == Message.id).where(_match(session, terms))
        # Ordered by the index's own key: for a common word the engine walks it backwards and stops after
        # one page instead of fetching every match to sort it.
        rows, nxt = page(session, words, MessageSearch.message_id, cursor=cursor, limit=limit)
    needle = texts.plain(q)
    if substring or not terms or (not rows and not cursor):
        fallback = True
        rows, nxt = page(session, stmt.where(_substring(session, needle)), Message.id, cursor=cursor, limit=limit)
    marks = [needle] if fallback else [needle, *terms]
    return [Hit(m, texts.spans(m.text, marks)) for m in rows], nxt, fallback
