"""The keyword rules: papers -> categories with no model (offline mode and the fallback).

Rules score each category by the paper's arXiv classes and by taxonomy keywords
in its title and abstract. They are also the yardstick a model must beat on the
calibration set before its classification is trusted (``newsletter.llm_quality``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from newsletter.categories import FALLBACK_SLUG, Category, Taxonomy
from newsletter.models import Paper

#: Each paper goes to at most this many categories (the seed lists a paper once or twice).
MAX_CATEGORIES = 2


@lru_cache(maxsize=512)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + re.escape(keyword) + r"(?:s|es)?(?![\w])", re.I)


def _has(keyword: str, text: str, lowered: str) -> bool:
    # The substring test is cheap and rules out most keywords before the regex runs.
    return keyword in lowered and _keyword_pattern(keyword).search(text) is not None


def score(paper: Paper, category: Category) -> float:
    """How strongly ``paper`` belongs to ``category``; 0 means not at all.

    Classes count most (3 for the primary, 0.5 per cross-list); each taxonomy
    keyword adds 2 when in the title and 1 when in the abstract.
    """
    points = 0.0
    if paper.primary_class in category.arxiv_classes:
        points += 3
    points += sum(1 for c in paper.classes[1:] if c in category.arxiv_classes) * 0.5
    title, abstract = paper.title, paper.abstract[:1500]
    title_lower, abstract_lower = title.lower(), abstract.lower()
    for keyword in category.keywords:
        points += 2 * _has(keyword, title, title_lower) + _has(keyword, abstract, abstract_lower)
    return points


def scores(paper: Paper, taxonomy: Taxonomy) -> list[tuple[float, str]]:
    """(points, slug) for every category but the fallback, best first."""
    return sorted(
        ((score(paper, c), c.slug) for c in taxonomy.categories if c.slug != FALLBACK_SLUG),
        key=lambda pair: -pair[0],
    )


def classify_one(paper: Paper, taxonomy: Taxonomy) -> tuple[str, ...]:
    """The best one or two categories; a close runner-up (>= 80 %) is kept as the second."""
    scored = scores(paper, taxonomy)
    if not scored or scored[0][0] <= 0:
        return (FALLBACK_SLUG,)
    best = scored[0][0]
    chosen = [slug for points, slug in scored[:MAX_CATEGORIES] if points >= best * 0.8]
    return taxonomy.order(chosen)


def classify_rules(papers: Iterable[Paper], taxonomy: Taxonomy) -> dict[str, tuple[str, ...]]:
    return {p.arxiv_id: classify_one(p, taxonomy) for p in papers}
