"""How the e-mail scales: MJML compiles happen per category set, not per reader.

python -m bench.render

Prints the time of one MJML compile + CSS inline (cold, then warm), then the time
to produce the messages for 10,000 readers spread over 50 category sets: the 50
renders, and per reader the signed links plus the personalised (html, text) that
the SMTP and file backends send (SendGrid substitutes the links server-side).
A full MIME message for 200 of the readers is timed separately for comparison.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.generate import papers as generate_papers
from newsletter import classify, summarize
from newsletter.categories import Taxonomy, load_taxonomy
from newsletter.chart import render_chart
from newsletter.delivery.base import Envelope, MessageBatch
from newsletter.delivery.mime import build_mime
from newsletter.html_build import compile_mjml
from newsletter.models import CategorySection, Digest, ReaderView, RenderedIssue
from newsletter.render import Links, issue_mjml, render_issue
from subscribers.tokens import Signer, reader_links

T = TypeVar("T")
PAPERS = 300
READERS = 10_000
SETS = 50
MIME_SAMPLE = 200
BASE_URL = "https://news.example.org"


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def day(taxonomy: Taxonomy, language: str) -> Digest:
    """A generated 300-paper day with offline reports and its chart."""
    date = dt.date(2024, 11, 22)
    papers = generate_papers(PAPERS, date)
    grouped = classify.group(papers, classify.classify_rules(papers, taxonomy), taxonomy)
    sections = tuple(
        CategorySection(slug, ps, summarize.extractive_report(taxonomy.get(slug), ps, language))
        for slug, ps in grouped.items()
    )
    counts = [
        (taxonomy.get(s.slug).name(language), len(s.papers), taxonomy.get(s.slug).color)
        for s in sections
    ]
    chart = render_chart(counts, "분야별 논문 수")
    return Digest(date, language, sections, chart, "offline", len(papers))


def category_sets(slugs: tuple[str, ...], rng: random.Random) -> list[tuple[str, ...]]:
    """``SETS`` distinct subsets in taxonomy order, the full set among them."""
    sets: set[tuple[str, ...]] = {slugs}
    while len(sets) < SETS:
        chosen = set(rng.sample(slugs, rng.randint(1, len(slugs))))
        sets.add(tuple(s for s in slugs if s in chosen))
    return sorted(sets)


def main() -> None:
    rng = random.Random(11)
    taxonomy = load_taxonomy()
    digest = day(taxonomy, "ko")
    links = Links(archive_url=f"{BASE_URL}/issues/{digest.date.isoformat()}")
    slugs = tuple(s for s in taxonomy.slugs if digest.section(s))

    # One category set of typical size for the compile + inline figures.
    typical = ReaderView(slugs[:4], "ko")
    source = issue_mjml(digest, typical, taxonomy, links)
    _, cold = timed(lambda: compile_mjml(source))
    warm = statistics.median(timed(lambda: compile_mjml(source))[1] for _ in range(7))
    html = compile_mjml(source)

    views = [ReaderView(s, "ko") for s in category_sets(slugs, rng)]
    renders, render_time = timed(lambda: [render_issue(digest, v, taxonomy, links) for v in views])
    signer = Signer("bench-secret-key")
    readers = [(reader_id, renders[reader_id % SETS]) for reader_id in range(1, READERS + 1)]

    values, links_time = timed(
        lambda: [reader_links(signer, BASE_URL, reader_id) for reader_id, _ in readers]
    )

    def personalise() -> int:
        size = 0
        for (_, rendered), links_of_reader in zip(readers, values, strict=True):
            html, text = rendered.personalize(links_of_reader)
            size += len(html) + len(text)
        return size

    _, fill_time = timed(personalise)
    reader_time = links_time + fill_time

    def mime(sample: list[tuple[int, RenderedIssue]]) -> int:
        size = 0
        for reader_id, rendered in sample:
            envelope = Envelope(
                f"reader{reader_id}@example.com", reader_links(signer, BASE_URL, reader_id)
            )
            batch = MessageBatch(rendered, (envelope,))
            size += len(build_mime(batch, envelope, "news@example.org", "News").as_bytes())
        return size

    _, mime_time = timed(lambda: mime(readers[:MIME_SAMPLE]))

    sizes = [len(r.html.encode()) for r in renders]
    total = render_time + reader_time
    print(f"{PAPERS}-paper day, {len(digest.sections)} categories, language ko")
    print(
        f"one MJML compile + CSS inline ({len(slugs[:4])} categories, "
        f"{len(html.encode()) / 1024:.0f} KB HTML): "
        f"cold {cold * 1000:.0f} ms, warm {warm * 1000:.1f} ms"
    )
    print(
        f"{SETS} category sets rendered (Jinja + MJML + inline + text, size fallback): "
        f"{render_time:.2f} s, {render_time / SETS * 1000:.0f} ms each; "
        f"HTML {min(sizes) / 1024:.0f}-{max(sizes) / 1024:.0f} KB"
    )
    print(
        f"{READERS:,} readers: signed links {links_time:.2f} s "
        f"({links_time / READERS * 1e6:.0f} µs each), personalised html/text {fill_time:.2f} s "
        f"({fill_time / READERS * 1e6:.0f} µs each)"
    )
    print(
        f"messages for {READERS:,} readers over {SETS} category sets: {total:.2f} s; "
        f"renders {render_time / total:.0%} of it, readers {reader_time / total:.0%} "
        f"(render time / reader time = {render_time / reader_time:.1f})"
    )
    print(
        f"for comparison, a full MIME message (SMTP/file backends): "
        f"{mime_time / MIME_SAMPLE * 1000:.2f} ms each, "
        f"{mime_time / MIME_SAMPLE * READERS:.1f} s for {READERS:,} readers"
    )


if __name__ == "__main__":
    main()
