"""The sample day against a real OpenAI-compatible model: what it did, how right, how fast.

Run: ``python -m bench.llm_local [--api-base URL] [--model NAME] [--languages ko,en]``
(default: the local kit of ``../shared/local-llm`` on 127.0.0.1:8089, model
``openai/local``). Other NEWSLETTER_LLM_* settings are read from the environment;
concurrency defaults to 1 (the kit has one slot). In a throwaway database it runs
the bundled sample day (2024-11-22, 24 papers) through qualification,
classification and the reports in each language, and prints:

- the qualification (calibration papers placed right by the model and the rules);
- papers classified by the model / by the rules;
- papers placed under a labelled category (``bench/data/sample-day-labels.json``):
  as issued, and by the rules alone;
- reports by the model / offline per language, model reports citing their own
  papers, notable lines that copy a title or abstract;
- calls, tokens, calls that hit their cap and timeouts per stage, wall time per stage;
- the issue's targets, met or not.
Never part of the test suite (a real model is slow); the lead runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sqlalchemy as sa

from newsletter import llm_store
from newsletter.app import prepare_database
from newsletter.categories import load_taxonomy
from newsletter.classify import classify_llm, classify_rules, group
from newsletter.db import make_engine
from newsletter.llm_client import FAILING_WAY, LLMClient
from newsletter.llm_quality import STORED_AS
from newsletter.models import CategoryReport, Paper
from newsletter.report_copies import copies
from newsletter.settings import load_settings
from newsletter.sources.collect import parse_feed
from newsletter.summarize import write_reports

LABELS = Path(__file__).parent / "data" / "sample-day-labels.json"
_ID = re.compile(r"\d{4}\.\d{4,5}")


def sample_papers() -> list[Paper]:
    content = resources.files("newsletter").joinpath("data/sample-arxiv.xml").read_bytes()
    return list(parse_feed(content, "bundled-sample", False).papers)


def placed(classification: dict[str, tuple[str, ...]], labels: dict[str, list[str]]) -> int:
    return sum(1 for i, slugs in classification.items() if set(slugs) & set(labels.get(i, [])))


def ledger(engine: Any, since_id: int, purpose: str | None = None) -> dict[str, int]:
    """Calls sent, tokens, capped and timed-out calls recorded after row ``since_id``."""
    calls = llm_store.CALLS
    query = sa.select(
        calls.c.outcome,
        calls.c.cache_hit,
        calls.c.prompt_tokens,
        calls.c.completion_tokens,
        calls.c.duration_ms,
    ).where(calls.c.id > since_id)
    if purpose is not None:
        query = query.where(calls.c.purpose == purpose)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    sent = [r for r in rows if not r[1]]
    return {
        "calls": len(sent),
        "prompt_tokens": sum(int(r[2]) for r in sent),
        "completion_tokens": sum(int(r[3]) for r in sent),
        "capped": sum(1 for r in sent if r[0] == "capped"),
        "timeouts": sum(1 for r in sent if r[0] == "timeout"),
        "invalid": sum(1 for r in sent if r[0] == "invalid"),
        "seconds": int(sum(float(r[4]) for r in sent) / 1000),
    }


def last_id(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(llm_store.CALLS.c.id))).scalar() or 0)


def judge_reports(
    reports: dict[str, CategoryReport], grouped: dict[str, tuple[Paper, ...]]
) -> dict[str, int]:
    by_model = {s: r for s, r in reports.items() if r.made_by != "extractive"}
    citing = copied = 0
    for slug, report in by_model.items():
        own = {p.arxiv_id for p in grouped[slug]}
        cited = {m.group(0) for f in report.findings for m in _ID.finditer(f)}
        cited |= {n.arxiv_id for n in report.notable}
        citing += bool(cited & own)
        by_id = {p.arxiv_id: p for p in grouped[slug]}
        copied += any(
            n.arxiv_id in by_id and copies(n.line, by_id[n.arxiv_id]) for n in report.notable
        )
    return {
        "model": len(by_model),
        "offline": len(reports) - len(by_model),
        "citing_own": citing,
        "copying": copied,
        "total": len(reports),
    }


def line(stage: str, seconds: float, used: dict[str, int]) -> str:
    return (
        f"  {stage:<15} {seconds:7.1f} s  {used['calls']:3d} calls  "
        f"{used['prompt_tokens']:6d} prompt + {used['completion_tokens']:5d} completion tokens  "
        f"{used['capped']} capped, {used['timeouts']} timed out, {used['invalid']} invalid"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.llm_local", description=__doc__)
    parser.add_argument("--api-base", default="http://127.0.0.1:8089/v1")
    parser.add_argument("--model", default="openai/local")
    parser.add_argument("--api-key", default=os.environ.get("NEWSLETTER_LLM_API_KEY", "x"))
    parser.add_argument("--languages", default="ko,en")
    parser.add_argument(
        "--again",
        action="store_true",
        help="then run the day again as a later day would: the answers forgotten, what was "
        "learned about the model (qualification, failing formats) kept",
    )
    args = parser.parse_args(argv)
    languages = [code.strip() for code in args.languages.split(",") if code.strip()]
    labels = {k: v for k, v in json.loads(LABELS.read_text("utf-8")).items() if k[0].isdigit()}
    workdir = Path(tempfile.mkdtemp(prefix="bench-llm-local-"))
    overrides: dict[str, Any] = {
        "database_url": f"sqlite:///{workdir / 'bench.db'}",
        "llm_model": args.model,
        "llm_api_base": args.api_base,
        "llm_api_key": args.api_key,
    }
    if "NEWSLETTER_LLM_CONCURRENCY" not in os.environ:
        overrides["llm_concurrency"] = 1
    settings = load_settings(**overrides)
    engine = make_engine(settings.database_url)
    prepare_database(engine)
    taxonomy = load_taxonomy(settings.categories_file)
    papers = sample_papers()
    day = papers[0].announced
    print(
        f"{args.model} at {args.api_base}: {len(papers)} papers of {day}, languages "
        f"{', '.join(languages)}; timeout {settings.llm_timeout:g} s, batch "
        f"{settings.llm_batch_size}, concurrency {settings.llm_concurrency}, temperature "
        f"{settings.llm_temperature:g}"
    )
    first = run_day(settings, engine, taxonomy, papers, languages)
    report(first, papers, labels, "the first day (qualification and formats learned on it)")
    if args.again:
        forget_answers(engine)
        later = run_day(settings, engine, taxonomy, papers, languages)
        report(later, papers, labels, "a later day (qualified, formats known, no cached answer)")
    engine.dispose()
    return 0


@dataclass
class Day:
    result: Any
    grouped: dict[str, tuple[Paper, ...]]
    rules: dict[str, tuple[str, ...]]
    stages: list[tuple[str, float, dict[str, int]]]
    judged: dict[str, dict[str, int]]
    total: float
    qualify_used: dict[str, int]


def run_day(
    settings: Any, engine: Any, taxonomy: Any, papers: list[Paper], languages: list[str]
) -> Day:
    """Classification and each language's reports by a new client (one run), timed."""
    client = LLMClient(settings, engine, papers[0].announced)
    started = time.perf_counter()
    mark = last_id(engine)
    result = classify_llm(papers, taxonomy, client, settings.llm_batch_size)
    stages = [("classification", time.perf_counter() - started, ledger(engine, mark))]
    qualify_used = ledger(engine, mark, "calibrate")
    grouped = group(papers, result.classification, taxonomy)
    judged: dict[str, dict[str, int]] = {}
    for language in languages:
        begun, mark = time.perf_counter(), last_id(engine)
        reports = write_reports(grouped, taxonomy, language, client)
        stages.append((f"reports {language}", time.perf_counter() - begun, ledger(engine, mark)))
        judged[language] = judge_reports(reports, grouped)
    total = time.perf_counter() - started
    rules = classify_rules(papers, taxonomy)
    return Day(result, grouped, rules, stages, judged, total, qualify_used)


def forget_answers(engine: Any) -> None:
    """Drop the cached answers but what a run learns about the model (as on a new day)."""
    cache = llm_store.CACHE
    with engine.begin() as conn:
        conn.execute(cache.delete().where(cache.c.prompt.not_in([STORED_AS, FAILING_WAY])))


def report(day: Day, papers: list[Paper], labels: dict[str, list[str]], title: str) -> None:
    print(f"\n== {title}")
    result = day.result
    q = result.qualification
    unmeasured = "not measured (NEWSLETTER_LLM_QUALIFY off, or no answer)"
    print("qualification:", q.describe() if q else unmeasured)
    by_model = len(papers) - result.by_rules
    print(f"classification: {by_model} papers by the model, {result.by_rules} by the rules")
    issued, by_rules = placed(result.classification, labels), placed(day.rules, labels)
    who = "the model, rules for the rest" if by_model else "the rules: no model labels used"
    print(f"placed under a labelled category: {issued} of {len(papers)} as issued ({who})")
    print(f"                                  {by_rules} of {len(papers)} by the rules alone")
    for language, r in day.judged.items():
        print(
            f"reports {language}: {r['model']} of {r['total']} by the model, "
            f"{r['offline']} offline; {r['citing_own']} of the model's cite their own papers, "
            f"{r['copying']} copy a title or abstract"
        )
    print("\nper stage:")
    for stage, seconds, used in day.stages:
        print(line(stage, seconds, used))
    every = {k: sum(u[k] for _, _, u in day.stages) for k in day.stages[0][2]}
    print(line("whole day", day.total, every))
    once = day.qualify_used["seconds"]
    print(line("  of which the qualification (once per model, stored)", once, day.qualify_used))
    print("\ntargets:")
    verdict = "yes" if issued >= by_rules else "NO"
    print(f"  placed at least as right as the rules: {verdict} ({issued} vs {by_rules})")
    for language, r in day.judged.items():
        ok = r["model"] >= r["total"] - 2 and r["citing_own"] == r["model"] and not r["copying"]
        print(
            f"  {language}: >= {r['total'] - 2} of {r['total']} reports by the model, all "
            f"citing, none copied: {'yes' if ok else 'NO'}"
        )
    under = "yes" if day.total < 1200 else "NO"
    print(f"  the whole day under 20 minutes: {under} ({day.total / 60:.1f} min)")


if __name__ == "__main__":
    sys.exit(main())
