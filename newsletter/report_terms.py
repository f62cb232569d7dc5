"""Themes and keywords taken from the papers' own words, with no model.

The offline report uses them for two of its parts, and so does the last rung of a
model's report (``newsletter.report_notes``), where a small model writes the
notes and the conclusion but is not asked for lists it tends to copy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from newsletter.categories import Category
from newsletter.models import Paper

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]{2,}")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "that",
        "the",
        "their",
        "this",
        "to",
        "towards",
        "using",
        "via",
        "we",
        "what",
        "when",
        "which",
        "while",
        "with",
        "without",
        "new",
        "based",
        "toward",
        "approach",
        "method",
        "methods",
        "model",
        "models",
        "learning",
        "large",
        "study",
        "through",
        "under",
    ]
)


def category_themes(papers: Sequence[Paper], category: Category) -> list[str]:
    """Taxonomy keywords of ``category`` that occur in the papers, most frequent first."""
    counts: Counter[str] = Counter()
    for paper in papers:
        haystack = f"{paper.title} {paper.abstract}".lower()
        for keyword in category.keywords:
            if keyword in haystack:
                counts[keyword] += 1
    return [k for k, _ in counts.most_common(5)]


def title_keywords(papers: Sequence[Paper]) -> list[str]:
    """The most frequent words of the titles, common words left out."""
    counts: Counter[str] = Counter()
    for paper in papers:
        words = {w.lower() for w in _WORD.findall(paper.title)} - _STOP
        counts.update(words)
    return [w for w, _ in counts.most_common(6)]
