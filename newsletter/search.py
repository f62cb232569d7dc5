"""Full-text search over stored papers: SQLite FTS5 or PostgreSQL tsvector, one function.

The index lives in the database and is kept current by the database itself (FTS5
triggers on SQLite, a generated ``tsvector`` column on PostgreSQL), so every path that
stores papers, bulk Core inserts included, is indexed without knowing about search.

User queries never reach the query language: they are cut to ``MAX_QUERY_CHARS``,
split into words, and each word is quoted as an FTS5 string (so ``NEAR``, ``AND``,
``*``, ``:``, ``^``, quotes and parentheses are plain text) or handed to
``plainto_tsquery`` on PostgreSQL, which has no operators at all. Both stem English
words (porter / the ``english`` configuration), so "transformers" finds "transformer".
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from newsletter.models import Paper
from newsletter.papers import PAPERS, paper_from_row
from newsletter.published import public_dates

log = logging.getLogger(__name__)

#: Longer queries are cut, not refused: a pasted abstract still finds something.
MAX_QUERY_CHARS = 200
#: Words beyond this are dropped; an AND of more words matches nothing anyway.
MAX_TERMS = 12

_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both tokenizers index

_SQLITE_DDL = (
    """CREATE VIRTUAL TABLE IF NOT EXISTS papers_fts USING fts5(
        title, abstract, authors,
        content='papers', content_rowid='rowid',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER IF NOT EXISTS papers_fts_ai AFTER INSERT ON papers BEGIN
        INSERT INTO papers_fts(rowid, title, abstract, authors)
        VALUES (new.rowid, new.title, new.abstract, new.authors);
    END""",
    """CREATE TRIGGER IF NOT EXISTS papers_fts_ad AFTER DELETE ON papers BEGIN
        INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
        VALUES ('delete', old.rowid, old.title, old.abstract, old.authors);
    END""",
    """CREATE TRIGGER IF NOT EXISTS papers_fts_au AFTER UPDATE ON papers BEGIN
        INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
        VALUES ('delete', old.rowid, old.title, old.abstract, old.authors);
        INSERT INTO papers_fts(rowid, title, abstract, authors)
        VALUES (new.rowid, new.title, new.abstract, new.authors);
    END""",
)

_PG_VECTOR = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(abstract, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(authors, '')), 'C')"
)


def ensure_index(engine: Engine) -> None:
    """Create the search index if missing, filling it from papers already stored.

    Idempotent and cheap when the index exists; called by ``app.prepare_database``.
    """
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            _ensure_pg(conn)
        else:
            _ensure_sqlite(conn)


_SQLITE_OBJECTS = {"papers_fts", "papers_fts_ai", "papers_fts_ad", "papers_fts_au"}


def _ensure_sqlite(conn: Connection) -> None:
    names = {
        row[0]
        for row in conn.execute(
            sa.text("SELECT name FROM sqlite_master WHERE name LIKE 'papers_fts%'")
        )
    }
    if _SQLITE_OBJECTS.issubset(names):
        return
    for statement in _SQLITE_DDL:
        conn.execute(sa.text(statement))
    # A missing trigger means papers changed unseen (or a batch migration rebuilt the
    # table and its rowids): rebuild the whole index from the table.
    conn.execute(sa.text("INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')"))
    log.info("built the full-text index of papers")


def _ensure_pg(conn: Connection) -> None:
    existed = conn.execute(
        sa.text(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'papers' AND column_name = 'search_vector'"
        )
    ).first()
    if existed:
        return
    # A stored generated column: PostgreSQL computes it on every insert and update.
    conn.execute(
        sa.text(
            "ALTER TABLE papers ADD COLUMN IF NOT EXISTS search_vector tsvector "
            f"GENERATED ALWAYS AS ({_PG_VECTOR}) STORED"
        )
    )
    conn.execute(
        sa.text("CREATE INDEX IF NOT EXISTS papers_search_idx ON papers USING GIN (search_vector)")
    )
    log.info("created the full-text index of papers")


@dataclass(frozen=True)
class SearchQuery:
    """A user's query as it was searched: its words, and whether it was cut."""

    text: str
    terms: tuple[str, ...]
    shortened: bool

    @property
    def empty(self) -> bool:
        return not self.terms


def parse_query(raw: str | None) -> SearchQuery:
    """The words of ``raw``; punctuation and operators are dropped, long input is cut."""
    printable = "".join(ch if ch.isprintable() else " " for ch in raw or "")
    text = " ".join(printable.split())
    shortened = len(text) > MAX_QUERY_CHARS
    text = text[:MAX_QUERY_CHARS]
    terms = tuple(_WORD.findall(text))
    if len(terms) > MAX_TERMS:
        shortened = True
        terms = terms[:MAX_TERMS]
    return SearchQuery(text=text, terms=terms, shortened=shortened)


def fts5_match(query: SearchQuery) -> str:
    """An FTS5 MATCH expression: every word as a quoted string, all of them required."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in query.terms)


@dataclass(frozen=True)
class SearchPage:
    query: SearchQuery
    papers: tuple[Paper, ...]
    has_more: bool


def search_papers(
    engine: Engine,
    query: SearchQuery,
    *,
    limit: int = 20,
    offset: int = 0,
    published_only: bool = True,
) -> SearchPage:
    """Papers matching every word of ``query``, best match first, then newest.

    With ``published_only`` a hit must belong to a public issue, so every result
    links to an archive page that exists.
    """
    if query.empty:
        return SearchPage(query, (), False)
    if engine.dialect.name == "postgresql":
        tsquery = sa.func.plainto_tsquery(sa.literal_column("'english'"), " ".join(query.terms))
        vector: sa.ColumnElement[Any] = sa.literal_column("papers.search_vector")
        statement = (
            sa.select(PAPERS)
            .where(vector.op("@@")(tsquery))
            .order_by(
                sa.func.ts_rank(vector, tsquery).desc(),
                PAPERS.c.announced.desc(),
                PAPERS.c.arxiv_id,
            )
        )
    else:
        fts = sa.table("papers_fts", sa.column("rowid"))
        # Title matches weigh most, then abstract, then authors.
        rank: sa.ColumnElement[Any] = sa.literal_column("bm25(papers_fts, 10.0, 3.0, 1.0)")
        statement = (
            sa.select(PAPERS)
            .join(fts, fts.c.rowid == sa.literal_column("papers.rowid"))
            .where(sa.text("papers_fts MATCH :match").bindparams(match=fts5_match(query)))
            .order_by(rank, PAPERS.c.announced.desc(), PAPERS.c.arxiv_id)
        )
    if published_only:
        statement = statement.where(PAPERS.c.announced.in_(public_dates()))
    statement = statement.limit(limit + 1).offset(offset)
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    return SearchPage(query, tuple(paper_from_row(r) for r in rows[:limit]), len(rows) > limit)
