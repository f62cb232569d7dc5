"""The ``newsletter`` command: parses arguments, builds settings, calls the library.

Exit codes: 0 success, 1 partial failure (some source or delivery failed),
2 usage, configuration or input error. Errors print one line; ``--debug`` adds
the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from newsletter.errors import InvalidInputError, NewsletterError

log = logging.getLogger("newsletter")

Handler = Callable[[argparse.Namespace], int]


def _services(args: argparse.Namespace) -> Any:
    from newsletter.app import Services
    from newsletter.settings import load_settings

    settings = load_settings()
    _configure_logging(args.debug, settings.log_format, getattr(args, "log_level", logging.WARNING))
    return Services.build(settings)


def _out(data: Any, as_json: bool, lines: Callable[[], Sequence[str]]) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        for line in lines():
            print(line)


# -- commands -------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from newsletter.pipeline import demo
    from newsletter.settings import load_settings

    result = demo(Path(args.out), load_settings())
    print(f"Demo issue for {result.date} (offline: bundled sample, rule-based, extractive):")
    for path in result.files:
        print(f"  {path}")
    print(f"  delivery to a demo reader: {result.report.line()}")
    print(f"Open {result.files[0]} in a browser.")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from newsletter.errors import ConfigurationError
    from newsletter.pipeline import collect, parse_date
    from newsletter.sources.empty_days import stated_empty_dates
    from newsletter.sources.progress import RichProgress

    date = parse_date(args.date)
    svc = _services(args)
    if not svc.settings.feeds:
        raise ConfigurationError(
            "NEWSLETTER_FEEDS is empty; set at least one feed URL, "
            "e.g. https://rss.arxiv.org/rss/cs.AI+cs.CL"
        )
    display = RichProgress() if sys.stderr.isatty() else None
    with display or nullcontext():
        report = collect(svc, date, progress=display)
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


def cmd_preview(args: argparse.Namespace) -> int:
    from newsletter.pipeline import parse_date, preview

    date = parse_date(args.date)
    svc = _services(args)
    cats = svc.taxonomy.parse_list(args.categories) if args.categories else None
    language = args.language
    if args.subscriber:
        cats, language = _subscriber_view(svc, args)
    files = preview(svc, date, Path(args.out), cats, language)
    for path in files:
        print(path)
    if args.open:
        import webbrowser

        webbrowser.open(files[0].resolve().as_uri())
    return 0


def _subscriber_view(svc: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """The categories and language a given reader gets (``preview --subscriber``)."""
    from subscribers.store import get_by_email

    if args.categories:
        raise InvalidInputError("use either --subscriber or --categories, not both")
    reader = get_by_email(svc.engine, args.subscriber)
    if reader is None:
        raise InvalidInputError("no such subscriber; see `newsletter subscribers list`")
    if reader.status != "active":
        print(f"note: this reader is {reader.status} and gets no issue now", file=sys.stderr)
    return reader.categories, args.language or reader.language


def cmd_serve(args: argparse.Namespace) -> int:
    from subscribers.server import build_server
    from subscribers.web import create_app

    build_server(create_app(_services(args)), args.host, args.port).run()
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from newsletter.delivery import get_backend
    from newsletter.delivery.memory import MemoryBackend
    from newsletter.delivery.progress import terminal_progress
    from newsletter.papers import has_papers_on
    from newsletter.pipeline import collect, parse_date, resolve_date, send
    from newsletter.service import stop_on_signals

    date = parse_date(args.date)
    svc = _services(args)
    # A dry run mails nobody, so it needs no credentials.
    backend = MemoryBackend() if args.dry_run else get_backend(svc.settings)
    # Prepare what is missing: with no papers stored for the date, collect them first.
    target = resolve_date(svc, date)
    if target is None or not has_papers_on(svc.engine, target):
        for source in collect(svc, date).sources:
            if source.error:
                print(f"source failed: {source.url}: {source.error}", file=sys.stderr)
    stop = threading.Event()
    with terminal_progress() as progress, stop_on_signals(stop):
        report = send(
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


def cmd_deliveries(args: argparse.Namespace) -> int:
    from newsletter.delivery import ledger
    from newsletter.issues import get_issue
    from newsletter.pipeline import parse_date

    date = parse_date(args.date)
    svc = _services(args)
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
    _out(
        [r.as_json() for r in rows],
        args.json,
        lambda: [
            f"{r.email}\t{r.status}\t{r.updated_at:%Y-%m-%d %H:%M:%S}\t{r.message_id}\t{r.error}"
            for r in rows
        ],
    )
    return 0


def cmd_bounces_import(args: argparse.Namespace) -> int:
    from newsletter.delivery.bounces import import_bounces

    svc = _services(args)
    report = import_bounces(svc.engine, Path(args.file))
    print(report.line())
    return 0


def cmd_run_once(args: argparse.Namespace) -> int:
    from newsletter.delivery import get_backend
    from newsletter.pipeline import parse_date
    from newsletter.service import cron_run, stop_on_signals

    date = parse_date(args.date)
    svc = _services(args)
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


def cmd_start(args: argparse.Namespace) -> int:
    from newsletter.delivery import get_backend
    from newsletter.scheduler import parse_trigger
    from newsletter.service import connect, serve
    from newsletter.settings import load_settings

    settings = load_settings()
    if not args.no_scheduler:
        parse_trigger(settings.schedule, settings.timezone)
    _configure_logging(args.debug, settings.log_format, args.log_level)
    svc = connect(settings)
    get_backend(svc.settings)  # refuse a bad mail setup at start, not at 07:00
    ended = serve(
        svc,
        lambda: get_backend(svc.settings),
        host=args.host,
        port=args.port,
        web=not args.no_web,
        scheduler=not args.no_scheduler,
    )
    if ended.hard:
        # A run thread is still mailing; only a hard exit keeps the 30 s shutdown promise.
        logging.shutdown()
        os._exit(ended.code)
    return ended.code


def cmd_status(args: argparse.Namespace) -> int:
    from newsletter.service import health, status_lines

    data = health(_services(args))
    _out(data, args.json, lambda: status_lines(data))
    return 0 if data["ok"] else 1


def cmd_categories(args: argparse.Namespace) -> int:
    from newsletter.categories import load_taxonomy
    from newsletter.settings import load_settings

    taxonomy = load_taxonomy(load_settings().categories_file)
    data = [
        {"slug": c.slug, "emoji": c.emoji, "names": c.names, "description": c.description}
        for c in taxonomy.categories
    ]
    _out(
        data,
        args.json,
        lambda: [
            f"{c.emoji} {c.slug:<24} {c.name('en')}: {c.description}" for c in taxonomy.categories
        ],
    )
    return 0


def cmd_sub_add(args: argparse.Namespace) -> int:
    from subscribers.store import WEEKDAYS, add_active, parse_weekday

    svc = _services(args)
    cats = svc.taxonomy.parse_list(args.categories) if args.categories else None
    weekday = parse_weekday(args.weekday) if args.weekday is not None else None
    info = add_active(
        svc.engine,
        svc.taxonomy,
        args.email,
        cats,
        args.language or svc.settings.language,
        cadence=args.cadence,
        weekday=weekday,
    )
    when = f"weekly on {WEEKDAYS[info.weekday]}" if info.cadence == "weekly" else info.cadence
    print(f"{info.status}: {info.email} ({', '.join(info.categories)}; {info.language}; {when})")
    if info.status != "active":
        print("the reader said no or the address is dead: only they can subscribe again")
    return 0


def cmd_sub_list(args: argparse.Namespace) -> int:
    from subscribers.store import list_subscribers

    svc = _services(args)
    infos = list_subscribers(svc.engine, args.status)
    _out(
        [i.as_json() for i in infos],
        args.json,
        lambda: [f"{i.email}\t{i.status}\t{','.join(i.categories)}\t{i.language}" for i in infos],
    )
    return 0


def cmd_sub_remove(args: argparse.Namespace) -> int:
    from subscribers.store import unsubscribe_address

    svc = _services(args)
    info = unsubscribe_address(svc.engine, args.email, source="cli")
    if info is None:
        raise InvalidInputError("no such subscriber; see `newsletter subscribers list`")
    if info.status == "unsubscribed":
        print("unsubscribed (the address is kept as a suppression so it is never mailed again)")
    else:
        print(f"the address stays {info.status}: it is never mailed again")
    return 0


def cmd_sub_import(args: argparse.Namespace) -> int:
    from subscribers.store import import_csv

    path = Path(args.file)
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from exc
    svc = _services(args)
    imported, suppressed = import_csv(svc.engine, svc.taxonomy, text, svc.settings.language)
    print(f"imported: {imported}, kept suppressed (unsubscribed/bounced/complained): {suppressed}")
    return 0


def cmd_sub_export(args: argparse.Namespace) -> int:
    from subscribers.store import export_csv

    sys.stdout.write(export_csv(_services(args).engine))
    return 0


def cmd_sub_purge(args: argparse.Namespace) -> int:
    import datetime as dt

    from subscribers.store import purge_unconfirmed

    if args.days < 1:
        raise InvalidInputError("--days must be 1 or more (confirmation links last 7 days)")
    purged = purge_unconfirmed(_services(args).engine, dt.timedelta(days=args.days))
    print(f"purged: {purged} sign-ups never confirmed within {args.days} days")
    return 0


def cmd_llm_usage(args: argparse.Namespace) -> int:
    from newsletter.llm_store import usage
    from newsletter.pipeline import parse_date

    date = parse_date(args.date)
    lines = usage(_services(args).engine, date)

    def text() -> list[str]:
        if not lines:
            return ["no LLM calls recorded" + (f" for {date}" if date else "")]
        out = [
            f"{'day':<10}  {'purpose':<16} {'model':<28} {'calls':>5} {'cached':>6} "
            f"{'failed':>6} {'prompt tok':>10} {'compl tok':>9} {'cost USD':>9}"
        ]
        for u in lines:
            cost = "unknown" if u.cost is None else f"{u.cost:.4f}"
            out.append(
                f"{u.day.isoformat() if u.day else '-':<10}  {u.purpose:<16} {u.model:<28} "
                f"{u.calls:>5} {u.cache_hits:>6} {u.failed:>6} {u.prompt_tokens:>10} "
                f"{u.completion_tokens:>9} {cost:>9}"
            )
        return out

    _out([u.as_json() for u in lines], args.json, text)
    return 0


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsletter",
        description="Daily AI Insights: collect new AI papers, write reports, mail readers.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command("demo", cmd_demo, "run every stage offline on the bundled sample")
    p.add_argument("--out", default="demo-output", help="output directory (default: demo-output)")

    p = command("collect", cmd_collect, "fetch every feed and store new papers")
    p.add_argument("--date", help="expected announcement date YYYY-MM-DD (warns on mismatch)")

    p = command(
        "preview", cmd_preview, "write an issue as HTML, text, PNG and .eml without sending"
    )
    p.add_argument("--date", help="announcement date YYYY-MM-DD (default: newest unsent)")
    p.add_argument("--categories", help="comma-separated slugs (default: all)")
    p.add_argument("--language", help="report language, e.g. ko or en")
    p.add_argument("--subscriber", metavar="EMAIL", help="what this reader gets (their choices)")
    p.add_argument("--out", default="preview", help="output directory (default: preview)")
    p.add_argument("--open", action="store_true", help="open the HTML in a browser")

    p = command("send", cmd_send, "prepare and mail an issue to every active reader")
    p.add_argument("--date", help="announcement date YYYY-MM-DD (default: newest unsent)")
    p.add_argument("--dry-run", action="store_true", help="render and count without sending")
    p.add_argument(
        "--resend-unknown",
        action="store_true",
        help="also mail readers left 'unknown' by an interrupted run (they may get it twice)",
    )

    p = command("deliveries", cmd_deliveries, "list an issue's deliveries per reader")
    p.add_argument("--date", help="issue date YYYY-MM-DD (default: the newest with deliveries)")
    p.add_argument("--status", choices=("unknown", "failed", "sent", "deferred", "sending"))
    p.add_argument("--json", action="store_true", help="print JSON")

    bounces = sub.add_parser(
        "bounces", help="bounce reports (SMTP)", description="bounce reports (SMTP)"
    )
    bounces_sub = bounces.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = bounces_sub.add_parser(
        "import",
        help="mark readers bounced from DSN messages (mbox, Maildir or a directory)",
        description="mark readers bounced from DSN messages (mbox, Maildir or a directory)",
    )
    p.set_defaults(handler=cmd_bounces_import)
    p.add_argument("file", help="an mbox file, a Maildir, a directory of messages, or one message")

    p = command("run-once", cmd_run_once, "collect, then prepare and send (idempotent per date)")
    p.add_argument("--date", help="announcement date YYYY-MM-DD (default: newest unsent)")

    p = command("start", cmd_start, "run the web app and the daily schedule in one process")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("--no-web", action="store_true", help="run only the scheduler")
    p.add_argument("--no-scheduler", action="store_true", help="run only the web app")
    p.set_defaults(log_level=logging.INFO)

    p = command("status", cmd_status, "database, scheduler, last issue and next run")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("serve", cmd_serve, "run the web app: subscribe, manage, unsubscribe, archive")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.set_defaults(log_level=logging.INFO)

    p = command("categories", cmd_categories, "list the category taxonomy")
    p.add_argument("--json", action="store_true", help="print JSON")

    subs = sub.add_parser("subscribers", help="manage readers", description="manage readers")
    subs_sub = subs.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

    def sub_command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = subs_sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = sub_command("add", cmd_sub_add, "add an active reader (the operator vouches for it)")
    p.add_argument("email")
    p.add_argument("--categories", help="comma-separated slugs (default: all)")
    p.add_argument("--language", help="report language (default: NEWSLETTER_LANGUAGE)")
    p.add_argument(
        "--cadence",
        choices=("daily", "weekly"),
        help="every issue, or one weekly digest (default: daily; a known reader keeps theirs)",
    )
    p.add_argument("--weekday", help="a weekly reader's day: mon .. sun (default: mon)")
    p = sub_command("list", cmd_sub_list, "list readers")
    p.add_argument("--status", help="only this status (active, pending, unsubscribed, ...)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub_command("remove", cmd_sub_remove, "unsubscribe a reader")
    p.add_argument("email")
    p = sub_command("import", cmd_sub_import, "import readers from CSV (email,categories,language)")
    p.add_argument("file")
    sub_command("export", cmd_sub_export, "export readers as CSV")
    p = sub_command("purge-pending", cmd_sub_purge, "delete sign-ups that were never confirmed")
    p.add_argument("--days", type=int, default=30, help="older than this many days (default: 30)")
    llm_cmd = sub.add_parser("llm", help="LLM calls and cost", description="LLM calls and cost")
    llm_sub = llm_cmd.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = llm_sub.add_parser(
        "usage",
        help="calls, cache hits, tokens and cost per day and purpose",
        description="calls, cache hits, tokens and cost per day and purpose",
    )
    p.set_defaults(handler=cmd_llm_usage)
    p.add_argument("--date", help="only this issue date YYYY-MM-DD")
    p.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _configure_logging(
    debug: bool, log_format: Literal["text", "json"] = "text", level: int = logging.WARNING
) -> None:
    from newsletter.logs import configure_logging

    configure_logging(logging.DEBUG if debug else level, log_format)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.debug)
    handler: Handler = args.handler
    try:
        return handler(args)
    except NewsletterError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
