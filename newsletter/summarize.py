"""Per-category reports in the seed's five parts: written by a model, or extracted offline.

The extractive report fills the parts from the papers themselves: themes from
taxonomy keywords that occur, keywords from frequent title terms, findings from the
sentences of abstracts that carry a number, one line per notable paper, and a
templated conclusion. It needs no network and never invents a citation.

The model's report (``newsletter.report_llm``) is tried first when a model is
configured; any category it cannot write gets the extractive report, and one
warning per language says which and why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from newsletter.categories import Category, Taxonomy
from newsletter.errors import LLMError, LLMTimeout
from newsletter.i18n import texts
from newsletter.llm_client import TIMEOUT_HINT, LLMClient
from newsletter.models import CategoryReport, NotablePaper, Paper
from newsletter.report_llm import (
    MAX_NOTABLE,
    NotableAnswer,
    ReportAnswer,
    language_check,
    llm_report,
    strip_unknown_citations,
)
from newsletter.report_terms import category_themes, title_keywords

__all__ = [
    "NotableAnswer",
    "ReportAnswer",
    "extractive_report",
    "language_check",
    "llm_report",
    "strip_unknown_citations",
    "write_reports",
]

log = logging.getLogger(__name__)

MAX_FINDINGS = 4
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def first_sentence(text: str, limit: int = 280) -> str:
    sentence = _SENTENCE.split(text.strip(), maxsplit=1)[0] if text.strip() else ""
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def _findings(papers: Sequence[Paper]) -> list[str]:
    found: list[str] = []
    for paper in papers:
        sentences = _SENTENCE.split(paper.abstract)
        numeric = [s for s in sentences if re.search(r"\d", s)]
        pick = numeric[-1] if numeric else (sentences[-1] if sentences else "")
        if pick:
            found.append(first_sentence(pick))
        if len(found) >= MAX_FINDINGS:
            break
    return found


def extractive_report(category: Category, papers: Sequence[Paper], language: str) -> CategoryReport:
    """A report built only from the papers' own words (offline mode and LLM fallback)."""
    t = texts(language)
    themes = category_themes(papers, category) or title_keywords(papers)[:3]
    notable = tuple(
        NotablePaper(p.arxiv_id, first_sentence(p.abstract) or p.title)
        for p in papers[:MAX_NOTABLE]
    )
    conclusion = t["conclusion_text"].format(
        count=len(papers),
        name=category.name(language),
        topics=", ".join(themes[:3]) or category.name(language),
        first=papers[0].title if papers else "",
    )
    return CategoryReport(
        slug=category.slug,
        language=language,
        themes=tuple(themes),
        keywords=tuple(title_keywords(papers)),
        findings=tuple(_findings(papers)),
        notable=notable,
        conclusion=conclusion,
        covered=len(papers),
        total=len(papers),
        made_by="extractive",
    )


def write_reports(
    grouped: Mapping[str, Sequence[Paper]],
    taxonomy: Taxonomy,
    language: str,
    client: LLMClient | None,
) -> dict[str, CategoryReport]:
    """One report per category: the model's, or the extractive one offline or when it fails."""
    slugs = list(grouped)
    failed: dict[str, LLMError] = {}

    def write(slug: str) -> CategoryReport:
        category = taxonomy.get(slug)
        if client is not None:
            try:
                return llm_report(category, grouped[slug], language, client)
            except LLMError as exc:
                log.info("%s report is extractive instead: %s", slug, exc)
                failed[slug] = exc
        return extractive_report(category, grouped[slug], language)

    reports = client.parallel(write, slugs) if client is not None else [write(s) for s in slugs]
    if failed:
        timeouts = [s for s, e in failed.items() if isinstance(e, LLMTimeout)]
        others = [s for s in failed if s not in timeouts]
        why = []
        if timeouts:
            why.append(f"timed out: {', '.join(timeouts)} ({TIMEOUT_HINT})")
        if others:
            first = str(failed[others[0]])
            why.append(f"no usable answer: {', '.join(others)} (e.g. {first[:300]})")
        log.warning(
            "%d of %d %s reports quote the abstracts instead of the model's: %s",
            len(failed),
            len(slugs),
            language,
            "; ".join(why),
        )
    return dict(zip(slugs, reports, strict=True))
