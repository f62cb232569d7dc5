"""Seeing an issue without sending it: a preview of one reader's mail, and the offline demo."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from newsletter.app import Services
from newsletter.collecting import collect_if_missing, resolve_date
from newsletter.delivery.base import Envelope, MessageBatch
from newsletter.digest import build_digest, render_view
from newsletter.errors import NewsletterError, RenderError
from newsletter.foryou_mail import ForYou
from newsletter.models import ReaderView
from newsletter.papers import upsert_papers
from newsletter.render import Links, render_issue
from newsletter.sending import SendReport, list_headers, send
from newsletter.settings import Settings
from newsletter.sources.collect import parse_feed
from subscribers.readers import add_active


def load_sample(svc: Services) -> dt.date:
    """Store the bundled recorded arXiv feed (the demo's offline source); returns its date."""
    from importlib import resources

    content = resources.files("newsletter").joinpath("data/sample-arxiv.xml").read_bytes()
    feed = parse_feed(content, "bundled-sample", svc.settings.include_replacements)
    upsert_papers(svc.engine, feed.papers)
    assert feed.announced is not None
    return feed.announced


def preview(
    svc: Services,
    date: dt.date | None,
    out_dir: Path,
    categories: Sequence[str] | None = None,
    language: str | None = None,
    *,
    collect_if_empty: bool = True,
    subscriber_id: int | None = None,
) -> list[Path]:
    """Write what a reader of these categories and language would get, without sending.

    With ``subscriber_id`` the mail carries that reader's "For you" block (ranked as the
    send would); without, a reader with no interests (the invitation line).
    """
    from newsletter.delivery.file import write_atomic
    from newsletter.delivery.mime import build_mime

    language = language or svc.settings.language
    wanted = svc.taxonomy.validate(categories) if categories else svc.taxonomy.slugs
    if collect_if_empty:
        collect_if_missing(svc, date)
    date = resolve_date(svc, date)
    if date is None:
        raise NewsletterError("no papers are stored yet; run `newsletter collect` first")
    digest = build_digest(svc, date, language)
    if digest is None:
        raise NewsletterError(f"no papers were announced on {date}; try another --date")
    view = ReaderView(svc.taxonomy.order([s for s in wanted if s in digest.slugs]), language)
    if not view.categories:
        raise RenderError(
            f"none of {', '.join(wanted)} has papers on {date}; that reader gets no e-mail today"
        )
    rendered = render_view(svc, digest, view)
    suffix = f"-{'-'.join(wanted)}" if categories else ""
    stem = f"issue-{date.isoformat()}{suffix}"
    # The .html file sits beside the chart PNG, so a browser shows it without the cid: part.
    for_browser = render_issue(
        digest,
        view,
        svc.taxonomy,
        Links(archive_url=svc.archive_url(date), chart_url=f"{stem}.png"),
    )
    sample_links = {
        "manage_url": f"{svc.settings.base_url}/manage/PREVIEW",
        "unsubscribe_url": f"{svc.settings.base_url}/unsubscribe/PREVIEW",
    }
    reader = -1 if subscriber_id is None else subscriber_id
    personal = ForYou(svc, digest.sections).values(
        rendered, view.categories, [(reader, sample_links["manage_url"])]
    )
    sample_links = {**sample_links, **personal.get(reader, {})}
    html, text = for_browser.personalize(sample_links)
    out_dir.mkdir(parents=True, exist_ok=True)
    envelope = Envelope("reader@example.com", sample_links, list_headers(sample_links))
    eml = build_mime(
        MessageBatch(rendered, (envelope,)),
        envelope,
        svc.settings.from_email,
        svc.settings.from_name,
    )
    outputs = {
        out_dir / f"{stem}.html": html.encode("utf-8"),
        out_dir / f"{stem}.txt": text.encode("utf-8"),
        out_dir / f"{stem}.png": digest.chart_png,
        out_dir / f"{stem}.eml": eml.as_bytes(),
    }
    for path, data in outputs.items():
        write_atomic(path, data)
    return list(outputs)


@dataclass(frozen=True)
class DemoResult:
    date: dt.date
    files: list[Path]
    report: SendReport


def demo(out_dir: Path, settings: Settings | None = None) -> DemoResult:
    """Every stage on the bundled sample, in a throwaway database; the configured model
    (NEWSLETTER_LLM_MODEL) classifies and writes when one is set, else offline."""
    from newsletter.delivery.memory import MemoryBackend

    workdir = Path(tempfile.mkdtemp(prefix="newsletter-demo-"))
    try:
        base = settings or Settings()
        demo_settings = base.model_copy(
            update={
                "database_url": f"sqlite:///{workdir / 'demo.db'}",
                "mail_backend": "memory",
            }
        )
        svc = Services.build(demo_settings)
        date = load_sample(svc)
        add_active(
            svc.engine,
            svc.taxonomy,
            "reader@example.com",
            None,
            demo_settings.language,
            source="demo",
        )
        files = preview(svc, date, out_dir, collect_if_empty=False)
        backend = MemoryBackend(demo_settings.from_email, demo_settings.from_name)
        report = send(svc, date, backend, dry_run=False)
        if backend.outbox:
            from newsletter.delivery.file import write_atomic

            eml = out_dir / f"issue-{date.isoformat()}.eml"
            write_atomic(eml, backend.outbox[0].as_bytes())
        svc.engine.dispose()
        return DemoResult(date, files, report)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
