"""Per-category reports in the seed's five parts: written by an LLM, or extracted offline.

The extractive report fills the parts from the papers themselves: themes from
taxonomy keywords that occur, keywords from frequent title terms, findings from the
sentences of abstracts that carry a number, one line per notable paper, and a
templated conclusion. It needs no network and never invents a citation.

The LLM report gets the category's most relevant papers that fit the input token
budget, must be written in the issue's language, and may cite only that category's
papers: any other arXiv id is removed from it before it is stored.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from newsletter.categories import Category, Taxonomy
from newsletter.errors import LLMError
from newsletter.i18n import texts
from newsletter.llm import (
    AnswerRejected,
    LLMClient,
    Prompt,
    data_json,
    render_prompt,
    token_count,
)
from newsletter.models import CategoryReport, NotablePaper, Paper

log = logging.getLogger(__name__)

MAX_NOTABLE = 5
MAX_FINDINGS = 4
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
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


def first_sentence(text: str, limit: int = 280) -> str:
    sentence = _SENTENCE.split(text.strip(), maxsplit=1)[0] if text.strip() else ""
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def _themes(papers: Sequence[Paper], category: Category) -> list[str]:
    counts: Counter[str] = Counter()
    for paper in papers:
        haystack = f"{paper.title} {paper.abstract}".lower()
        for keyword in category.keywords:
            if keyword in haystack:
                counts[keyword] += 1
    return [k for k, _ in counts.most_common(5)]


def _keywords(papers: Sequence[Paper]) -> list[str]:
    counts: Counter[str] = Counter()
    for paper in papers:
        words = {w.lower() for w in _WORD.findall(paper.title)} - _STOP
        counts.update(words)
    return [w for w, _ in counts.most_common(6)]


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
    themes = _themes(papers, category) or _keywords(papers)[:3]
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
        keywords=tuple(_keywords(papers)),
        findings=tuple(_findings(papers)),
        notable=notable,
        conclusion=conclusion,
        covered=len(papers),
        total=len(papers),
        made_by="extractive",
    )


# -- LLM reports -----------------------------------------------------------------------------

#: Characters of each abstract a report sees; the budget decides how many papers fit.
REPORT_ABSTRACT_CHARS = 1500
#: Tokens kept free of the input budget for the prompt's own text around the papers.
BUDGET_MARGIN = 64
MAX_ITEMS = 8

LANGUAGE_NAMES = {
    "ko": "Korean",
    "en": "English",
    "ja": "Japanese",
    "zh": "Chinese",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "ru": "Russian",
    "vi": "Vietnamese",
}
#: Unicode script (the first word of a letter's name) each non-Latin language is written in.
_SCRIPTS: dict[str, tuple[str, ...]] = {
    "ko": ("HANGUL",),
    "ja": ("HIRAGANA", "KATAKANA", "CJK"),
    "zh": ("CJK",),
    "ru": ("CYRILLIC",),
    "uk": ("CYRILLIC",),
    "el": ("GREEK",),
    "ar": ("ARABIC",),
    "he": ("HEBREW",),
    "th": ("THAI",),
    "hi": ("DEVANAGARI",),
}
#: Share of letters that must be in the language's script; English terms may fill the rest.
MIN_SCRIPT_SHARE = 0.25

_ARXIV_ID = re.compile(r"(?:arXiv:)?((?:\d{4}\.\d{4,5})|(?:[a-z][a-z.\-]*/\d{7}))(?:v\d+)?", re.I)
_BRACKET = re.compile(r"\s*\[([^\[\]]*)\]")


class NotableAnswer(BaseModel):
    arxiv_id: str
    line: str


class ReportAnswer(BaseModel):
    themes: list[str]
    keywords: list[str]
    findings: list[str]
    notable: list[NotableAnswer]
    conclusion: str


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def _script(char: str) -> str:
    return unicodedata.name(char, "?").split(" ", 1)[0]


def language_check(language: str) -> Callable[[ReportAnswer], None]:
    """A check that rejects an empty report or one written in another script."""
    wanted = _SCRIPTS.get(language, ("LATIN",))

    def check(answer: ReportAnswer) -> None:
        if not answer.conclusion.strip():
            raise AnswerRejected('"conclusion" was empty')
        prose = " ".join([*answer.findings, *(n.line for n in answer.notable), answer.conclusion])
        letters = [c for c in _ARXIV_ID.sub(" ", prose) if c.isalpha()]
        if len(letters) < 20:
            return
        share = sum(1 for c in letters if _script(c) in wanted) / len(letters)
        if share < (MIN_SCRIPT_SHARE if wanted != ("LATIN",) else 0.6):
            raise AnswerRejected(
                f"the text is not in {language_name(language)} (only {share:.0%} of its letters "
                f"are {'/'.join(wanted).title()}); write every text value in "
                f"{language_name(language)}"
            )

    return check


def _base_id(text: str) -> str:
    found = _ARXIV_ID.fullmatch(text.strip())
    return found.group(1) if found else text.strip()


def strip_unknown_citations(text: str, allowed: set[str]) -> str:
    """``text`` without citations of arXiv ids outside ``allowed`` ([id] lists and arXiv:id)."""

    def bracket(match: re.Match[str]) -> str:
        parts = [p.strip() for p in re.split(r"[,;]", match.group(1)) if p.strip()]
        ids = [p for p in parts if _ARXIV_ID.fullmatch(p)]
        if not ids:
            return match.group(0)
        kept = [p for p in ids if _base_id(p) in allowed]
        if len(kept) < len(ids):
            log.warning(
                "removed citations of papers outside the category: %s", set(ids) - set(kept)
            )
        return f" [{', '.join(kept)}]" if kept else ""

    def bare(match: re.Match[str]) -> str:
        if match.group(1) in allowed:
            return match.group(0)
        log.warning("removed a citation of %s, which is not in the category", match.group(1))
        return ""

    text = _BRACKET.sub(bracket, text)
    text = re.sub(r"arXiv:((?:\d{4}\.\d{4,5})|(?:[a-z][a-z.\-]*/\d{7}))(?:v\d+)?", bare, text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def cites_only_unknown(text: str, allowed: set[str]) -> bool:
    """True when ``text`` cites papers and none of them is in ``allowed``: an unsupported claim."""
    cited = {m.group(1) for m in _ARXIV_ID.finditer(text)}
    return bool(cited) and not cited & allowed


def _clean(items: Sequence[str], allowed: set[str]) -> tuple[str, ...]:
    """Items with foreign citations removed; an item that cited only foreign papers is dropped."""
    kept: list[str] = []
    for item in items:
        if cites_only_unknown(item, allowed):
            log.warning("dropped a claim that cites only papers outside the category: %r", item)
            continue
        cleaned = strip_unknown_citations(item, allowed)
        if cleaned and cleaned not in kept:
            kept.append(cleaned)
    return tuple(kept[:MAX_ITEMS])


def from_answer(
    answer: ReportAnswer,
    category: Category,
    papers: Sequence[Paper],
    language: str,
    covered: int,
    made_by: str,
) -> CategoryReport:
    """The stored report: citations limited to ``papers``, duplicates and blanks dropped."""
    allowed = {p.arxiv_id for p in papers}
    notable: list[NotablePaper] = []
    for item in answer.notable:
        arxiv_id = _base_id(item.arxiv_id)
        if arxiv_id not in allowed:
            log.warning(
                "%s report cited %r, which is not in the category; removed",
                category.slug,
                item.arxiv_id,
            )
            continue
        line = strip_unknown_citations(item.line, allowed)
        if line and arxiv_id not in {n.arxiv_id for n in notable}:
            notable.append(NotablePaper(arxiv_id, line))
    return CategoryReport(
        slug=category.slug,
        language=language,
        themes=_clean(answer.themes, allowed),
        keywords=_clean(answer.keywords, allowed),
        findings=_clean(answer.findings, allowed),
        notable=tuple(notable[:MAX_NOTABLE]),
        conclusion=strip_unknown_citations(answer.conclusion, allowed),
        covered=covered,
        total=len(papers),
        made_by=made_by,
    )


def _entries(papers: Sequence[Paper]) -> list[dict[str, str]]:
    return [
        {"id": p.arxiv_id, "title": p.title, "abstract": p.abstract[:REPORT_ABSTRACT_CHARS]}
        for p in papers
    ]


def fit_budget(
    model: str, entries: Sequence[Mapping[str, Any]], frame_tokens: int, budget: int
) -> int:
    """How many leading entries fit ``budget`` tokens beside the prompt's own ``frame_tokens``."""
    used = frame_tokens + BUDGET_MARGIN
    fitted = 0
    for entry in entries:
        used += token_count(model, data_json(entry)) + 1
        if used > budget and fitted:
            break
        fitted += 1
    return fitted


def llm_report(
    category: Category, papers: Sequence[Paper], language: str, client: LLMClient
) -> CategoryReport:
    """The LLM's report on ``papers`` (most relevant first); raises LLMError if it cannot."""
    entries = _entries(papers)

    def prompt(count: int) -> Prompt:
        return render_prompt(
            "report",
            category={
                "slug": category.slug,
                "name": category.name("en"),
                "description": category.description,
            },
            language=language,
            language_name=language_name(language),
            papers=entries[:count],
            total=len(papers),
        )

    frame = prompt(0)
    covered = fit_budget(
        client.model,
        entries,
        token_count(client.model, frame.system + "\n" + frame.user),
        client.settings.llm_max_input_tokens,
    )
    if covered < len(papers):
        log.info(
            "%s: the report covers %d of %d papers (token budget)",
            category.slug,
            covered,
            len(papers),
        )
    answer = client.ask("report", prompt(covered), ReportAnswer, check=language_check(language))
    return from_answer(answer.value, category, papers, language, covered, answer.model)


def write_reports(
    grouped: Mapping[str, Sequence[Paper]],
    taxonomy: Taxonomy,
    language: str,
    client: LLMClient | None,
) -> dict[str, CategoryReport]:
    """One report per category: the LLM's, or the extractive one offline or when the LLM fails."""
    slugs = list(grouped)

    def write(slug: str) -> CategoryReport:
        category = taxonomy.get(slug)
        if client is not None:
            try:
                return llm_report(category, grouped[slug], language, client)
            except LLMError as exc:
                log.warning("%s report is extractive instead: %s", slug, exc)
        return extractive_report(category, grouped[slug], language)

    reports = client.parallel(write, slugs) if client is not None else [write(s) for s in slugs]
    return dict(zip(slugs, reports, strict=True))
