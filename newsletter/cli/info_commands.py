"""Commands that describe the setup: categories, llm usage, llm check."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING

from newsletter.cli.common import out, parse_date, services, settings
from newsletter.cli.registry import JSON, arg, command

if TYPE_CHECKING:
    from newsletter.app import Services


@command("categories", "list the category taxonomy", JSON)
def categories(args: argparse.Namespace) -> int:
    from newsletter.categories import load_taxonomy

    taxonomy = load_taxonomy(settings(args).categories_file)
    data = [
        {"slug": c.slug, "emoji": c.emoji, "names": c.names, "description": c.description}
        for c in taxonomy.categories
    ]
    out(
        data,
        args.json,
        lambda: [
            f"{c.emoji} {c.slug:<24} {c.name('en')}: {c.description}" for c in taxonomy.categories
        ],
    )
    return 0


@command(
    "llm usage",
    "calls, cache hits, tokens and cost per day and purpose",
    arg("--date", help="only this issue date YYYY-MM-DD"),
    JSON,
)
def llm_usage(args: argparse.Namespace) -> int:
    from newsletter.llm_store import usage

    date = parse_date(args.date)
    lines = usage(services(args).engine, date)

    def text() -> list[str]:
        if not lines:
            return ["no LLM calls recorded" + (f" for {date}" if date else "")]
        rows = [
            f"{'day':<10}  {'purpose':<16} {'model':<28} {'calls':>5} {'cached':>6} "
            f"{'failed':>6} {'prompt tok':>10} {'compl tok':>9} {'cost USD':>9}"
        ]
        for u in lines:
            cost = "unknown" if u.cost is None else f"{u.cost:.4f}"
            rows.append(
                f"{u.day.isoformat() if u.day else '-':<10}  {u.purpose:<16} {u.model:<28} "
                f"{u.calls:>5} {u.cache_hits:>6} {u.failed:>6} {u.prompt_tokens:>10} "
                f"{u.completion_tokens:>9} {cost:>9}"
            )
        return rows

    if date is None:
        out([u.as_json() for u in lines], args.json, text)
        return 0
    made = _provenance(services(args), date)
    data = {"day": date.isoformat(), "calls": [u.as_json() for u in lines], "provenance": made}
    out(data, args.json, lambda: [*text(), *_provenance_lines(made)])
    return 0


def _provenance(svc: Services, date: dt.date) -> dict[str, object] | None:
    """What the model did for the issue of ``date`` (None: no issue, or none recorded)."""
    from newsletter.issue_state import IssueContent
    from newsletter.issues import get_issue

    issue = get_issue(svc.engine, date)
    made = IssueContent.load(issue.content).made if issue is not None else None
    return made.counts() if made is not None else None


def _provenance_lines(made: dict[str, object] | None) -> list[str]:
    if made is None:
        return []
    return ["", "provenance: " + json.dumps(made, ensure_ascii=False)]


@command(
    "llm check",
    "send one tiny classify and report to each configured model: speed, schema mode, "
    "recommended settings; exit 1 when unusable",
    JSON,
)
def llm_check(args: argparse.Namespace) -> int:
    from newsletter.errors import ConfigurationError
    from newsletter.llm_check import check

    svc = services(args)
    if not svc.settings.llm_model:
        raise ConfigurationError("no model to check: set NEWSLETTER_LLM_MODEL (offline mode)")
    results = check(svc.settings, svc.engine, svc.taxonomy)
    out(
        [r.as_json() for r in results],
        args.json,
        lambda: [line for r in results for line in r.lines()],
    )
    return 0 if results[0].usable else 1


COMMANDS = (categories, llm_usage, llm_check)
