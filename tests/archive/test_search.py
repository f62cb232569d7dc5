"""Full-text search: the index follows the papers table, hostile queries are plain words."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

from newsletter import search
from newsletter.app import Services
from newsletter.digest import build_digest
from newsletter.models import Paper
from newsletter.papers import PAPERS, papers_on, upsert_papers
from newsletter.preview import load_sample
from newsletter.search import MAX_QUERY_CHARS, MAX_TERMS, fts5_match, parse_query, search_papers

from .conftest import SAMPLE_DATE

#: Queries that are operators or syntax in FTS5, tsquery or SQL.
HOSTILE = [
    '"',
    "'",
    "''; DROP TABLE papers; --",
    'model" OR "1"="1',
    "*",
    "trans*",
    "NEAR(model language, 2)",
    "model NEAR language",
    "AND",
    "model AND OR NOT language",
    "(((",
    "model)",
    "-model",
    "- - -",
    "title:model",
    "abstract : model",
    "^model",
    "model^2",
    "\\",
    "model\\",
    "{title abstract}: model",
    "model & language | !vision <-> x",
    "%_%",
    "\x00model",
    "모델 학습",
]


def _titles(page: search.SearchPage) -> list[str]:
    return [p.title for p in page.papers]


@pytest.fixture
def indexed(services: Services, sample_issue: dt.date) -> Services:
    return services


def test_parse_query_keeps_only_words() -> None:
    query = parse_query('  NEAR("language" * models)  -x ^y: \\ ')
    assert query.terms == ("NEAR", "language", "models", "x", "y")
    assert not query.shortened
    assert fts5_match(query) == '"NEAR" "language" "models" "x" "y"'


def test_parse_query_cuts_long_input() -> None:
    long = parse_query("a" * 10_000)
    assert long.shortened and len(long.text) == MAX_QUERY_CHARS
    many = parse_query(" ".join(f"w{i}" for i in range(50)))
    assert many.shortened and len(many.terms) == MAX_TERMS
    assert parse_query("").empty and parse_query("*** ((( ").empty


def test_finds_by_title_abstract_author_with_stemming(indexed: Services) -> None:
    papers = papers_on(indexed.engine, SAMPLE_DATE)
    target = next(p for p in papers if "Memory" in p.title)
    title_hit = search_papers(indexed.engine, parse_query("ultra sparse memory"))
    assert target.title in _titles(title_hit)
    author = target.authors[0].split()[-1]
    assert target.title in _titles(search_papers(indexed.engine, parse_query(author)))
    # "transformers" finds papers that only say "transformer", on both databases.
    singular = search_papers(indexed.engine, parse_query("transformer"), limit=100)
    plural = search_papers(indexed.engine, parse_query("transformers"), limit=100)
    assert singular.papers and set(_titles(singular)) == set(_titles(plural))


def test_paging(indexed: Services) -> None:
    query = parse_query("learning")
    everything = search_papers(indexed.engine, query, limit=1000)
    assert len(everything.papers) >= 3 and not everything.has_more
    first = search_papers(indexed.engine, query, limit=2)
    second = search_papers(indexed.engine, query, limit=2, offset=2)
    assert first.has_more
    assert _titles(first) + _titles(second) == _titles(everything)[:4]


def test_only_papers_of_public_issues_by_default(services: Services) -> None:
    load_sample(services)
    query = parse_query("learning")
    assert search_papers(services.engine, query).papers == ()
    assert search_papers(services.engine, query, published_only=False).papers
    build_digest(services, SAMPLE_DATE)
    assert search_papers(services.engine, query).papers


def _paper(arxiv_id: str, title: str, day: dt.date = SAMPLE_DATE) -> Paper:
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract="An abstract about nothing in particular.",
        authors=("Ada Lovelace", "Alan Turing"),
        announced=day,
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
    )


def test_index_follows_inserts_updates_and_deletes(indexed: Services) -> None:
    engine = indexed.engine
    query = parse_query("zygomorphic")
    assert search_papers(engine, query).papers == ()
    upsert_papers(engine, [_paper("2411.99999", "Zygomorphic flowers in latent space")])
    assert _titles(search_papers(engine, query)) == ["Zygomorphic flowers in latent space"]
    papers = PAPERS
    with engine.begin() as conn:
        conn.execute(
            sa.update(papers)
            .where(papers.c.arxiv_id == "2411.99999")
            .values(title="Actinomorphic flowers")
        )
    assert search_papers(engine, query).papers == ()
    assert _titles(search_papers(engine, parse_query("actinomorphic"))) == ["Actinomorphic flowers"]
    with engine.begin() as conn:
        conn.execute(sa.delete(papers).where(papers.c.arxiv_id == "2411.99999"))
    assert search_papers(engine, parse_query("actinomorphic")).papers == ()


def _drop_index(svc: Services) -> None:
    with svc.engine.begin() as conn:
        if svc.engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE papers DROP COLUMN search_vector"))
        else:
            for trigger in ("papers_fts_ai", "papers_fts_ad", "papers_fts_au"):
                conn.execute(sa.text(f"DROP TRIGGER {trigger}"))
            conn.execute(sa.text("DROP TABLE papers_fts"))


def test_index_created_later_covers_papers_already_stored(indexed: Services) -> None:
    """A database made before search existed gets a full index from prepare_database."""
    from newsletter.app import prepare_database

    before = _titles(search_papers(indexed.engine, parse_query("learning"), limit=1000))
    _drop_index(indexed)
    prepare_database(indexed.engine)
    prepare_database(indexed.engine)  # idempotent
    after = _titles(search_papers(indexed.engine, parse_query("learning"), limit=1000))
    assert before and sorted(after) == sorted(before)


def test_sqlite_index_repaired_when_a_trigger_went_missing(sqlite_url: str) -> None:
    """A table rebuilt behind its back (e.g. a batch migration) gets a fresh index."""
    from newsletter.app import prepare_database
    from newsletter.db import make_engine

    engine = make_engine(sqlite_url)
    prepare_database(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER papers_fts_ai"))
    upsert_papers(engine, [_paper("2411.66666", "Quokka dynamics")])
    query = parse_query("quokka")
    assert search_papers(engine, query, published_only=False).papers == ()
    prepare_database(engine)
    assert _titles(search_papers(engine, query, published_only=False)) == ["Quokka dynamics"]
    engine.dispose()


def test_hostile_queries_are_plain_words(indexed: Services) -> None:
    stored = len(papers_on(indexed.engine, SAMPLE_DATE))
    for raw in HOSTILE:
        page = search_papers(indexed.engine, parse_query(raw))
        if page.query.terms == ("model",):
            assert page.papers, f"{raw!r} is the word 'model' and should find papers about models"
    # Nothing is lost: the table is intact and still searchable.
    assert len(papers_on(indexed.engine, SAMPLE_DATE)) == stored
    assert search_papers(indexed.engine, parse_query("learning")).papers


def test_very_long_query_is_cut_not_refused(indexed: Services) -> None:
    page = search_papers(indexed.engine, parse_query("learning " + "x" * 100_000))
    assert page.query.shortened
    assert page.papers == ()  # "learning" AND a 191-letter word: nothing, and no error


def test_search_sees_papers_with_quotes_and_operators_in_titles(indexed: Services) -> None:
    odd = dataclasses.replace(
        _paper("2411.88888", 'Why "NEAR" AND (OR) * breaks: a^2 \\ study'), abstract="x"
    )
    upsert_papers(indexed.engine, [odd])
    assert _titles(search_papers(indexed.engine, parse_query('"NEAR" AND (OR)'))) == [odd.title]
