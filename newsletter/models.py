"""The plain values that flow between pipeline stages.

They are frozen so a stage cannot change what an earlier stage produced, and they
hold no database or network handles so every stage can be tested with literals.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import cached_property

from newsletter.statuses import SendOutcome


@dataclass(frozen=True)
class Paper:
    """One paper as announced by a feed (arXiv id without version is its identity)."""

    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    announced: dt.date
    primary_class: str = ""
    classes: tuple[str, ...] = ()
    version: int = 1
    announce_type: str = "new"
    abs_url: str = ""
    pdf_url: str = ""
    source: str = ""

    @property
    def short_authors(self) -> str:
        """'First Author et al.' as the e-mail lists sources."""
        if not self.authors:
            return ""
        if len(self.authors) == 1:
            return self.authors[0]
        return f"{self.authors[0]} et al."


@dataclass(frozen=True)
class NotablePaper:
    arxiv_id: str
    line: str


@dataclass(frozen=True)
class CategoryReport:
    """A category's report in the seed's five-part structure."""

    slug: str
    language: str
    themes: tuple[str, ...]
    keywords: tuple[str, ...]
    findings: tuple[str, ...]
    notable: tuple[NotablePaper, ...]
    conclusion: str
    covered: int
    total: int
    made_by: str = "extractive"


@dataclass(frozen=True)
class CategorySection:
    """One category of one day: its papers (most relevant first) and its report."""

    slug: str
    papers: tuple[Paper, ...]
    report: CategoryReport


@dataclass(frozen=True)
class Digest:
    """Everything needed to render any reader's variant of one day's issue."""

    date: dt.date
    language: str
    sections: tuple[CategorySection, ...]
    chart_png: bytes
    made_with: str
    paper_count: int
    #: Set for a weekly digest: the first day it covers (``date`` is the last).
    period_start: dt.date | None = None
    #: Set when a daily issue also carries earlier days that had no issue of their own
    #: (the service was down): the first of them.
    covers_from: dt.date | None = None
    #: What the model did, in full and in ``language`` ("" for offline or older issues);
    #: the footer shows it instead of the short ``made_with`` credit.
    made_note: str = ""

    def section(self, slug: str) -> CategorySection | None:
        return next((s for s in self.sections if s.slug == slug), None)

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(s.slug for s in self.sections)


@dataclass(frozen=True)
class ReaderView:
    """What one group of readers gets: their categories (in taxonomy order) and language."""

    categories: tuple[str, ...]
    language: str


@dataclass(frozen=True)
class InlineImage:
    content_id: str
    data: bytes
    filename: str
    mime_subtype: str = "png"


@dataclass(frozen=True)
class RenderedIssue:
    """One rendering shared by every reader of the same view.

    Per-reader links (and the daily issue's "For you" block) are left as the
    ``placeholders`` strings; the delivery step fills them in per recipient
    (substitutions or string replacement).
    """

    subject: str
    html: str
    text: str
    images: tuple[InlineImage, ...]
    placeholders: dict[str, str] = field(default_factory=dict)
    #: The readers' language (their view's), for what is made per reader.
    language: str = ""

    def personalize(self, values: dict[str, str]) -> tuple[str, str]:
        """The (html, text) for one reader, with every placeholder replaced; a value not
        given is empty (a reader with no "For you" block)."""
        html_parts, text_parts = self._parts
        return _fill(html_parts, values), _fill(text_parts, values)

    @cached_property
    def _parts(self) -> tuple[list[str], list[str]]:
        """html and text split at the markers once, so each reader costs one join.

        Odd items are placeholder names, even items the text between them.
        """
        if not self.placeholders:
            return [self.html], [self.text]
        names = {marker: name for name, marker in self.placeholders.items()}
        pattern = re.compile("(" + "|".join(re.escape(m) for m in names) + ")")

        def split(document: str) -> list[str]:
            parts = pattern.split(document)
            parts[1::2] = [names[marker] for marker in parts[1::2]]
            return parts

        return split(self.html), split(self.text)


def _fill(parts: list[str], values: dict[str, str]) -> str:
    filled = parts.copy()
    filled[1::2] = [values.get(name, "") for name in parts[1::2]]
    return "".join(filled)


@dataclass(frozen=True)
class OutgoingMessage:
    """One e-mail to one reader, as handed to a mail backend."""

    to: str
    subject: str
    html: str
    text: str
    images: tuple[InlineImage, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """What the backend knows about one recipient after a send."""

    to: str
    status: SendOutcome
    message_id: str = ""
    error: str = ""
