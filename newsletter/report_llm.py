"""A category's report by a model: a ladder of answer formats, and checks it is worth reading.

The report gets the category's most relevant papers that fit the input token
budget and climbs a ladder until an answer passes: a JSON-schema answer (where the
provider takes one, with one repair turn), JSON asked for in the prompt, then a
plain-text answer under five headings parsed leniently (small models write
headings far more reliably than nested JSON). A timeout halves the papers the
report covers (down to MIN_PAPERS) before the next rung is tried.

An answer passes only when it is in the issue's language, cites at least one of
the category's own papers by id in its findings or notable papers, and its
notable lines are summaries rather than a paper's title or abstract copied. Any
other arXiv id is removed from it before it is stored.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from newsletter.categories import Category
from newsletter.errors import LLMError, LLMInvalid, LLMTimeout
from newsletter.llm import token_count
from newsletter.llm_answers import AnswerRejected, answer_schema, sections
from newsletter.llm_client import LLMClient
from newsletter.llm_jobs import COSTLY_FAILURE_SECONDS, Mode
from newsletter.llm_prompts import Prompt, data_json, prompt_version, render_prompt
from newsletter.models import CategoryReport, NotablePaper, Paper
from newsletter.report_copies import copies
from newsletter.report_language import is_latin, language_name, script_problem
from newsletter.report_notes import notes_report

log = logging.getLogger(__name__)

MAX_NOTABLE = 5
#: Characters of each abstract a report sees; the budget decides how many papers fit.
REPORT_ABSTRACT_CHARS = 800
#: Tokens kept free of the input budget for the prompt's own text around the papers.
BUDGET_MARGIN = 64
MAX_ITEMS = 8
#: A timeout halves the papers a report covers, down to this many.
MIN_PAPERS = 3
#: Output cap of a report (five short parts); scripts other than Latin take more tokens.
REPORT_TOKENS = 600
NON_LATIN_FACTOR = 1.5

_ARXIV_ID = re.compile(r"(?:arXiv:)?((?:\d{4}\.\d{4,5})|(?:[a-z][a-z.\-]*/\d{7}))(?:v\d+)?", re.I)
_BRACKET = re.compile(r"\s*\[([^\[\]]*)\]")
_PARTS = ("themes", "keywords", "findings", "notable", "conclusion")


class NotableAnswer(BaseModel):
    arxiv_id: str
    line: str


class ReportAnswer(BaseModel):
    themes: list[str]
    keywords: list[str]
    findings: list[str]
    notable: list[NotableAnswer]
    conclusion: str


#: Most items each list part may have in a schema-bound answer (the prompt asks for fewer).
_MAX_ITEMS = {"themes": 6, "keywords": 8, "findings": 5, "notable": 5}


def report_schema() -> dict[str, Any]:
    """ReportAnswer's schema with every list capped, so a looping model stops early."""
    schema = answer_schema(ReportAnswer)
    for part, most in _MAX_ITEMS.items():
        schema["properties"][part]["maxItems"] = most
    return schema


def language_check(language: str) -> Callable[[ReportAnswer], None]:
    """A check that rejects an empty report or one written in another script."""

    def check(answer: ReportAnswer) -> None:
        if not answer.conclusion.strip():
            raise AnswerRejected('"conclusion" was empty')
        prose = " ".join([*answer.findings, *(n.line for n in answer.notable), answer.conclusion])
        problem = script_problem(_ARXIV_ID.sub(" ", prose), language)
        if problem:
            raise AnswerRejected(problem)

    return check


def copied_items(answer: ReportAnswer, papers: Sequence[Paper]) -> tuple[set[int], set[int]]:
    """Indexes of the findings and notable entries that copy a cited paper's title or abstract."""
    by_id = {p.arxiv_id: p for p in papers}

    def copy_of_cited(text: str, ids: set[str]) -> bool:
        return any(copies(text, by_id[i]) for i in ids if i in by_id)

    findings = {
        i
        for i, f in enumerate(answer.findings)
        if copy_of_cited(f, {m.group(1) for m in _ARXIV_ID.finditer(f)})
    }
    notable = {
        i
        for i, n in enumerate(answer.notable)
        if copy_of_cited(n.line, {_base_id(n.arxiv_id)}) or copies(n.line, _title_only(n, by_id))
    }
    return findings, notable


def _title_only(item: NotableAnswer, by_id: Mapping[str, Paper]) -> Paper:
    paper = by_id.get(_base_id(item.arxiv_id))
    return paper if paper is not None else Paper("", "", "", (), dt.date(2000, 1, 1))


def without_copies(answer: ReportAnswer, papers: Sequence[Paper]) -> ReportAnswer:
    """The answer without findings or notable entries that copy a paper's words."""
    findings, notable = copied_items(answer, papers)
    if findings or notable:
        log.info(
            "dropped %d findings and %d notable lines copied from papers",
            len(findings),
            len(notable),
        )
    return answer.model_copy(
        update={
            "findings": [f for i, f in enumerate(answer.findings) if i not in findings],
            "notable": [n for i, n in enumerate(answer.notable) if i not in notable],
        }
    )


def report_check(language: str, papers: Sequence[Paper]) -> Callable[[ReportAnswer], None]:
    """The language check, then: what is left without copied entries cites its own papers."""
    in_language = language_check(language)
    own = {p.arxiv_id for p in papers}

    def check(answer: ReportAnswer) -> None:
        in_language(answer)
        kept = without_copies(answer, papers)
        cited = {m.group(1) for f in kept.findings for m in _ARXIV_ID.finditer(f)}
        cited |= {_base_id(n.arxiv_id) for n in kept.notable}
        if cited & own:
            return
        if len(kept.findings) + len(kept.notable) < len(answer.findings) + len(answer.notable):
            raise AnswerRejected(
                "the findings and notable lines copy the papers' titles or abstracts; say in "
                "your own words, one short sentence each, what is new, citing the paper's id"
            )
        raise AnswerRejected(
            "the report cites none of its papers; cite them by the ids in the data block, "
            "e.g. [" + next(iter(own), "2411.01234") + "]"
        )

    return check


def _base_id(text: str) -> str:
    found = _ARXIV_ID.fullmatch(text.strip().strip("[]"))
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
            log.info("removed citations of papers outside the category: %s", set(ids) - set(kept))
        return f" [{', '.join(kept)}]" if kept else ""

    def bare(match: re.Match[str]) -> str:
        if match.group(1) in allowed:
            return match.group(0)
        log.info("removed a citation of %s, which is not in the category", match.group(1))
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
            log.info("dropped a claim that cites only papers outside the category: %r", item)
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


_LEADING_ID = re.compile(
    r"^\s*[\[(]?\s*(?:arXiv:)?((?:\d{4}\.\d{4,5})|(?:[a-z][a-z.\-]*/\d{7}))(?:v\d+)?\s*[\])]?\s*[:\-–—]?\s*",
    re.I,
)


def parse_text(raw: str) -> ReportAnswer:
    """A plain-text report under five headings as a ReportAnswer; raises AnswerRejected."""
    found = sections(raw or "", _PARTS)
    missing = [part for part in ("findings", "conclusion") if not found.get(part)]
    if missing:
        raise AnswerRejected(
            f"the answer had no {' and no '.join(m.upper() for m in missing)} part"
        )
    notable: list[NotableAnswer] = []
    for line in found.get("notable", []):
        lead = _LEADING_ID.match(line)
        anywhere = lead or _ARXIV_ID.search(line)
        if anywhere is None:
            continue
        text = line[lead.end() :] if lead else line.replace(anywhere.group(0), "").strip(" []:-")
        if text.strip():
            notable.append(NotableAnswer(arxiv_id=anywhere.group(1), line=text.strip()))
    return ReportAnswer(
        themes=found.get("themes", []),
        keywords=[k for line in found.get("keywords", []) for k in re.split(r"[,;]\s*", line) if k],
        findings=found["findings"],
        notable=notable,
        conclusion=" ".join(found["conclusion"]),
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


def output_cap(language: str) -> int:
    return REPORT_TOKENS if is_latin(language) else int(REPORT_TOKENS * NON_LATIN_FACTOR)


def llm_report(
    category: Category, papers: Sequence[Paper], language: str, client: LLMClient
) -> CategoryReport:
    """The model's report on ``papers`` (most relevant first); raises LLMError if it cannot."""
    entries = _entries(papers)

    def prompt(name: str, count: int) -> Prompt:
        return render_prompt(
            name,
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

    frame = prompt("report", 0)
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
    rungs: list[Mode] = ["schema", "json", "text"] if client.takes_schema() else ["json", "text"]
    check = report_check(language, papers)
    failure: LLMError | None = None
    versions = f"v{prompt_version('report')}.{prompt_version('report_text')}"
    for step, mode in enumerate(rungs):
        way = f"report:{mode}:{versions}:{language}"
        if client.track.failing(way):
            log.info(
                "%s: skipping the %s format, which keeps failing for this model",
                category.slug,
                mode,
            )
            continue
        while True:
            asked = time.monotonic()
            try:
                answer = client.ask(
                    "report",
                    prompt("report_text" if mode == "text" else "report", covered),
                    ReportAnswer,
                    check,
                    max_tokens=output_cap(language),
                    json_schema=report_schema(),
                    mode=mode,
                    parse=parse_text if mode == "text" else None,
                    repair=step == 0,
                    shrinkable=covered > MIN_PAPERS,
                )
            except LLMTimeout as exc:
                failure = exc
                if covered > MIN_PAPERS:
                    covered = max(MIN_PAPERS, covered // 2)
                    log.info(
                        "%s: a timeout; the report now covers %d papers", category.slug, covered
                    )
                    continue
                client.track.note(way, ok=False, seconds=_cost(client, mode, versions, asked))
                break
            except LLMInvalid as exc:
                failure = exc
                client.track.note(way, ok=False, seconds=_cost(client, mode, versions, asked))
                break
            client.track.note(way, ok=True)
            kept = without_copies(answer.value, papers)
            return from_answer(kept, category, papers, language, covered, answer.model)
    if failure is not None:
        log.info("%s: %s", category.slug, failure)
    return _notes_rung(category, papers[:covered], language, client)


def _cost(client: LLMClient, mode: str, versions: str, asked: float) -> float:
    """Seconds a failed attempt counts for: its time, or a costly failure's when the same
    format already fails in another language of this run (a model that cannot write it
    in Korean seldom can in English)."""
    seconds = time.monotonic() - asked
    if client.track.failed_like(f"report:{mode}:{versions}:"):
        return max(seconds, COSTLY_FAILURE_SECONDS)
    return seconds


def _notes_rung(
    category: Category,
    papers: Sequence[Paper],
    language: str,
    client: LLMClient,
) -> CategoryReport:
    """The last rung: a note per paper, a conclusion, translated (``report_notes``)."""
    log.info("%s: asking the %s report one paper at a time", category.slug, language)
    themes, keywords, notes, conclusion = notes_report(category, papers, language, client)
    answer = ReportAnswer(
        themes=themes,
        keywords=keywords,
        findings=[],
        notable=[NotableAnswer(arxiv_id=i, line=line) for i, line in notes],
        conclusion=conclusion,
    )
    try:
        report_check(language, papers)(answer)
    except AnswerRejected as rejected:
        raise LLMInvalid(f"{category.slug}: the notes did not make a report: {rejected}") from None
    return from_answer(answer, category, papers, language, len(papers), client.model)
