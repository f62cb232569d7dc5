"""Hugging Face daily papers (``https://huggingface.co/api/daily_papers?date=YYYY-MM-DD``).

The answer is a JSON list of ``{"paper": {"id", "title", "summary", "authors": [{"name"}],
...}, ...}``. The ids are arXiv ids, so a paper that an arXiv feed also announced
is stored once. Configure it as a feed URL; ``{date}`` in the URL is replaced by
the issue date (see ``collect.expand_url``). Its papers are filed under the list's
date (the URL's ``date=``), else the run's date, so they join that day's issue.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

from newsletter.errors import SourceError
from newsletter.models import Paper
from newsletter.sources.arxiv_rss import entry_id
from newsletter.sources.authors import names_of
from newsletter.sources.base import (
    Document,
    EntryLog,
    EntryRejected,
    FeedContext,
    ParsedFeed,
    clean_abstract,
    clean_title,
    fold,
    made_papers,
)

KIND = "hf-daily"
DEFAULT_URL = "https://huggingface.co/api/daily_papers?date={date}"


def recognises(doc: Document) -> bool:
    """A JSON list of objects that each carry a ``paper`` object (or an empty list).

    An empty list is the daily list of a day with no papers: there is no other JSON
    source kind it could be.
    """
    data = doc.json
    return isinstance(data, list) and all(
        isinstance(item, dict) and isinstance(item.get("paper"), dict) for item in data[:20]
    )


def json_problem(doc: Document) -> str | None:
    """Why a JSON body is not a daily-papers list (e.g. the API's error object)."""
    data = doc.json
    if data is None or recognises(doc):
        return None
    if isinstance(data, dict):
        message = next((data[k] for k in ("error", "message", "detail") if data.get(k)), "")
        if message:
            return f"the API answered with an error: {fold(str(message))[:200]}"
    return "JSON that is not a Hugging Face daily papers list"


def list_date(url: str) -> dt.date | None:
    values = parse_qs(urlsplit(url).query).get("date", [])
    try:
        return dt.date.fromisoformat(values[0]) if values else None
    except ValueError:
        return None


def _paper(item: Any, label: str, date: dt.date, url: str, log: EntryLog) -> Paper:
    inner = item.get("paper") if isinstance(item, dict) else None
    if not isinstance(inner, dict):
        raise EntryRejected(f"{label}: not a paper object")
    raw_id = fold(str(inner.get("id") or ""))
    if not raw_id:
        raise EntryRejected(f"{label}: no id")
    arxiv_id, version = entry_id(raw_id, label)
    label = f"{label} ({arxiv_id})"
    title = clean_title(inner.get("title") or item.get("title"), label, log)
    if not title:
        raise EntryRejected(f"{label}: no title")
    abstract = clean_abstract(inner.get("summary") or item.get("summary"), label, log)
    if not abstract:
        raise EntryRejected(f"{label}: no abstract")
    authors = names_of(a for a in inner.get("authors") or [] if isinstance(a, dict))
    return Paper(
        arxiv_id=arxiv_id,
        version=version or 1,
        title=title,
        abstract=abstract,
        authors=authors,
        announced=date,
        announce_type="new",
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        source=url,
    )


def parse(doc: Document, ctx: FeedContext) -> ParsedFeed:
    items: list[Any] = doc.json
    date = list_date(ctx.url) or ctx.issue_date
    if date is None:
        raise SourceError(ctx.url, "no date: put date={date} in the URL")
    log = EntryLog()
    papers: dict[str, Paper] = {}
    labelled = ((item, f"entry {index}") for index, item in enumerate(items, start=1))
    for paper in made_papers(
        labelled, log, lambda item, label: _paper(item, label, date, ctx.url, log)
    ):
        log.merged += paper.arxiv_id in papers
        papers.setdefault(paper.arxiv_id, paper)
    return ParsedFeed(
        url=ctx.url,
        kind=KIND,
        announced=date,
        papers=tuple(papers.values()),
        seen=len(items),
        merged=log.merged,
        failed=tuple(log.failed),
        notes=tuple(log.notes),
    )
