"""``newsletter llm check``: is each configured model usable, how fast is it, what settings fit it.

Sends one tiny classification (three calibration papers) and one tiny report to
the configured model and each fallback, straight to the provider (never from the
cache, so the timing is real), and reports the latency to the first token,
reading and writing speed in tokens per second, whether JSON-schema mode works,
and the NEWSLETTER_LLM_TIMEOUT / BATCH_SIZE / CONCURRENCY it recommends for that
model. A model is unusable when it cannot be reached or gives no usable answer
to either task.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

from sqlalchemy.engine import Engine

from newsletter import llm
from newsletter.categories import Taxonomy
from newsletter.classify_batches import ClassificationAnswer, batch_prompt, batch_schema, judge
from newsletter.classify_batches import output_cap as classify_cap
from newsletter.llm_answers import AnswerRejected, parse_answer
from newsletter.llm_client import LLMClient
from newsletter.llm_prompts import render_prompt
from newsletter.llm_quality import calibration_set, stored
from newsletter.report_language import language_name
from newsletter.report_llm import ReportAnswer, report_check, report_schema
from newsletter.report_llm import output_cap as report_cap
from newsletter.settings import Settings

#: Prompt tokens a typical category report reads; the timeout must cover reading it.
TYPICAL_REPORT_PROMPT = 2000
#: Prompt tokens one paper adds to a classify batch (id, title, 400 characters).
PAPER_TOKENS = 130


@dataclass
class ModelCheck:
    """What one model did with the two tiny tasks, and the settings that suit it."""

    model: str
    usable: bool = False
    problems: list[str] = field(default_factory=list)
    schema_mode: bool | None = None
    first_token_s: float | None = None
    read_tokens_per_s: float | None = None
    write_tokens_per_s: float | None = None
    classify_ok: bool = False
    report_ok: bool = False
    recommended: dict[str, int] = field(default_factory=dict)
    qualification: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        def rate(value: float | None) -> str:
            return "?" if value is None else f"{value:.1f}"

        status = "usable" if self.usable else "UNUSABLE"
        out = [f"{self.model}: {status}"]
        if self.first_token_s is not None:
            out.append(
                f"  first token after {self.first_token_s:.1f} s; reads "
                f"{rate(self.read_tokens_per_s)} tokens/s, writes "
                f"{rate(self.write_tokens_per_s)} tokens/s"
            )
        schema = {True: "works", False: "refused (JSON asked in the prompt)", None: "?"}
        out.append(f"  JSON-schema mode: {schema[self.schema_mode]}")
        out.append(
            f"  tiny classify: {'ok' if self.classify_ok else 'failed'}; "
            f"tiny report: {'ok' if self.report_ok else 'failed'}"
        )
        if self.qualification:
            out.append(f"  classification: {self.qualification}")
        out.extend(f"  problem: {p}" for p in self.problems)
        if self.recommended:
            out.append(
                "  recommended: "
                + " ".join(f"NEWSLETTER_LLM_{k.upper()}={v}" for k, v in self.recommended.items())
            )
        return out


def _is_local(api_base: str) -> bool:
    host = urlparse(api_base).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".local")


def check_model(settings: Settings, engine: Engine, taxonomy: Taxonomy, model: str) -> ModelCheck:
    """Run the two tiny tasks against ``model``."""
    result = ModelCheck(model)
    client = LLMClient(settings.model_copy(update={"llm_model": model}), engine)
    papers = [item.paper for item in calibration_set()[:3]]
    connection = client.connection(model)

    def send(messages: list[dict[str, str]], cap: int, schema: dict[str, Any] | None) -> llm.Reply:
        fmt = None
        if schema is not None:
            fmt = {"type": "json_schema", "json_schema": {"name": "check", "schema": schema}}
        return llm.complete(
            llm.Request(
                model=model,
                messages=messages,
                timeout=settings.llm_timeout,
                max_tokens=cap,
                temperature=settings.llm_temperature,
                response_format=fmt,
                connection=connection,
                stream=settings.llm_stream,
            )
        )

    prompt = batch_prompt(papers, taxonomy)
    schema = batch_schema(papers, taxonomy)
    try:
        try:
            reply = send(prompt.messages(), classify_cap(papers), schema)
            result.schema_mode = True
        except llm.CallFailed as failed:
            if failed.kind != "schema_refused":
                raise
            result.schema_mode = False
            messages = prompt.messages()
            messages[0]["content"] += (
                "\n\n" + render_prompt("json_only", schema=json.dumps(schema)).system
            )
            reply = send(messages, classify_cap(papers), None)
    except llm.CallFailed as failed:
        result.problems.append(f"classify: {failed.message}")
        return result
    _speed(result, reply)
    try:
        if reply.capped:
            raise AnswerRejected("the answer hit its output cap")
        verdict = judge(parse_answer(reply.content, ClassificationAnswer), papers, taxonomy)
        result.classify_ok = len(verdict.labels) == len(papers)
        if not result.classify_ok:
            result.problems.append(f"classify: {verdict.problem}")
    except AnswerRejected as exc:
        result.problems.append(f"classify: {exc}")
    result.report_ok = _tiny_report(result, settings, taxonomy, papers, send)
    result.usable = result.classify_ok or result.report_ok
    found = stored(client, taxonomy)
    if found is not None:
        result.qualification = found.describe()
    result.recommended = _recommend(result, settings)
    return result


def _tiny_report(
    result: ModelCheck, settings: Settings, taxonomy: Taxonomy, papers: list[Any], send: Any
) -> bool:
    category = taxonomy.get(taxonomy.slugs[0])
    language = settings.language
    prompt = render_prompt(
        "report",
        category={
            "slug": category.slug,
            "name": category.name("en"),
            "description": category.description,
        },
        language=language,
        language_name=language_name(language),
        papers=[{"id": p.arxiv_id, "title": p.title, "abstract": p.abstract} for p in papers],
        total=len(papers),
    )
    schema = report_schema()
    try:
        reply = send(
            prompt.messages(), report_cap(language), schema if result.schema_mode else None
        )
    except llm.CallFailed as failed:
        result.problems.append(f"report: {failed.message}")
        return False
    try:
        if reply.capped:
            raise AnswerRejected("the answer hit its output cap")
        parse_answer(reply.content, ReportAnswer, report_check(language, papers))
    except AnswerRejected as exc:
        result.problems.append(f"report ({language}): {exc}")
        return False
    return True


def _speed(result: ModelCheck, reply: llm.Reply) -> None:
    first = reply.first_token_ms / 1000
    writing = max((reply.duration_ms - reply.first_token_ms) / 1000, 1e-3)
    result.first_token_s = round(first, 2)
    result.read_tokens_per_s = round(reply.prompt_tokens / max(first, 1e-3), 1)
    result.write_tokens_per_s = round(reply.completion_tokens / writing, 1)


def _recommend(result: ModelCheck, settings: Settings) -> dict[str, int]:
    """Timeout to read a typical report prompt twice over; batches that read in half of it."""
    reading = result.read_tokens_per_s
    if not reading:
        return {}
    timeout = max(30, math.ceil(2 * TYPICAL_REPORT_PROMPT / reading / 10) * 10)
    frame = 600  # the classify prompt's own text
    fits = int((reading * timeout / 2 - frame) / PAPER_TOKENS)
    batch = max(settings.llm_min_batch, min(40, fits))
    local = _is_local(settings.llm_api_base)
    concurrency = 1 if local else settings.llm_concurrency
    return {"timeout": timeout, "batch_size": batch, "concurrency": concurrency}


def check(settings: Settings, engine: Engine, taxonomy: Taxonomy) -> list[ModelCheck]:
    """Every configured model checked, the primary first."""
    models = [settings.llm_model, *(m for m in settings.llm_fallbacks if m != settings.llm_model)]
    return [check_model(settings, engine, taxonomy, m) for m in models if m]
