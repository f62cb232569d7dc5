"""The last rung of a model's report: small questions a small model can answer.

A model of half a billion parameters asked for a whole report, in JSON or under
headings, copies the papers' titles into every part, and asked in Korean it mostly
answers in English. Asked one small thing at a time it does far better: one
sentence of its own per paper, then a two-sentence conclusion from those notes,
both in English, then (for any other language) a translation of those lines, a
task small models do well. Themes and keywords are taken from the papers' own
words, as in the offline report, since the model copies titles into such lists.

Notes and conclusions are asked in English whatever the report's language, so the
second language of a day costs only its translation: the notes come from the cache.
Every answer is checked: a note that copies its paper's title or abstract, a
conclusion that repeats the notes, a translation in the wrong script or of the
wrong number of lines is refused; a translation of all lines at once that fails is
asked again line by line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from newsletter.categories import Category
from newsletter.errors import LLMInvalid
from newsletter.llm_answers import AnswerRejected
from newsletter.llm_client import LLMClient
from newsletter.llm_prompts import render_prompt
from newsletter.models import Paper
from newsletter.report_copies import copied_from, copies
from newsletter.report_language import language_name, script_problem
from newsletter.report_terms import category_themes, title_keywords

log = logging.getLogger(__name__)

#: Papers that get a note of their own (the most relevant first); each costs one call.
MAX_NOTES = 5
NOTE_TOKENS = 90
CONCLUSION_TOKENS = 160
#: Times a conclusion, or one line's translation, is asked before it is given up: a small
#: model that loops or repeats the notes once often does not the next time.
TRIES = 3
#: Output tokens a translation may take per English character: Korean measured up to ~1.3
#: with Qwen's tokenizer (0.8 cut off good lines); a loop is cut off by the stream's loop
#: check long before this cap.
TRANSLATION_TOKENS_PER_CHAR = 1.3
MIN_LINE = 20
ABSTRACT_CHARS = 800
_NUMBERED = re.compile(r"^\s*(\d{1,2})\s*[.)]\s*(.*)$")
_LEAD = re.compile(r"^\s*(?:[-*•]\s*|\[[^\]]*\]\s*[:\-–—]?\s*|\"|')+")


class Note(BaseModel):
    line: str


class Lines(BaseModel):
    lines: list[str]


def _one_line(raw: str) -> str:
    """The first non-empty line of ``raw`` without bullets, ids in brackets or quotes."""
    for line in (raw or "").replace("```", "").splitlines():
        text = _LEAD.sub("", line).strip().strip("\"'").strip()
        if text:
            return " ".join(text.split())
    return ""


def _without_title(line: str, paper: Paper) -> str:
    """``line`` without a leading copy of the paper's title ("Title. It does ...")."""
    title = paper.title.strip().rstrip(".")
    if title and line.lower().startswith(title.lower()):
        rest = line[len(title) :].lstrip(" .:;,-–—")
        if len(rest) >= MIN_LINE:
            return rest[0].upper() + rest[1:]
    return line


def note_parser(paper: Paper) -> Callable[[str], Note]:
    def parse(raw: str) -> Note:
        return Note(line=_without_title(_one_line(raw), paper))

    return parse


def note_check(paper: Paper) -> Callable[[Note], None]:
    def check(note: Note) -> None:
        if len(note.line) < MIN_LINE:
            raise AnswerRejected("the answer was not a sentence; write one sentence")
        if copied_from(note.line, paper.title, 0.85) or copies(note.line, paper):
            raise AnswerRejected(
                "the sentence copies the paper's title or abstract; say it in your own words"
            )
        problem = script_problem(note.line, "en")
        if problem:
            raise AnswerRejected(problem)

    return check


def conclusion_check(notes: Sequence[str]) -> Callable[[Note], None]:
    joined = " ".join(notes)

    def check(answer: Note) -> None:
        if len(answer.line) < MIN_LINE:
            raise AnswerRejected("the answer was not two sentences; write two sentences")
        if copied_from(answer.line, joined):
            raise AnswerRejected("the conclusion repeats the notes; say what they show together")

    return check


def _paragraph(raw: str) -> Note:
    text = " ".join(line.strip() for line in (raw or "").splitlines() if line.strip())
    return Note(line=_LEAD.sub("", text).strip())


def lines_parser(count: int) -> Callable[[str], Lines]:
    """Numbered lines 1..count from ``raw``; unnumbered answers of one line count as line 1."""

    def parse(raw: str) -> Lines:
        found: dict[int, str] = {}
        for line in (raw or "").replace("```", "").splitlines():
            numbered = _NUMBERED.match(line)
            if numbered and 1 <= int(numbered.group(1)) <= count:
                found.setdefault(int(numbered.group(1)), numbered.group(2).strip())
        if count == 1 and not found:
            found[1] = _paragraph(raw).line
        return Lines(lines=[found.get(i, "") for i in range(1, count + 1)])

    return parse


def translation_check(language: str, originals: Sequence[str]) -> Callable[[Lines], None]:
    def check(answer: Lines) -> None:
        missing = [str(i + 1) for i, line in enumerate(answer.lines) if not line.strip()]
        if missing or len(answer.lines) != len(originals):
            raise AnswerRejected(
                f"lines {', '.join(missing) or '?'} were missing; answer with all "
                f"{len(originals)} numbered lines"
            )
        for i, line in enumerate(answer.lines):
            problem = script_problem(line, language)
            if problem:
                raise AnswerRejected(f"line {i + 1}: {problem}")

    return check


def _ask_note(paper: Paper, client: LLMClient) -> str | None:
    data = {"id": paper.arxiv_id, "title": paper.title, "abstract": paper.abstract[:ABSTRACT_CHARS]}
    try:
        answer = client.ask(
            "report:note",
            render_prompt("paper_note", paper=data),
            Note,
            note_check(paper),
            max_tokens=NOTE_TOKENS,
            mode="text",
            parse=note_parser(paper),
            repair=False,
            shrinkable=False,
        )
    except LLMInvalid as exc:
        log.info("no note on %s: %s", paper.arxiv_id, exc)
        return None
    return answer.value.line


def _translate(lines: Sequence[str], language: str, client: LLMClient) -> list[str | None]:
    """``lines`` in ``language``: all at once, else line by line, each asked up to
    TRIES times (a small model that loops on a line often does not the next
    time); None for a line that got no usable translation. Raises LLMTimeout."""

    def ask(chunk: Sequence[str]) -> list[str]:
        size = sum(len(line) + 4 for line in chunk)
        cap = 40 + int(TRANSLATION_TOKENS_PER_CHAR * size)
        answer = client.ask(
            "report:translate",
            render_prompt(
                "translate",
                language=language,
                language_name=language_name(language),
                lines=[" ".join(line.split()) for line in chunk],
            ),
            Lines,
            translation_check(language, chunk),
            max_tokens=cap,
            mode="text",
            parse=lines_parser(len(chunk)),
            repair=False,
            shrinkable=False,
        )
        return answer.value.lines

    if len(lines) > 1 and not client.track.failing(f"translate:all-at-once:{language}"):
        try:
            all_at_once: list[str | None] = list(ask(lines))
        except LLMInvalid as exc:
            log.info("translating %d lines at once failed (%s); one by one", len(lines), exc)
            client.track.note(f"translate:all-at-once:{language}", ok=False)
        else:
            client.track.note(f"translate:all-at-once:{language}", ok=True)
            return all_at_once
    translated: list[str | None] = []
    for line in lines:
        for _ in range(TRIES):
            try:
                translated.append(ask([line])[0])
                break
            except LLMInvalid as exc:
                log.info("no usable translation of a line yet: %s", exc)
        else:
            translated.append(None)
    return translated


def _conclusion(category: Category, notes: Sequence[tuple[str, str]], client: LLMClient) -> str:
    """The model's conclusion from ``notes``, asked up to TRIES times; raises LLMError."""
    prompt = render_prompt(
        "report_conclusion",
        category={"name": category.name("en")},
        notes=[{"id": i, "note": line} for i, line in notes],
    )
    for attempt in range(1, TRIES + 1):
        try:
            return client.ask(
                "report:conclusion",
                prompt,
                Note,
                conclusion_check([line for _, line in notes]),
                max_tokens=CONCLUSION_TOKENS,
                mode="text",
                parse=_paragraph,
                repair=False,
                shrinkable=False,
            ).value.line
        except LLMInvalid:
            if attempt == TRIES:
                raise
    raise AssertionError("unreachable")


def notes_report(
    category: Category, papers: Sequence[Paper], language: str, client: LLMClient
) -> tuple[list[str], list[str], list[tuple[str, str]], str]:
    """Themes, keywords, notable (id, line) and conclusion; raises LLMError if it cannot.

    Papers whose note fails are left out; at least one note and the conclusion are
    needed. A timeout on one small question is not shrunk further: it is raised.
    """
    notes: list[tuple[str, str]] = []
    for paper in papers[:MAX_NOTES]:
        line = _ask_note(paper, client)
        if line is not None:
            notes.append((paper.arxiv_id, line))
    if not notes:
        raise LLMInvalid(f"{category.slug}: no paper got a usable note")
    conclusion = _conclusion(category, notes, client)
    if language != "en":
        *translated, in_language = _translate(
            [line for _, line in notes] + [conclusion], language, client
        )
        if in_language is None:
            raise LLMInvalid(f"{category.slug}: no usable {language} translation of the conclusion")
        conclusion = in_language
        notes = [(i, line) for (i, _), line in zip(notes, translated, strict=True) if line]
        if not notes:
            raise LLMInvalid(f"{category.slug}: no usable {language} translation of any note")
    themes = category_themes(papers, category) or title_keywords(papers)[:3]
    return themes, title_keywords(papers), notes, conclusion
