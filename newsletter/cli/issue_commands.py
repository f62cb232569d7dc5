"""Commands over one day's issue: demo, collect, preview, rebuild, send, run-once, deliveries."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.cli.common import out, parse_date, services, settings
from newsletter.cli.registry import DATE, JSON, arg, command
from newsletter.errors import InvalidInputError
from newsletter.statuses import DeliveryStatus

if TYPE_CHECKING:
    from newsletter.app import Services


@command(
    "demo",
    "run every stage on the bundled sample (with NEWSLETTER_LLM_MODEL when set, else offline)",
    arg("--out", default="demo-output", help="output directory (default: demo-output)"),
)
def demo(args: argparse.Namespace) -> int:
    from newsletter.preview import demo as run_demo

    config = settings(args)
    if config.llm_model:
        made = f"with {config.llm_model} from NEWSLETTER_LLM_MODEL; the footer says what it did"
        print(f"Asking {config.llm_model} (NEWSLETTER_LLM_MODEL); a slow model takes minutes.")
    else:
        made = "offline: rule-based, extractive; set NEWSLETTER_LLM_MODEL to use a model"
    result = run_demo(Path(args.out), config)
    print(f"Demo issue for {result.date} (bundled sample, {made}):")
    for path in result.files:
        print(f"  {path}")
    print(f"  delivery to a demo reader: {result.report.line()}")
    print(f"Open {result.files[0]} in a browser.")
    return 0


@command(
    "collect",
    "fetch every feed and store new papers",
    arg("--date", help="expected announcement date YYYY-MM-DD (warns on mismatch)"),
)
def collect(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from newsletter.collecting import collect as collect_feeds
    from newsletter.errors import ConfigurationError
    from newsletter.sources.empty_days import stated_empty_dates
    from newsletter.sources.progress import RichProgress

    date = parse_date(args.date)
    svc = services(args)
    if not svc.settings.feeds:
        raise ConfigurationError(
            "NEWSLETTER_FEEDS is empty; set at least one feed URL, "
            "e.g. https://rss.arxiv.org/rss/cs.AI+cs.CL"
        )
    display = RichProgress() if sys.stderr.isatty() else None
    with display or nullcontext():
        report = collect_feeds(svc, date, progress=display)
    for s in report.sources:
        print(s.line())
        for problem in s.problems:
            print(f"  {s.url}: {problem}")
        for note in s.notes:
            print(f"  {s.url}: kept: {note}")
    for day in sorted(stated_empty_dates(report)):
        print(f"arXiv announced nothing on {day} (a weekend or holiday): no issue for that day")
    count = len(report.sources)
    print(f"collected: {report.new} new papers from {count} source{'' if count == 1 else 's'}")
    return 0 if report.ok else 1


@command(
    "preview",
    "write an issue as HTML, text, PNG and .eml without sending",
    DATE,
    arg("--categories", help="comma-separated slugs (default: all)"),
    arg("--language", help="report language, e.g. ko or en"),
    arg("--subscriber", metavar="EMAIL", help="what this reader gets (their choices)"),
    arg("--out", default="preview", help="output directory (default: preview)"),
    arg("--open", action="store_true", help="open the HTML in a browser"),
)
def preview(args: argparse.Namespace) -> int:
    from newsletter.preview import preview as write_preview

    date = parse_date(args.date)
    svc = services(args)
    cats = svc.taxonomy.parse_list(args.categories) if args.categories else None
    language = args.language
    reader = None
    if args.subscriber:
        reader, cats, language = _subscriber_view(svc, args)
    files = write_preview(svc, date, Path(args.out), cats, language, subscriber_id=reader)
    for path in files:
        print(path)
    if args.open:
        import webbrowser

        webbrowser.open(files[0].resolve().as_uri())
    return 0


def _subscriber_view(svc: Services, args: argparse.Namespace) -> tuple[int, tuple[str, ...], str]:
    """The id, categories and language of a given reader (``preview --subscriber``)."""
    from subscribers.readers import get_by_email

    if args.categories:
        raise InvalidInputError("use either --subscriber or --categories, not both")
    reader = get_by_email(svc.engine, args.subscriber)
    if reader is None:
        raise InvalidInputError("no such subscriber; see `newsletter subscribers list`")
    if reader.status != "active":
        print(f"note: this reader is {reader.status} and gets no issue now", file=sys.stderr)
    return reader.id, reader.categories, args.language or reader.language


@command(
    "send",
    "prepare and mail an issue to every active reader",
    DATE,
    arg("--dry-run", action="store_true", help="render and count without sending"),
    arg(
        "--resend-unknown",
        action="store_true",
        help="also mail readers left 'unknown' by an interrupted run (they may get it twice)",
    ),
)
def send(args: argparse.Namespace) -> int:
    from newsletter.collecting import collect_if_missing
    from newsletter.daemon import stop_on_signals
    from newsletter.delivery import get_backend
    from newsletter.delivery.memory import MemoryBackend
    from newsletter.delivery.progress import terminal_progress
    from newsletter.sending import send as send_issue

    date = parse_date(args.date)
    svc = services(args)
    # A dry run mails nobody, so it needs no credentials.
    backend = MemoryBackend() if args.dry_run else get_backend(svc.settings)
    collected = collect_if_missing(svc, date)
    for source in collected.sources if collected else ():
        if source.error:
            print(f"source failed: {source.url}: {source.error}", file=sys.stderr)
    stop = threading.Event()
    with terminal_progress() as progress, stop_on_signals(stop):
        report = send_issue(
            svc,
            date,
            backend,
            dry_run=args.dry_run,
            resend_unknown=args.resend_unknown,
            progress=progress,
            should_stop=stop.is_set,
        )
    # Notes go to stderr: stdout is exactly one line, the summary, for scripts.
    for note in report.notes:
        print(note, file=sys.stderr)
    if args.dry_run:
        print("dry run: nothing was sent; `sent` counts who would get it", file=sys.stderr)
    print(report.line())
    return 0 if report.ok else 1


@command(
    "deliveries",
    "list an issue's deliveries per reader",
    arg("--date", help="issue date YYYY-MM-DD (default: the newest with deliveries)"),
    arg("--status", choices=[s.value for s in DeliveryStatus]),
    JSON,
)
def deliveries(args: argparse.Namespace) -> int:
    from newsletter.delivery import ledger
    from newsletter.issues import get_issue

    date = parse_date(args.date)
    svc = services(args)
    if date is None:
        latest = ledger.latest_issue(svc.engine)
        if latest is None:
            raise InvalidInputError("nothing was sent yet; run `newsletter send` first")
        issue_id, date = latest
    else:
        issue = get_issue(svc.engine, date)
        if issue is None or issue.id is None:
            raise InvalidInputError(f"there is no issue for {date}; see `newsletter status`")
        issue_id = issue.id
    rows = ledger.list_deliveries(svc.engine, issue_id, [args.status] if args.status else None)
    out(
        [r.as_json() for r in rows],
        args.json,
        lambda: [
            f"{r.email}\t{r.status}\t{r.updated_at:%Y-%m-%d %H:%M:%S}\t{r.message_id}\t{r.error}"
            for r in rows
        ],
    )
    return 0


@command("run-once", "collect, then prepare and send (idempotent per date)", DATE)
def run_once(args: argparse.Namespace) -> int:
    from newsletter.daemon import stop_on_signals
    from newsletter.daily_run import cron_run
    from newsletter.delivery import get_backend

    date = parse_date(args.date)
    svc = services(args)
    stop = threading.Event()
    # SIGTERM (a CronJob's pod being stopped) lets the current chunk finish and be recorded.
    with stop_on_signals(stop):
        collected, report = cron_run(svc, lambda: get_backend(svc.settings), date, stop)
    for s in collected.sources:
        if s.error:
            print(f"source failed: {s.url}: {s.error}", file=sys.stderr)
    for note in report.notes:
        print(note)
    print(report.line())
    return 0 if report.ok and collected.ok else 1


@command(
    "rebuild",
    "redo a date's classification or reports on purpose (unsent issues; --archive-only "
    "for a sent one's web version)",
    arg("--date", required=True, help="issue date YYYY-MM-DD"),
    arg("--part", choices=("classification", "reports"), default="classification"),
    arg("--language", help="only the reports in this language (default: every stored one)"),
    arg("--archive-only", action="store_true", help="allow a sent issue: web version only"),
)
def rebuild(args: argparse.Namespace) -> int:
    from newsletter.rebuild import rebuild as redo

    date = parse_date(args.date)
    assert date is not None
    for digest in redo(services(args), date, args.part, args.language, args.archive_only):
        print(f"{digest.date} {digest.language}: {digest.made_note or digest.made_with}")
    return 0


COMMANDS = (demo, collect, preview, rebuild, send, deliveries, run_once)
