"""Papers -> categories: a qualified model in batches, with the keyword rules beneath it.

The rules (``newsletter.classify_rules``) are the offline mode and the fallback
for every paper a model's answer leaves out or mislabels, or never gets. A model
classifies only once it has placed the shipped calibration set at least as right
as the rules do (``newsletter.llm_quality``); otherwise the rules keep the
classification and the issue says so with both scores. The batches themselves,
their schema, splitting and judging live in ``newsletter.classify_batches``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newsletter import llm_quality
from newsletter.categories import FALLBACK_SLUG, Taxonomy
from newsletter.classify_batches import (
    ABSTRACT_CHARS,
    ClassificationAnswer,
    PaperLabel,
    Sorter,
    batch_prompt,
)
from newsletter.classify_rules import MAX_CATEGORIES, classify_one, classify_rules, score
from newsletter.llm_client import TIMEOUT_HINT, LLMClient
from newsletter.llm_quality import Qualification
from newsletter.models import Paper

log = logging.getLogger(__name__)

__all__ = [
    "ABSTRACT_CHARS",
    "MAX_CATEGORIES",
    "ClassificationAnswer",
    "LLMClassification",
    "PaperLabel",
    "Qualification",
    "batch_prompt",
    "classify_llm",
    "classify_one",
    "classify_rules",
    "group",
    "score",
]

Classification = Mapping[str, tuple[str, ...]]  # arxiv_id -> slugs


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


@dataclass(frozen=True)
class LLMClassification:
    """The classification, how many papers the rules had to classify, and who answered.

    ``qualification`` holds the calibration scores when they were measured; a model
    that did worse than the rules leaves ``models`` empty and every paper to the rules.
    """

    classification: dict[str, tuple[str, ...]]
    by_rules: int
    models: tuple[str, ...]
    qualification: Qualification | None = None


def classify_llm(
    papers: Sequence[Paper], taxonomy: Taxonomy, client: LLMClient, batch_size: int
) -> LLMClassification:
    """Classify in batches of at most ``batch_size``; rules fill in for papers the model missed."""
    qualification = None
    if client.settings.llm_qualify:
        qualification = llm_quality.qualify(client, taxonomy, batch_size)
        if qualification is not None and not qualification.qualified:
            log.warning("classification by rules: %s", qualification.describe())
            return LLMClassification(
                classify_rules(papers, taxonomy), len(papers), (), qualification
            )
    result = Sorter(client, taxonomy, batch_size).sort(papers)
    classification: dict[str, tuple[str, ...]] = {}
    by_rules = 0
    for paper in papers:
        if paper.arxiv_id in result.labels:
            classification[paper.arxiv_id] = result.labels[paper.arxiv_id]
        else:
            classification[paper.arxiv_id] = classify_one(paper, taxonomy)
            by_rules += 1
    if by_rules:
        why = []
        if result.timeouts:
            why.append(f"{result.timeouts} batches timed out ({TIMEOUT_HINT})")
        if result.overridden:
            why.append(f"{result.overridden} labels contradicted strong keyword evidence")
        if result.problems:
            why.append(f"answers lacked: {'; '.join(dict.fromkeys(result.problems))[:400]}")
        if client.down():
            why.append("; ".join(f"{m} down: {r}" for m, r in client.down().items()))
        log.warning(
            "%d of %d papers were classified by rules%s",
            by_rules,
            len(papers),
            f" ({'; '.join(why)})" if why else "",
        )
    return LLMClassification(classification, by_rules, tuple(sorted(result.models)), qualification)
