"""Papers -> categories. The rule-based classifier lives here; the LLM one builds on it.

Rules score each category by the paper's arXiv classes and by taxonomy keywords
in its title and abstract. It is the offline mode and the fallback for any paper
that an LLM answer leaves out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from newsletter.categories import FALLBACK_SLUG, Category, Taxonomy
from newsletter.models import Paper

#: Each paper goes to at most this many categories (the seed lists a paper once or twice).
MAX_CATEGORIES = 2

Classification = Mapping[str, tuple[str, ...]]  # arxiv_id -> slugs


@lru_cache(maxsize=512)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + re.escape(keyword) + r"(?:s|es)?(?![\w])", re.I)


def score(paper: Paper, category: Category) -> float:
    """How strongly ``paper`` belongs to ``category``; 0 means not at all."""
    points = 0.0
    if paper.primary_class in category.arxiv_classes:
        points += 3
    points += sum(1 for c in paper.classes[1:] if c in category.arxiv_classes) * 0.5
    title, abstract = paper.title, paper.abstract[:1500]
    for keyword in category.keywords:
        pattern = _keyword_pattern(keyword)
        if pattern.search(title):
            points += 2
        if pattern.search(abstract):
            points += 1
    return points


def classify_one(paper: Paper, taxonomy: Taxonomy) -> tuple[str, ...]:
    """The best one or two categories; a close runner-up (>= 80 %) is kept as the second."""
    scored = sorted(
        ((score(paper, c), c.slug) for c in taxonomy.categories if c.slug != FALLBACK_SLUG),
        key=lambda pair: -pair[0],
    )
    if not scored or scored[0][0] <= 0:
        return (FALLBACK_SLUG,)
    best = scored[0][0]
    chosen = [slug for points, slug in scored[:MAX_CATEGORIES] if points >= best * 0.8]
    return taxonomy.order(chosen)


def classify_rules(papers: Iterable[Paper], taxonomy: Taxonomy) -> dict[str, tuple[str, ...]]:
    return {p.arxiv_id: classify_one(p, taxonomy) for p in papers}


def group(
    papers: Sequence[Paper], classification: Classification, taxonomy: Taxonomy
) -> dict[str, tuple[Paper, ...]]:
    """Category slug -> its papers, most relevant first, in taxonomy order; empty ones dropped."""
    buckets: dict[str, list[Paper]] = {slug: [] for slug in taxonomy.slugs}
    for paper in papers:
        for slug in classification.get(paper.arxiv_id, (FALLBACK_SLUG,)):
            buckets.setdefault(slug, []).append(paper)
    result: dict[str, tuple[Paper, ...]] = {}
    for slug, members in buckets.items():
        if not members:
            continue
        category = taxonomy.get(slug)
        ranked = sorted(members, key=lambda p: (-score(p, category), p.arxiv_id))
        result[slug] = tuple(ranked)
    return result
