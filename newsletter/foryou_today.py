"""A reader's "For you" block of the latest issue, for the manage page.

The page shows it so a reader can tune their interests and see the effect at once.
It only reads: the latest issue whose papers are classified (its stored
classification and window), the reader's interests and categories; it never
classifies, summarises or calls a model, so a page view costs a ranking of one
reader (the day's matrix is built per call: ~0.3 s for 2,000 papers). With
NEWSLETTER_EMBEDDING_MODEL it ranks by embeddings when every vector is in the cache
(the send embedded the papers; the reader's changed interests are embedded by the
next send), and with BM25 until then: the web process never loads litellm.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter import llm_store
from newsletter.categories import load_taxonomy
from newsletter.db import IssueRow, table_of
from newsletter.foryou import Day, paper_text, reader_texts
from newsletter.foryou_block import ForYouBlock, render_block
from newsletter.issue_state import IssueContent
from newsletter.models import Paper
from newsletter.papers import papers_between
from newsletter.settings import Settings
from newsletter.statuses import IssueStatus
from subscribers.interests import Interests, get_interests
from subscribers.readers import get_by_id

log = logging.getLogger(__name__)

ISSUES = table_of(IssueRow)
#: Issues whose papers are sorted into categories: what a block can be made of.
_CLASSIFIED = (
    IssueStatus.CLASSIFIED,
    IssueStatus.SUMMARIZED,
    IssueStatus.RENDERED,
    IssueStatus.SENDING,
    IssueStatus.SENT,
)


def latest_day(engine: Engine) -> tuple[dt.date, IssueContent] | None:
    """The newest issue whose classification is stored, with its content."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(ISSUES.c.date, ISSUES.c.content)
            .where(ISSUES.c.status.in_(_CLASSIFIED))
            .order_by(ISSUES.c.date.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    content = IssueContent.load(row.content)
    return (row.date, content) if content.classification is not None else None


def block_for(engine: Engine, settings: Settings, subscriber_id: int) -> ForYouBlock | None:
    """The block ``subscriber_id`` gets (or got) in the latest issue; None when they have
    no interests, there is no classified issue yet, or nothing matched their interests.

    Its links to the interests form are the page's own anchor (``#interests``).
    """
    reader = get_by_id(engine, subscriber_id)
    interests = get_interests(engine, subscriber_id)
    if reader is None or interests is None or interests.is_empty():
        return None
    latest = latest_day(engine)
    if latest is None:
        return None
    date, content = latest
    classification = content.classification or {}
    after = content.window(date) or date - dt.timedelta(days=1)
    papers = [p for p in papers_between(engine, after, date) if classification.get(p.arxiv_id)]
    if not papers:
        return None
    allowed = None if settings.for_you_scope == "all" else {subscriber_id: set(reader.categories)}
    vectors = _cached_vectors(engine, settings, papers, interests)
    day = Day(papers, {p.arxiv_id: classification[p.arxiv_id] for p in papers}, vectors)
    picks = day.rank({subscriber_id: interests}, allowed, vectors=vectors)[subscriber_id]
    taxonomy = load_taxonomy(settings.categories_file)
    return render_block(picks, taxonomy, reader.language, "")


def _cached_vectors(
    engine: Engine, settings: Settings, papers: Sequence[Paper], interests: Interests
) -> dict[str, Any] | None:
    """Every needed embedding from the cache, or None (not configured, or one missing)."""
    import numpy as np

    if not settings.embedding_model:
        return None
    texts = [paper_text(p) for p in papers] + reader_texts(interests)
    hashes = {t: llm_store.text_hash(t) for t in texts}
    stored = llm_store.cached_vectors(engine, settings.embedding_model, list(hashes.values()))
    if len(stored) < len(set(hashes.values())):
        return None
    return {t: np.frombuffer(stored[h], dtype="<f4") for t, h in hashes.items()}
