"""The public archive at size: full-text search against a LIKE scan, index upkeep, page times.

python -m bench.archive [--days 40] [--per-day 500]

Runs on SQLite (a temp file) and, when it answers, on the local PostgreSQL (a
throwaway schema). Prints medians in milliseconds and the ratios that matter.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sqlalchemy as sa
from fastapi.testclient import TestClient

from bench.generate import papers as generate_papers
from newsletter.app import Services
from newsletter.digest import build_digest
from newsletter.issues import ensure_issue, update_issue
from newsletter.models import Paper
from newsletter.papers import PAPERS, upsert_papers
from newsletter.search import parse_query, search_papers
from newsletter.settings import load_settings
from subscribers.web_app import create_app

PG_URL = os.environ.get(
    "NEWSLETTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
START = dt.date(2024, 1, 1)
QUERIES = ["language model", "backdoor attack", "robust study 1234", "'; DROP TABLE -- NEAR(*)"]


def median_ms(fn: Callable[[], object], repeat: int = 15) -> float:
    fn()  # warm caches and plans
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def corpus(days: int, per_day: int) -> list[Paper]:
    out = []
    for d in range(days):
        date = START + dt.timedelta(days=d)
        for i, paper in enumerate(generate_papers(per_day, date, seed=d)):
            out.append(dataclasses.replace(paper, arxiv_id=f"{2400 + d:04d}.{i:05d}"))
    return out


@contextmanager
def databases(workdir: Path) -> Iterator[Iterator[tuple[str, str]]]:
    schemas: list[str] = []
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")

    def urls() -> Iterator[tuple[str, str]]:
        yield "sqlite", f"sqlite:///{workdir / 'archive.db'}"
        try:
            with admin.connect() as conn:
                schema = f"bench_{uuid.uuid4().hex[:10]}"
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                schemas.append(schema)
        except sa.exc.OperationalError:
            print("PostgreSQL is not reachable: skipped")
            return
        yield "postgresql", f"{PG_URL}?options=-csearch_path%3D{schema}"

    try:
        yield urls()
    finally:
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def publish(svc: Services, papers: list[Paper]) -> None:
    """Every day an issue as build_digest leaves it; only the newest is really built."""
    days = sorted({p.announced for p in papers})
    for date in days[:-1]:
        issue = ensure_issue(svc.engine, date)
        assert issue.id is not None
        ids = [p.arxiv_id for p in papers if p.announced == date]
        content = {"classification": {i: ["nlp"] for i in ids}, "reports": {"ko": {}}}
        update_issue(
            svc.engine,
            issue.id,
            content=json.dumps(content),
            status="sent",
            paper_count=len(ids),
        )
    build_digest(svc, days[-1])


def like_scan(svc: Services, words: list[str]) -> int:
    papers = PAPERS
    clauses = [
        sa.or_(papers.c.title.ilike(f"%{w}%"), papers.c.abstract.ilike(f"%{w}%")) for w in words
    ]
    query = sa.select(papers.c.arxiv_id).where(*clauses).limit(21)
    with svc.engine.connect() as conn:
        return len(conn.execute(query).all())


def drop_index(svc: Services) -> None:
    with svc.engine.begin() as conn:
        if svc.engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE papers DROP COLUMN search_vector"))
        else:
            for trigger in ("papers_fts_ai", "papers_fts_ad", "papers_fts_au"):
                conn.execute(sa.text(f"DROP TRIGGER {trigger}"))
            conn.execute(sa.text("DROP TABLE papers_fts"))


def run(name: str, url: str, papers: list[Paper]) -> None:
    print(f"\n== {name}: {len(papers):,} papers over {len({p.announced for p in papers})} days")
    settings = load_settings(database_url=url, feeds=[], mail_backend="memory")

    # Index upkeep: the same inserts into a table without and with the search index.
    plain = Services.build(settings)
    drop_index(plain)
    sample = papers[:5000]
    start = time.perf_counter()
    upsert_papers(plain.engine, sample)
    without = time.perf_counter() - start
    with plain.engine.begin() as conn:
        conn.execute(sa.delete(PAPERS))
    plain.engine.dispose()
    svc = Services.build(settings)  # prepare_database puts the index back
    start = time.perf_counter()
    upsert_papers(svc.engine, sample)
    indexed = time.perf_counter() - start
    print(
        f"store {len(sample):,} papers: {without * 1000:.0f} ms without the index, "
        f"{indexed * 1000:.0f} ms with it (x{indexed / without:.2f})"
    )
    upsert_papers(svc.engine, papers[5000:])
    publish(svc, papers)

    for raw in QUERIES:
        query = parse_query(raw)
        fts = median_ms(partial(search_papers, svc.engine, query))
        hits = len(search_papers(svc.engine, query).papers)
        words = list(query.terms)
        like = median_ms(partial(like_scan, svc, words), repeat=5)
        print(
            f"search {raw!r:32} {fts:7.2f} ms ({hits:2d} hits) | LIKE scan {like:8.2f} ms "
            f"| LIKE/FTS x{like / fts:.1f}"
        )

    newest = max(p.announced for p in papers).isoformat()
    with TestClient(create_app(svc)) as client:
        for path in (
            "/issues",
            "/issues?page=2",
            f"/issues/{newest}",
            f"/issues/{newest}/chart.png",
            "/feed.xml",
            "/search?q=language+model",
        ):
            assert client.get(path).status_code == 200, path
            print(f"GET {path:28} {median_ms(partial(client.get, path)):7.2f} ms")
    svc.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--per-day", type=int, default=500)
    args = parser.parse_args()
    papers = corpus(args.days, args.per_day)
    with tempfile.TemporaryDirectory() as tmp, databases(Path(tmp)) as urls:
        for name, url in urls:
            run(name, url, papers)


if __name__ == "__main__":
    main()
