"""Papers -> categories by a model: batches sized to what the model can do, answers judged.

Each batch goes out with a tight schema (its own ids as an ``enum``, exactly its
number of papers, known slugs as an ``enum``, at most MAX_CATEGORIES each) and an
output cap of about TOKENS_PER_PAPER per paper. A batch that times out, or whose
answer is invalid, partial (papers missing) or degenerate (an id twice, every
category for a paper, labels that just follow the taxonomy's order), is split in
halves and asked again, down to NEWSLETTER_LLM_MIN_BATCH papers; only then do the
keyword rules take a paper. After a timeout, later batches start at the size that
worked, and a re-run finds the same split in the cache without asking again.
A label that contradicts strong keyword evidence is replaced by the rules' label.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from newsletter.categories import FALLBACK_SLUG, Taxonomy
from newsletter.classify_rules import MAX_CATEGORIES, classify_one, scores
from newsletter.errors import LLMInvalid, LLMTimeout, LLMUnavailable
from newsletter.llm_client import LLMClient, NotCached
from newsletter.llm_prompts import Prompt, render_prompt
from newsletter.models import Paper

log = logging.getLogger(__name__)

#: Characters of the abstract the classifier sees: enough for the topic, cheap on a big day.
ABSTRACT_CHARS = 400
#: Output tokens allowed per paper of a batch (one label is ~25), plus a little slack.
TOKENS_PER_PAPER = 40
TOKENS_SLACK = 60
#: A batch at least this big whose papers all get the same labels was not read paper by paper.
SAME_LABELS_MIN = 5
#: Rules points that count as strong evidence (e.g. the primary class and a keyword in the title
#: and the abstract).
STRONG_EVIDENCE = 6.0


class PaperLabel(BaseModel):
    id: str
    # A label cut off before its categories parses as none: the paper counts as missing.
    categories: list[str] = Field(default_factory=list)


class ClassificationAnswer(BaseModel):
    papers: list[PaperLabel]


def batch_prompt(batch: Sequence[Paper], taxonomy: Taxonomy) -> Prompt:
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
        max_categories=MAX_CATEGORIES,
    )


def batch_schema(batch: Sequence[Paper], taxonomy: Taxonomy) -> dict[str, Any]:
    """The answer's JSON schema for this batch: its ids, its size, known slugs, few labels."""
    label = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "enum": [p.arxiv_id for p in batch]},
            "categories": {
                "type": "array",
                "items": {"type": "string", "enum": list(taxonomy.slugs)},
                "minItems": 1,
                "maxItems": MAX_CATEGORIES,
            },
        },
        "required": ["id", "categories"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "papers": {
                "type": "array",
                "items": label,
                "minItems": len(batch),
                "maxItems": len(batch),
            }
        },
        "required": ["papers"],
        "additionalProperties": False,
    }


def output_cap(batch: Sequence[Paper]) -> int:
    return TOKENS_PER_PAPER * len(batch) + TOKENS_SLACK


@dataclass(frozen=True)
class Verdict:
    """The usable labels of one answer and, when some papers are not labelled, why."""

    labels: dict[str, tuple[str, ...]]
    problem: str = ""


_ID_DECORATION = re.compile(r"^\s*arxiv:\s*|v\d+\s*$", re.I)


def _sent_id(answered: str, sent: set[str]) -> str | None:
    """The sent id an answer means, forgiving an "arXiv:" prefix or a version suffix."""
    if answered in sent:
        return answered
    bare = _ID_DECORATION.sub("", answered)
    return bare if bare in sent else None


def follows_taxonomy_order(slugs: Sequence[str], taxonomy: Taxonomy) -> bool:
    """True when a batch's first labels walk down the taxonomy's list: a model not reading."""
    if len(slugs) < 4:
        return False
    position = {slug: i for i, slug in enumerate(taxonomy.slugs)}
    steps = [position[b] - position[a] for a, b in itertools.pairwise(slugs)]
    return sum(1 for s in steps if s == 1) >= 0.75 * len(steps)


def contradicts_evidence(paper: Paper, slugs: Sequence[str], taxonomy: Taxonomy) -> bool:
    """True when the keyword rules are sure of a category the model's labels leave out."""
    scored = scores(paper, taxonomy)
    if not scored or scored[0][0] < STRONG_EVIDENCE:
        return False
    best = scored[0][0]
    points = dict((slug, p) for p, slug in scored)
    if len(scored) > 1 and scored[1][0] > best / 2:
        return False  # two categories are close: the model may fairly choose either
    return all(points.get(slug, 0.0) < best / 2 for slug in slugs)


def judge(answer: ClassificationAnswer, batch: Sequence[Paper], taxonomy: Taxonomy) -> Verdict:
    """The labels to keep from one answer; the problem names what the rest lacked."""
    sent = {p.arxiv_id for p in batch}
    known = set(taxonomy.slugs)
    labels: dict[str, tuple[str, ...]] = {}
    problems: list[str] = []
    seen: list[str] = []
    for label in answer.papers:
        arxiv_id = _sent_id(label.id, sent)
        if arxiv_id is None:
            problems.append(f"id {label.id!r} was not in the data block")
            continue
        if arxiv_id in seen:
            return Verdict({}, f"id {arxiv_id} was answered twice")
        seen.append(arxiv_id)
        unknown = [s for s in label.categories if s not in known]
        if unknown:
            problems.append(f"unknown categories {unknown} for {arxiv_id}")
        slugs = list(dict.fromkeys(s for s in label.categories if s in known))
        if len(slugs) > 1 and FALLBACK_SLUG in slugs:
            slugs.remove(FALLBACK_SLUG)
        if len(slugs) > MAX_CATEGORIES:
            problems.append(f"{arxiv_id} got {len(slugs)} categories (at most {MAX_CATEGORIES})")
            continue
        if slugs:
            labels[arxiv_id] = taxonomy.order(slugs)
    ordered = _in_order(labels, answer, sent)
    if follows_taxonomy_order([slugs[0] for slugs in ordered], taxonomy):
        return Verdict({}, "the labels follow the order of the category list, not the papers")
    if len(ordered) >= SAME_LABELS_MIN and len(set(ordered)) == 1:
        return Verdict({}, f"all {len(ordered)} papers got the same categories {ordered[0]}")
    missing = len(sent) - len(labels) - sum(1 for p in problems if "categories" in p)
    if missing > 0:
        problems.append(f"{missing} of the {len(sent)} papers were missing")
    return Verdict(labels, "; ".join(problems))


def _in_order(
    labels: dict[str, tuple[str, ...]], answer: ClassificationAnswer, sent: set[str]
) -> list[tuple[str, ...]]:
    """The kept labels in the order the model wrote them (as it chose the slugs)."""
    ordered: list[tuple[str, ...]] = []
    for label in answer.papers:
        arxiv_id = _sent_id(label.id, sent)
        if arxiv_id in labels:
            slugs = [s for s in label.categories if s in labels[arxiv_id]]
            ordered.append(tuple(slugs) or labels[arxiv_id])
    return ordered


@dataclass
class Sorted:
    """What the model placed (ids -> slugs), who answered, and papers the rules overrode."""

    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    overridden: int = 0
    timeouts: int = 0
    problems: list[str] = field(default_factory=list)


class Sorter:
    """Sorts papers by a model in batches that shrink to what the model can do."""

    def __init__(
        self, client: LLMClient, taxonomy: Taxonomy, batch_size: int, purpose: str = "classify"
    ) -> None:
        self.client = client
        self.purpose = purpose
        self.taxonomy = taxonomy
        self.floor = client.settings.llm_min_batch
        self.limit = batch_size
        self.result = Sorted()
        self._lock = threading.Lock()

    def sort(self, papers: Sequence[Paper]) -> Sorted:
        size = self.limit
        batches = [papers[i : i + size] for i in range(0, len(papers), size)]

        def run(batch: Sequence[Paper]) -> None:
            try:
                labels = self._batch(batch, cache_only=True)
            except NotCached:
                labels = self._batch(batch, cache_only=False)
            with self._lock:
                self.result.labels.update(labels)

        self.client.parallel(run, batches)
        return self.result

    def _batch(self, batch: Sequence[Paper], *, cache_only: bool) -> dict[str, tuple[str, ...]]:
        """Labels for ``batch``; what its answer misses is asked again in smaller batches."""
        if not batch:
            return {}
        shrinkable = len(batch) > self.floor
        if len(batch) > self.limit and not cache_only:
            return self._halves(batch, cache_only=cache_only)
        try:
            answer = self.client.ask(
                self.purpose,
                batch_prompt(batch, self.taxonomy),
                ClassificationAnswer,
                max_tokens=output_cap(batch),
                json_schema=batch_schema(batch, self.taxonomy),
                shrinkable=shrinkable,
                cache_only=cache_only,
            )
        except NotCached:
            if not shrinkable:
                raise
            return self._halves(batch, cache_only=True)  # a batch that was split last time
        except LLMTimeout:
            with self._lock:
                self.result.timeouts += 1
                if len(batch) > self.floor:
                    self.limit = min(self.limit, max(self.floor, len(batch) // 2))
            return self._halves(batch, cache_only=cache_only) if shrinkable else {}
        except LLMUnavailable:
            return {}
        except LLMInvalid as exc:
            self._note(str(exc))
            return self._halves(batch, cache_only=cache_only) if shrinkable else {}
        verdict = judge(answer.value, batch, self.taxonomy)
        labels = self._checked(verdict.labels, batch)
        if labels:
            with self._lock:
                self.result.models.add(answer.model)
        if verdict.problem:
            self._note(verdict.problem)
        rest = [p for p in batch if p.arxiv_id not in labels and p.arxiv_id not in verdict.labels]
        if rest and shrinkable:
            again = (
                self._halves(rest, cache_only=cache_only)
                if len(rest) == len(batch)
                else (self._batch(rest, cache_only=cache_only))
            )
            labels.update(again)
        return labels

    def _halves(self, batch: Sequence[Paper], *, cache_only: bool) -> dict[str, tuple[str, ...]]:
        middle = (len(batch) + 1) // 2
        labels = self._batch(batch[:middle], cache_only=cache_only)
        labels.update(self._batch(batch[middle:], cache_only=cache_only))
        return labels

    def _checked(
        self, labels: dict[str, tuple[str, ...]], batch: Sequence[Paper]
    ) -> dict[str, tuple[str, ...]]:
        """Labels without those that contradict strong keyword evidence (the rules take those)."""
        kept: dict[str, tuple[str, ...]] = {}
        for paper in batch:
            slugs = labels.get(paper.arxiv_id)
            if slugs is None:
                continue
            if contradicts_evidence(paper, slugs, self.taxonomy):
                rules = classify_one(paper, self.taxonomy)
                log.info(
                    "%s: model said %s, strong keyword evidence says %s",
                    paper.arxiv_id,
                    slugs,
                    rules,
                )
                with self._lock:
                    self.result.overridden += 1
                continue
            kept[paper.arxiv_id] = slugs
        return kept

    def _note(self, problem: str) -> None:
        log.info("classify: %s", problem)
        with self._lock:
            self.result.problems.append(problem)
