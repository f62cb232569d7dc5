"""Each reader's "For you" values during a send, a batch of readers at a time.

The day's paper matrix (``foryou.Day``) is built once per send, on the first batch
that needs it; each batch then costs one query for its readers' interests
(``subscribers.interests.interests_for``) and one ranking. The rendering is never
touched: the block goes into the ``for_you_html``/``for_you_text`` values of each
reader's envelope, like their signed links.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from newsletter.app import Services
from newsletter.foryou import Day, Pick, paper_text, reader_texts
from newsletter.foryou_block import BlockMaker
from newsletter.foryou_vectors import Embedder
from newsletter.models import CategorySection, Paper, RenderedIssue
from subscribers.interests import Interests, interests_for

log = logging.getLogger(__name__)

HTML, TEXT = "for_you_html", "for_you_text"
#: Readers whose interests are read and ranked at once. A reader may keep 500 liked
#: papers with abstracts (a few hundred KB), so a send batch of 1,000 is read in slices.
READ_SLICE = 200


def categories_of(sections: Sequence[CategorySection]) -> tuple[list[Paper], dict[str, list[str]]]:
    """(papers, paper id -> category slugs) from a digest's sections, in section order."""
    papers: dict[str, Paper] = {}
    categories: dict[str, list[str]] = {}
    for section in sections:
        for paper in section.papers:
            papers.setdefault(paper.arxiv_id, paper)
            categories.setdefault(paper.arxiv_id, []).append(section.slug)
    return list(papers.values()), categories


class ForYou:
    """The "For you" of one day, for any number of batches (one send, or one reader)."""

    def __init__(
        self, svc: Services, sections: Sequence[CategorySection], date: dt.date | None = None
    ) -> None:
        self.svc = svc
        self.sections = sections
        self._day: Day | None = None
        #: Set while embeddings rank (NEWSLETTER_EMBEDDING_MODEL); dropped when the model fails.
        self.embedder = (
            Embedder(svc.engine, svc.settings, date) if svc.settings.embedding_model else None
        )
        self._makers: dict[str, BlockMaker] = {}
        #: Readers ranked and blocks made, for the operator's log line.
        self.ranked = 0
        self.blocks = 0

    def day(self) -> Day:
        if self._day is None:
            papers, categories = categories_of(self.sections)
            self._day = Day(papers, categories, self._paper_vectors(papers))
        return self._day

    def _paper_vectors(self, papers: Sequence[Paper]) -> Mapping[str, Any] | None:
        """Embeddings of the day's papers (None: the offline model ranks, all send long)."""
        if self.embedder is None:
            return None
        vectors = self.embedder.vectors([paper_text(p) for p in papers])
        if vectors is None:
            self.embedder = None
        return vectors

    def _reader_vectors(self, interests: Mapping[int, Interests]) -> Mapping[str, Any] | None:
        """Embeddings of a batch's interests (None: this batch ranks with BM25)."""
        if self.embedder is None:
            return None
        return self.embedder.vectors([t for i in interests.values() for t in reader_texts(i)])

    def rank(
        self, interests: Mapping[int, Interests], categories: Sequence[str]
    ) -> dict[int, list[Pick]]:
        """Picks for readers of ``categories`` (NEWSLETTER_FOR_YOU_SCOPE=all: any category)."""
        readers = {i: v for i, v in interests.items() if not v.is_empty()}
        if not readers:
            return {}
        allowed = None
        if self.svc.settings.for_you_scope == "chosen":
            chosen = set(categories)
            allowed = {i: chosen for i in readers}
        day = self.day()
        self.ranked += len(readers)
        return day.rank(readers, allowed, vectors=self._reader_vectors(readers))

    def values(
        self,
        rendered: RenderedIssue,
        categories: Sequence[str],
        readers: Sequence[tuple[int, str]],
    ) -> dict[int, dict[str, str]]:
        """subscriber id -> {for_you_html, for_you_text} for ``readers`` (id, manage url)
        of ``rendered``; nothing when the rendering has no such placeholders (a weekly
        digest, the empty-day note)."""
        if HTML not in rendered.placeholders:
            return {}
        picks: dict[int, list[Pick]] = {}
        for start in range(0, len(readers), READ_SLICE):
            ids = [sid for sid, _ in readers[start : start + READ_SLICE]]
            picks.update(self.rank(interests_for(self.svc.engine, ids), categories))
        language = rendered.language or self.svc.settings.language
        if language not in self._makers:
            self._makers[language] = BlockMaker(self.svc.taxonomy, language)
        maker = self._makers[language]
        out: dict[int, dict[str, str]] = {}
        for sid, manage_url in readers:
            mine = picks.get(sid)
            if mine is None:
                html, text = maker.invitation(manage_url)
            elif block := maker.block(mine, manage_url):
                self.blocks += 1
                html, text = block.html, block.text
            else:
                html, text = maker.nothing_today(manage_url)
            out[sid] = {HTML: html, TEXT: text}
        return out
