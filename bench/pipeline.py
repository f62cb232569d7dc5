"""Time each pipeline stage for the demo sample and for a generated 2,000-paper day.

python -m bench.pipeline
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bench.generate import papers as generate_papers
from newsletter import classify, summarize
from newsletter.app import Services
from newsletter.chart import render_chart
from newsletter.delivery.memory import MemoryBackend
from newsletter.digest import build_digest, render_view
from newsletter.models import ReaderView
from newsletter.papers import papers_on, upsert_papers
from newsletter.preview import load_sample
from newsletter.sending import send
from newsletter.settings import Settings
from subscribers import readers

T = TypeVar("T")


def timed(label: str, fn: Callable[[], T], rows: list[tuple[str, float]]) -> T:
    start = time.perf_counter()
    result = fn()
    rows.append((label, time.perf_counter() - start))
    return result


def run(label: str, workdir: Path, count: int | None) -> None:
    svc = Services.build(Settings(database_url=f"sqlite:///{workdir / f'{label}.db'}", feeds=[]))
    rows: list[tuple[str, float]] = []
    if count is None:
        date = timed("collect (parse + store bundled sample)", lambda: load_sample(svc), rows)
    else:
        date = dt.date(2024, 11, 22)
        day = generate_papers(count, date)
        timed("collect (store)", lambda: upsert_papers(svc.engine, day), rows)
    papers = papers_on(svc.engine, date)
    classification = timed(
        "classify (rules)", lambda: classify.classify_rules(papers, svc.taxonomy), rows
    )
    grouped = classify.group(papers, classification, svc.taxonomy)
    timed(
        "summarize (extractive)",
        lambda: [
            summarize.extractive_report(svc.taxonomy.get(s), p, "ko") for s, p in grouped.items()
        ],
        rows,
    )
    counts = [
        (svc.taxonomy.get(s).name("ko"), len(p), svc.taxonomy.get(s).color)
        for s, p in grouped.items()
    ]
    timed("chart", lambda: render_chart(counts, "분야별 논문 수"), rows)
    digest = timed("digest (all of the above, stored)", lambda: build_digest(svc, date), rows)
    assert digest is not None
    view = ReaderView(digest.slugs, "ko")
    rendered = timed("render (all categories)", lambda: render_view(svc, digest, view), rows)
    readers.add_active(svc.engine, svc.taxonomy, "reader@example.com")
    timed("send (1 reader, memory backend)", lambda: send(svc, date, MemoryBackend()), rows)
    print(
        f"\n{label}: {len(papers)} papers, {len(digest.sections)} categories, "
        f"HTML {len(rendered.html.encode()) / 1024:.1f} KB"
    )
    for name, seconds in rows:
        print(f"  {name:<40} {seconds * 1000:9.1f} ms")
    svc.engine.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run("demo sample", Path(tmp), None)
        run("generated 2,000-paper day", Path(tmp), 2000)


if __name__ == "__main__":
    main()
