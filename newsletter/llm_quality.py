"""Never worse than offline: a model classifies only after it beats the rules on known papers.

Valid is not right: a small model can answer every batch in perfect JSON and still
put half the papers in the wrong category. So before its labels are used, the
model sorts the shipped calibration set (``data/calibration.json``, labelled by
hand; ``data/calibration.md`` says how) exactly as a day's papers are sorted,
and the keyword rules sort it too. A model that places fewer papers under a right
category than the rules leaves the classification to the rules (its reports may
still be used). The result is kept per model, classify-prompt version, taxonomy
and calibration file, in the answer cache's table, so it costs one sort per model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources

from newsletter import llm_store
from newsletter.categories import Taxonomy
from newsletter.classify_batches import Sorter
from newsletter.classify_rules import classify_one
from newsletter.llm_client import LLMClient
from newsletter.llm_prompts import prompt_version
from newsletter.models import Paper

log = logging.getLogger(__name__)

#: The answer-cache "prompt" name under which qualifications are stored.
STORED_AS = "qualification"


@dataclass(frozen=True)
class Labelled:
    paper: Paper
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Qualification:
    """How many calibration papers the model and the rules each placed right."""

    model: str
    model_right: int
    rules_right: int
    total: int

    @property
    def qualified(self) -> bool:
        return self.model_right >= self.rules_right

    def describe(self) -> str:
        verdict = "sorts papers" if self.qualified else "does worse than the keyword rules"
        return (
            f"{self.model} {verdict}: {self.model_right} of {self.total} calibration papers "
            f"placed right, the rules {self.rules_right} of {self.total}"
        )

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "qualified": self.qualified}


@cache
def _calibration_text() -> str:
    return resources.files("newsletter").joinpath("data/calibration.json").read_text("utf-8")


def calibration_set() -> list[Labelled]:
    """The shipped labelled papers."""
    rows = json.loads(_calibration_text())
    return [
        Labelled(
            Paper(
                arxiv_id=row["id"],
                title=row["title"],
                abstract=row["abstract"],
                authors=(),
                announced=dt.date(2024, 11, 22),
                primary_class=row["classes"][0] if row["classes"] else "",
                classes=tuple(row["classes"]),
            ),
            tuple(row["labels"]),
        )
        for row in rows
    ]


def placed_right(classification: Mapping[str, Sequence[str]], labelled: Sequence[Labelled]) -> int:
    """Papers put under at least one of their labelled categories."""
    return sum(
        1
        for item in labelled
        if set(classification.get(item.paper.arxiv_id, ())) & set(item.labels)
    )


def _key(taxonomy: Taxonomy) -> str:
    text = "\x00".join((_calibration_text(), *taxonomy.slugs))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stored(client: LLMClient, taxonomy: Taxonomy) -> Qualification | None:
    """The model's qualification measured before, if any."""
    found = llm_store.cached_answer(
        client.engine, client.model, STORED_AS, prompt_version("classify"), _key(taxonomy)
    )
    if found is None:
        return None
    data = json.loads(found[0])
    return Qualification(data["model"], data["model_right"], data["rules_right"], data["total"])


def qualify(client: LLMClient, taxonomy: Taxonomy, batch_size: int) -> Qualification | None:
    """The model's qualification, measured now if never before; None when it cannot be.

    None means the calibration labels do not fit this taxonomy (a custom category
    file) or the model gave no answer at all (down): nothing is stored then.
    """
    labelled = calibration_set()
    known = set(taxonomy.slugs)
    if not all(set(item.labels) <= known for item in labelled):
        log.info("the calibration set does not fit this category file; model not qualified")
        return None
    found = stored(client, taxonomy)
    if found is not None:
        return found
    papers = [item.paper for item in labelled]
    sorted_ = Sorter(client, taxonomy, batch_size, purpose="calibrate").sort(papers)
    if not sorted_.labels:
        return None
    by_model = {
        p.arxiv_id: sorted_.labels.get(p.arxiv_id) or classify_one(p, taxonomy) for p in papers
    }
    by_rules = {p.arxiv_id: classify_one(p, taxonomy) for p in papers}
    result = Qualification(
        client.model,
        placed_right(by_model, labelled),
        placed_right(by_rules, labelled),
        len(papers),
    )
    llm_store.store_answer(
        client.engine,
        client.model,
        STORED_AS,
        prompt_version("classify"),
        _key(taxonomy),
        json.dumps(asdict(result)),
        client.model,
    )
    log.info("qualification: %s", result.describe())
    return result
