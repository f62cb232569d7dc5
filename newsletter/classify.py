"""Papers -> categories: an LLM in batches, with the rule-based classifier beneath it.

Rules score each category by the paper's arXiv classes and by taxonomy keywords
in its title and abstract. They are the offline mode and the fallback for every
paper an LLM answer leaves out, mislabels, or never gets (a failed batch).
The LLM sees each paper's id, title and the start of its abstract, and may only
answer with known slugs for ids it was sent; anything else is dropped and logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel

from newsletter.categories import FALLBACK_SLUG, Category, Taxonomy
from newsletter.errors import LLMError
from newsletter.llm import LLMClient, Prompt, render_prompt
from newsletter.models import Paper

log = logging.getLogger(__name__)

#: Each paper goes to at most this many categories (the seed lists a paper once or twice).
MAX_CATEGORIES = 2

Classification = Mapping[str, tuple[str, ...]]  # arxiv_id -> slugs


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


# -- LLM classification ----------------------------------------------------------------------

#: Characters of the abstract the classifier sees: enough for the topic, cheap on a big day.
ABSTRACT_CHARS = 400


class PaperLabel(BaseModel):
    id: str
    categories: list[str]


class ClassificationAnswer(BaseModel):
    papers: list[PaperLabel]


@dataclass(frozen=True)
class LLMClassification:
    """The classification, how many papers the rules had to classify, and who answered."""

    classification: dict[str, tuple[str, ...]]
    by_rules: int
    models: tuple[str, ...]


def _batch_prompt(batch: Sequence[Paper], taxonomy: Taxonomy) -> Prompt:
    return render_prompt(
        "classify",
        categories=[
            {"slug": c.slug, "name": c.name("en"), "description": c.description}
            for c in taxonomy.categories
        ],
        papers=[
            {"id": p.arxiv_id, "title": p.title, "abstract": p.abstract[:ABSTRACT_CHARS]}
            for p in batch
        ],
    )


_ID_DECORATION = re.compile(r"^\s*arxiv:\s*|v\d+\s*$", re.I)


def _sent_id(answered: str, sent: set[str]) -> str | None:
    """The sent id an answer means, forgiving an "arXiv:" prefix or a version suffix."""
    if answered in sent:
        return answered
    bare = _ID_DECORATION.sub("", answered)
    return bare if bare in sent else None


def _labels(
    answer: ClassificationAnswer, batch: Sequence[Paper], taxonomy: Taxonomy
) -> dict[str, tuple[str, ...]]:
    """The usable part of one answer: sent ids only, known slugs only, at most two each."""
    sent = {p.arxiv_id for p in batch}
    known = set(taxonomy.slugs)
    labels: dict[str, tuple[str, ...]] = {}
    for label in answer.papers:
        arxiv_id = _sent_id(label.id, sent)
        if arxiv_id is None:
            log.warning("LLM classified id %r that was not in its batch; dropped", label.id)
            continue
        if arxiv_id in labels:
            continue
        unknown = [s for s in label.categories if s not in known]
        if unknown:
            log.warning("LLM gave %s unknown categories %s; dropped", arxiv_id, unknown)
        slugs = list(dict.fromkeys(s for s in label.categories if s in known))
        if len(slugs) > 1 and FALLBACK_SLUG in slugs:
            slugs.remove(FALLBACK_SLUG)
        if slugs:
            labels[arxiv_id] = taxonomy.order(slugs[:MAX_CATEGORIES])
    return labels


def classify_llm(
    papers: Sequence[Paper], taxonomy: Taxonomy, client: LLMClient, batch_size: int
) -> LLMClassification:
    """Classify in batches of ``batch_size``; rules fill in for every paper the LLM missed."""
    batches = [papers[i : i + batch_size] for i in range(0, len(papers), batch_size)]

    def ask(batch: Sequence[Paper]) -> tuple[dict[str, tuple[str, ...]], str]:
        prompt = _batch_prompt(batch, taxonomy)
        try:
            answer = client.ask("classify", prompt, ClassificationAnswer)
        except LLMError as exc:
            log.warning("classifying %d papers by rules instead: %s", len(batch), exc)
            return {}, ""
        return _labels(answer.value, batch, taxonomy), answer.model

    results = client.parallel(ask, batches)
    classification: dict[str, tuple[str, ...]] = {}
    by_rules = 0
    for batch, (labels, _model) in zip(batches, results, strict=True):
        for paper in batch:
            if paper.arxiv_id in labels:
                classification[paper.arxiv_id] = labels[paper.arxiv_id]
            else:
                classification[paper.arxiv_id] = classify_one(paper, taxonomy)
                by_rules += 1
    if by_rules:
        log.warning("%d of %d papers were classified by rules", by_rules, len(papers))
    models = tuple(sorted({model for _, model in results if model}))
    return LLMClassification(classification, by_rules, models)
