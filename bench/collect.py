"""Collection speed: a generated 2,000-item arXiv feed, fetched from loopback, parsed, stored.

Run: ``python -m bench.collect [N]``. Prints papers/s end to end, the share of the
time spent inside feedparser, the time to store the papers into SQLite (fresh,
then again when every paper is already known), and our own extraction per item in
CPU time (best of several rounds: the figure to compare across changes on a busy
machine, where wall-clock phases vary by half).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape

from sqlalchemy.engine import Engine

from bench.generate import papers as generate_papers
from newsletter.app import prepare_database
from newsletter.db import make_engine
from newsletter.models import Paper
from newsletter.sources.base import Document, FeedContext
from newsletter.sources.collect import collect_all, parse_document
from newsletter.sources.dedup import store_papers
from newsletter.sources.fetch import Fetcher
from tests.fakes.feeds import FeedServer

PUB = "Fri, 22 Nov 2024 00:00:00 -0500"
KINDS = ("new", "new", "new", "cross", "replace")


def arxiv_feed(items: list[Paper]) -> bytes:
    """An arXiv RSS document in the real format (namespaces, guid, announce type, creator)."""
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" version="2.0">\n<channel>\n'
        "<title>cs.AI+cs.CL+cs.CV+cs.LG updates on arXiv.org</title>\n"
        "<link>http://rss.arxiv.org/rss/cs.AI+cs.CL+cs.CV+cs.LG</link>\n"
        "<description>updates on the arXiv.org e-print archive.</description>\n"
        f"<pubDate>{PUB}</pubDate>\n"
    ]
    for i, p in enumerate(items):
        kind = KINDS[i % len(KINDS)]
        version = 2 if kind == "replace" else 1
        cats = "".join(f"<category>{c}</category>" for c in dict.fromkeys(p.classes))
        parts.append(
            f"<item><title>{escape(p.title)}</title><link>{p.abs_url}</link>"
            f"<description>arXiv:{p.arxiv_id}v{version} Announce Type: {kind} \n"
            f"Abstract: {escape(p.abstract)}</description>"
            f'<guid isPermaLink="false">oai:arXiv.org:{p.arxiv_id}v{version}</guid>{cats}'
            f"<pubDate>{PUB}</pubDate><arxiv:announce_type>{kind}</arxiv:announce_type>"
            f"<dc:creator>{escape(', '.join(p.authors))}</dc:creator></item>\n"
        )
    parts.append("</channel>\n</rss>\n")
    return "".join(parts).encode("utf-8")


def phases(url: str, engine: Engine) -> dict[str, float]:
    """One collection, phase by phase: fetch, feedparser, our extraction, store, re-store."""
    times: dict[str, float] = {}
    with Fetcher(timeout=30, attempts=1) as fetcher:
        started = time.perf_counter()
        fetched = fetcher.fetch(url)
        times["fetch"] = time.perf_counter() - started
    doc = Document(url, fetched.content)
    started = time.perf_counter()
    doc.feed  # noqa: B018  (feedparser alone)
    times["feedparser"] = time.perf_counter() - started
    started = time.perf_counter()
    # Replacements kept (marked updated) so that all N items are stored.
    feed = parse_document(doc, FeedContext(url, include_replacements=True))
    times["extraction"] = time.perf_counter() - started
    started = time.perf_counter()
    stored = store_papers(engine, feed.papers)
    times["store"] = time.perf_counter() - started
    started = time.perf_counter()
    again = store_papers(engine, feed.papers)
    times["store again"] = time.perf_counter() - started
    assert stored.new == len(feed.papers) and again.new == 0
    times["papers"] = len(feed.papers)
    return times


def extraction_cpu(content: bytes, rounds: int = 20) -> float:
    """Seconds of CPU our extraction takes for the whole feed (feedparser excluded), best of N."""
    doc = Document("http://127.0.0.1/rss/cs.AI", content)
    doc.feed  # noqa: B018  (parsed once, outside the measurement)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        parse_document(doc, FeedContext(doc.url, include_replacements=True))
        best = min(best, time.process_time() - started)
    return best


def main(count: int = 2000, rounds: int = 3) -> None:
    content = arxiv_feed(generate_papers(count))
    print(f"feed: {count} items ({count // len(KINDS)} replacements), {len(content) / 1e6:.1f} MB")
    runs = []
    with tempfile.TemporaryDirectory() as tmp, FeedServer() as server:
        url = server.serve("/rss/cs.AI+cs.CL+cs.CV+cs.LG", content)
        for round_no in range(rounds):
            engine = make_engine(f"sqlite:///{Path(tmp) / f'bench{round_no}.db'}")
            prepare_database(engine)
            runs.append(phases(url, engine))
            engine.dispose()
        engine = make_engine(f"sqlite:///{Path(tmp) / 'end-to-end.db'}")
        prepare_database(engine)
        with Fetcher(timeout=30, attempts=1) as fetcher:
            started = time.perf_counter()
            report = collect_all(engine, [url], fetcher=fetcher)
            end_to_end = time.perf_counter() - started
        engine.dispose()
    best = min(
        runs, key=lambda r: sum(v for k, v in r.items() if k not in ("papers", "store again"))
    )
    papers = int(best["papers"])
    total = best["fetch"] + best["feedparser"] + best["extraction"] + best["store"]
    print(f"best of {rounds} rounds, {papers} papers kept (replacements included):")
    for name in ("fetch", "feedparser", "extraction", "store"):
        print(f"  {name:<11} {best[name]:7.3f} s  {best[name] / total:5.0%}")
    print(
        f"  {'total':<11} {total:7.3f} s  -> {papers / total:,.0f} papers/s, "
        f"{count / total:,.0f} feed items/s"
    )
    print(f"share of time in feedparser: {best['feedparser'] / total:.0%}")
    print(
        f"store into SQLite: {best['store']:.3f} s for {papers} papers "
        f"({papers / best['store']:,.0f} papers/s); re-run with every paper known: "
        f"{best['store again']:.3f} s, 0 inserted"
    )
    print(
        f"collect_all end to end (one run, default settings, replacements skipped): "
        f"{end_to_end:.3f} s, {report.new} new papers, {report.new / end_to_end:,.0f} papers/s"
    )
    cpu = extraction_cpu(content)
    print(f"extraction per item (CPU, best of 20): {cpu / count * 1e6:.1f} µs")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
