"""A reader's interests: free text and papers they like, the input of "For you".

One row per reader in ``reader_interests``, owned by this module. They are personal
data kept only while the reader gets mail: erased when the reader leaves (unsubscribed,
bounced, complained: ``readers.change_status`` calls ``delete_for``) and when the row is
deleted (``ON DELETE CASCADE``, and ``delete_for`` in the purge). The file a reader
uploaded is never kept: only each paper's title and abstract, normalised, so the same
interests always hash to the same ``digest``, which the ranking uses as the cache key of
a reader's embedding.

Limits are checked before anything is written: a text over ``MAX_TEXT`` characters or
more than ``MAX_PAPERS`` papers is an ``InterestsError`` and the stored interests stay
as they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from newsletter.db import table_of, utcnow
from newsletter.errors import InterestsError
from newsletter.statuses import SUPPRESSED
from subscribers.models import Subscriber, SubscriberEvent

#: Characters of free text a reader may keep (topics, methods, a few sentences).
MAX_TEXT = 1000
#: Liked papers a reader may keep (a Zotero collection, not a whole library).
MAX_PAPERS = 500
#: A title or abstract longer than this is cut: real ones are far shorter, and a bound
#: keeps one reader's row small whatever a file holds.
MAX_TITLE = 500
MAX_ABSTRACT = 5000

#: Above this many ids, ``interests_for`` reads the whole table in one query instead of an
#: IN list (PostgreSQL takes at most 65,535 parameters, SQLite 32,766).
_IN_LIST_MAX = 1000


class ReaderInterests(SQLModel, table=True):
    """A reader's interests; no row means none."""

    __tablename__ = "reader_interests"

    subscriber_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    text: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    # JSON list of {"title": str, "abstract": str}.
    papers: list[dict[str, str]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    digest: str = Field(max_length=64)
    updated_at: dt.datetime = Field(default_factory=utcnow)


INTERESTS = table_of(ReaderInterests)
SUBSCRIBERS = table_of(Subscriber)
EVENTS = table_of(SubscriberEvent)


@dataclass(frozen=True)
class LikedPaper:
    """A paper the reader likes: what ranking compares the day's papers with."""

    title: str
    abstract: str = ""


@dataclass(frozen=True)
class Interests:
    text: str
    papers: tuple[LikedPaper, ...]
    digest: str  # stable hash of text + papers: the embedding cache key of a reader

    def is_empty(self) -> bool:
        return not self.text and not self.papers

    def as_json(self) -> dict[str, object]:
        """For ``--json`` and exports: the reader's own data, in full."""
        return {
            "text": self.text,
            "papers": [{"title": p.title, "abstract": p.abstract} for p in self.papers],
            "digest": self.digest,
        }


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def normalise_text(raw: str) -> str:
    """NFC, Unix newlines, no control characters (PostgreSQL refuses NUL), trimmed."""
    text = unicodedata.normalize("NFC", raw).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text).strip()


def _one_line(raw: str, limit: int) -> str:
    return _SPACES.sub(" ", normalise_text(raw)).strip()[:limit].rstrip()


def normalise_papers(papers: Sequence[LikedPaper]) -> tuple[LikedPaper, ...]:
    """Titles and abstracts on one line and bounded; untitled papers and repeats dropped.

    A repeat is the same title up to case and spacing (an export often holds a paper
    twice: preprint and published version); the first one is kept.
    """
    seen: set[str] = set()
    kept: list[LikedPaper] = []
    for paper in papers:
        title = _one_line(paper.title, MAX_TITLE)
        key = title.casefold()
        if not title or key in seen:
            continue
        seen.add(key)
        kept.append(LikedPaper(title, _one_line(paper.abstract, MAX_ABSTRACT)))
    return tuple(kept)


def digest_of(text: str, papers: Sequence[LikedPaper]) -> str:
    """sha256 hex of the normalised content: it changes exactly when the interests do."""
    payload = json.dumps(
        {"text": text, "papers": [[p.title, p.abstract] for p in papers]},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def check_text(text: str) -> str:
    """The normalised text, or an ``InterestsError`` naming the limit."""
    clean = normalise_text(text)
    if len(clean) > MAX_TEXT:
        raise InterestsError(
            f"the interests text has {len(clean):,} characters; shorten it to "
            f"{MAX_TEXT:,} at most (a few topics, methods or sentences)"
        )
    return clean


def check_papers(papers: Sequence[LikedPaper]) -> tuple[LikedPaper, ...]:
    """The normalised papers, or an ``InterestsError`` naming the limit."""
    clean = normalise_papers(papers)
    if len(clean) > MAX_PAPERS:
        raise InterestsError(
            f"{len(clean):,} liked papers is too many; keep {MAX_PAPERS:,} at most "
            "(export a smaller collection, e.g. the papers of the last year)"
        )
    return clean


def _interests_of(row: Any) -> Interests:
    papers = tuple(LikedPaper(p["title"], p.get("abstract", "")) for p in row.papers)
    return Interests(row.text, papers, row.digest)


def set_interests(
    engine: Engine,
    subscriber_id: int,
    *,
    text: str | None = None,
    papers: Sequence[LikedPaper] | None = None,
    source: str = "cli",
) -> Interests:
    """Store a reader's interests; a part left None keeps what is stored.

    Interests that end up empty (no text, no papers) are cleared: no row means none.
    The change is recorded in the reader's audit trail by size only (the content is
    the reader's own and stays out of logs). Nothing is written on error.
    """
    new_text = None if text is None else check_text(text)
    new_papers = None if papers is None else check_papers(papers)
    with engine.begin() as conn:
        _require_reader(conn, subscriber_id)
        old = conn.execute(
            sa.select(INTERESTS).where(INTERESTS.c.subscriber_id == subscriber_id)
        ).first()
        current = _interests_of(old) if old is not None else None
        final_text = new_text if new_text is not None else (current.text if current else "")
        final_papers = new_papers if new_papers is not None else (current.papers if current else ())
        result = Interests(final_text, final_papers, digest_of(final_text, final_papers))
        if current is not None and current.digest == result.digest:
            return result
        if result.is_empty():
            _delete(conn, subscriber_id, source)
            return result
        values = {
            "text": result.text,
            "papers": [{"title": p.title, "abstract": p.abstract} for p in result.papers],
            "digest": result.digest,
            "updated_at": utcnow(),
        }
        if old is None:
            conn.execute(sa.insert(INTERESTS).values(subscriber_id=subscriber_id, **values))
        else:
            conn.execute(
                sa.update(INTERESTS)
                .where(INTERESTS.c.subscriber_id == subscriber_id)
                .values(**values)
            )
        detail = f"text {len(result.text)} characters, {len(result.papers)} papers"
        _record(conn, subscriber_id, detail, source)
        return result


def set_texts(
    conn: Connection, texts: Mapping[int, str], *, source: str, write: bool = True
) -> int:
    """Set the free text of many readers at once (their papers kept), in the caller's
    transaction: the CSV import's path. ``texts`` are already checked (``check_text``)
    and none is empty. Returns how many readers' interests changed (would change, when
    not ``write``)."""
    if not texts:
        return 0
    rows = conn.execute(
        sa.select(INTERESTS).where(INTERESTS.c.subscriber_id.in_(sorted(texts)))
    ).all()
    stored = {r.subscriber_id: _interests_of(r) for r in rows}
    now = utcnow()
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for sid, text in texts.items():
        old = stored.get(sid)
        papers = old.papers if old else ()
        digest = digest_of(text, papers)
        if old is not None and old.digest == digest:
            continue
        if old is None:
            new.append({"subscriber_id": sid, "text": text, "papers": [], "digest": digest})
        else:
            changed.append({"b_id": sid, "b_text": text, "b_digest": digest})
        detail = f"text {len(text)} characters, {len(papers)} papers"
        events.append(
            {
                "subscriber_id": sid,
                "at": now,
                "kind": "interests",
                "detail": detail,
                "source": source,
            }
        )
    if write and new:
        conn.execute(sa.insert(INTERESTS).values(updated_at=now), new)
    if write and changed:
        conn.execute(
            sa.update(INTERESTS)
            .where(INTERESTS.c.subscriber_id == sa.bindparam("b_id"))
            .values(text=sa.bindparam("b_text"), digest=sa.bindparam("b_digest"), updated_at=now),
            changed,
        )
    if write and events:
        conn.execute(sa.insert(EVENTS), events)
    return len(events)


def clear_interests(engine: Engine, subscriber_id: int, *, source: str = "cli") -> None:
    """Forget a reader's interests (idempotent; an unknown reader is no error)."""
    with engine.begin() as conn:
        _delete(conn, subscriber_id, source)


def delete_for(conn: Connection, subscriber_ids: Sequence[int]) -> None:
    """Erase the interests of readers being deleted, inside the caller's transaction.

    The foreign key cascades on PostgreSQL and on SQLite with ``foreign_keys=ON``; this
    makes the erasure explicit and independent of that pragma.
    """
    if subscriber_ids:
        conn.execute(sa.delete(INTERESTS).where(INTERESTS.c.subscriber_id.in_(subscriber_ids)))


def get_interests(engine: Engine, subscriber_id: int) -> Interests | None:
    """A reader's interests, or None when they have none."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(INTERESTS).where(INTERESTS.c.subscriber_id == subscriber_id)
        ).first()
    return _interests_of(row) if row is not None else None


def interests_for(engine: Engine, subscriber_ids: Sequence[int]) -> dict[int, Interests]:
    """The interests of those of ``subscriber_ids`` that have some, in one query.

    A long list of ids (a day's send) reads the whole table once and keeps the wanted
    rows, which is cheaper than a giant IN list and within every driver's limits.
    """
    wanted = set(subscriber_ids)
    if not wanted:
        return {}
    query = sa.select(INTERESTS)
    if len(wanted) <= _IN_LIST_MAX:
        ids = sorted(wanted)
        if engine.dialect.name == "postgresql":
            # One array parameter, not a thousand placeholders for psycopg to parse at
            # each batch of a send.
            from sqlalchemy.dialects import postgresql

            array = sa.bindparam("ids", ids, type_=postgresql.ARRAY(sa.Integer))
            query = query.where(INTERESTS.c.subscriber_id == sa.any_(array))
        else:
            query = query.where(INTERESTS.c.subscriber_id.in_(ids))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {r.subscriber_id: _interests_of(r) for r in rows if r.subscriber_id in wanted}


def _require_reader(conn: Connection, subscriber_id: int) -> None:
    """The reader exists and has not left: their interests were erased when they left."""
    status = conn.execute(
        sa.select(SUBSCRIBERS.c.status).where(SUBSCRIBERS.c.id == subscriber_id)
    ).scalar()
    if status is None:
        raise InterestsError(f"no reader with id {subscriber_id}; add the reader first")
    if status in SUPPRESSED:
        raise InterestsError(
            f"this reader is {status}: no interests are kept for a reader who gets no mail "
            "(they can subscribe again on the web form)"
        )


def _delete(conn: Connection, subscriber_id: int, source: str) -> None:
    deleted = conn.execute(
        sa.delete(INTERESTS).where(INTERESTS.c.subscriber_id == subscriber_id)
    ).rowcount
    if deleted:
        _record(conn, subscriber_id, "cleared", source)


def _record(conn: Connection, subscriber_id: int, detail: str, source: str) -> None:
    conn.execute(
        sa.insert(EVENTS).values(
            subscriber_id=subscriber_id, at=utcnow(), kind="interests", detail=detail, source=source
        )
    )
