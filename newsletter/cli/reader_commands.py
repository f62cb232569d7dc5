"""Commands over readers: subscribers add/list/remove/interests/import/export/purge-pending,
bounces."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.cli.common import out, services
from newsletter.cli.registry import JSON, arg, command
from newsletter.errors import InvalidInputError

if TYPE_CHECKING:
    from subscribers.interests import LikedPaper


@command(
    "subscribers add",
    "add an active reader (the operator vouches for it)",
    arg("email"),
    arg("--categories", help="comma-separated slugs (default: all)"),
    arg("--language", help="report language (default: NEWSLETTER_LANGUAGE)"),
    arg(
        "--cadence",
        choices=("daily", "weekly"),
        help="every issue, or one weekly digest (default: daily; a known reader keeps theirs)",
    ),
    arg("--weekday", help="a weekly reader's day: mon .. sun (default: mon)"),
)
def add(args: argparse.Namespace) -> int:
    from subscribers.readers import WEEKDAYS, add_active, parse_weekday

    svc = services(args)
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


@command(
    "subscribers list",
    "list readers",
    arg("--status", help="only this status (active, pending, unsubscribed, ...)"),
    JSON,
)
def list_readers(args: argparse.Namespace) -> int:
    from subscribers.readers import list_subscribers

    infos = list_subscribers(services(args).engine, args.status)
    out(
        [i.as_json() for i in infos],
        args.json,
        lambda: [f"{i.email}\t{i.status}\t{','.join(i.categories)}\t{i.language}" for i in infos],
    )
    return 0


@command("subscribers remove", "unsubscribe a reader", arg("email"))
def remove(args: argparse.Namespace) -> int:
    from subscribers.readers import unsubscribe_address

    info = unsubscribe_address(services(args).engine, args.email, source="cli")
    if info is None:
        raise InvalidInputError("no such subscriber; see `newsletter subscribers list`")
    if info.status == "unsubscribed":
        print("unsubscribed (the address is kept as a suppression so it is never mailed again)")
    else:
        print(f"the address stays {info.status}: it is never mailed again")
    return 0


@command(
    "subscribers interests",
    "show or set a reader's interests (free text, liked papers) for the For you block",
    arg("email"),
    arg("--text", help="topics, methods, a few sentences (1,000 characters at most; '' clears)"),
    arg("--bibtex", metavar="FILE", help="liked papers from a BibTeX export (replaces the list)"),
    arg("--ris", metavar="FILE", help="liked papers from a RIS export (replaces the list)"),
    arg("--clear", action="store_true", help="forget them (with --text/--bibtex/--ris: replace)"),
    JSON,
)
def interests(args: argparse.Namespace) -> int:
    from subscribers import interests as store
    from subscribers.readers import get_by_email

    papers = _liked_papers(args.bibtex, args.ris)  # a bad file stops here, nothing changed
    engine = services(args).engine
    info = get_by_email(engine, args.email)
    if info is None:
        raise InvalidInputError("no such subscriber; see `newsletter subscribers list`")
    text = args.text
    if args.clear:
        text, papers = text or "", papers or []
    if args.clear and not text and not papers:
        store.clear_interests(engine, info.id)
    elif text is not None or papers is not None:
        store.set_interests(engine, info.id, text=text, papers=papers)
    now = store.get_interests(engine, info.id)
    if args.json:
        out({"email": info.email, **(now.as_json() if now else {})}, True, lambda: [])
        return 0
    if now is None:
        print(f"{info.email}: no interests (no For you block; invite them to the preference page)")
        return 0
    print(f"{info.email}: text {len(now.text)} characters, {len(now.papers)} liked papers")
    if now.text:
        print(now.text)
    return 0


def _liked_papers(bibtex: str | None, ris: str | None) -> list[LikedPaper] | None:
    """The papers of the files given (both: one list), or None when none was given."""
    if bibtex is None and ris is None:
        return None
    from subscribers.interest_files import parse_bibtex, parse_ris

    papers: list[LikedPaper] = []
    for name, parse in ((bibtex, parse_bibtex), (ris, parse_ris)):
        if name is not None:
            path = Path(name)
            if not path.is_file():
                raise InvalidInputError(f"cannot read {path}: no such file")
            papers.extend(parse(path.read_bytes()))
    return papers


@command(
    "subscribers import",
    "import readers from CSV (email,categories,language[,interests]): checked whole, then in bulk",
    arg("file"),
    arg("--dry-run", action="store_true", help="check the file and say what would change"),
    JSON,
)
def import_readers(args: argparse.Namespace) -> int:
    from subscribers.bulk_import import import_readers as bulk_import

    path = Path(args.file)
    if not path.is_file():
        raise InvalidInputError(f"cannot read {path}: no such file")
    svc = services(args)
    with _import_bar() as progress:
        try:
            summary = bulk_import(
                svc.engine,
                svc.taxonomy,
                path,
                svc.settings.language,
                dry_run=args.dry_run,
                progress=progress,
            )
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc}; save it as UTF-8") from exc
    out(summary.as_json(), args.json, lambda: [summary.line()])
    if args.dry_run and not args.json:
        print("dry run: nothing was written", file=sys.stderr)
    return 0


@contextmanager
def _import_bar() -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("importing readers", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


@command("subscribers export", "export readers as CSV (streamed)")
def export_readers(args: argparse.Namespace) -> int:
    from subscribers.csv_io import write_csv

    write_csv(services(args).engine, sys.stdout)
    return 0


@command(
    "subscribers stats", "readers per status; active readers per category, language, cadence", JSON
)
def stats(args: argparse.Namespace) -> int:
    from subscribers.stats import reader_stats

    figures = reader_stats(services(args).engine)

    def lines() -> list[str]:
        return [
            line
            for title, counts in figures.items()
            for line in (f"{title}:", *(f"  {key or '-'}: {n}" for key, n in counts.items()))
        ]

    out(figures, args.json, lines)
    return 0


@command(
    "subscribers purge-pending",
    "delete sign-ups that were never confirmed",
    arg("--days", type=int, default=30, help="older than this many days (default: 30)"),
)
def purge_pending(args: argparse.Namespace) -> int:
    import datetime as dt

    from subscribers.signup import purge_unconfirmed

    if args.days < 1:
        raise InvalidInputError("--days must be 1 or more (confirmation links last 7 days)")
    purged = purge_unconfirmed(services(args).engine, dt.timedelta(days=args.days))
    print(f"purged: {purged} sign-ups never confirmed within {args.days} days")
    return 0


@command(
    "bounces import",
    "mark readers bounced from DSN messages (mbox, Maildir or a directory)",
    arg("file", help="an mbox file, a Maildir, a directory of messages, or one message"),
)
def import_bounces(args: argparse.Namespace) -> int:
    from newsletter.delivery.bounces import import_bounces as read_bounces

    report = read_bounces(services(args).engine, Path(args.file))
    print(report.line())
    return 0


COMMANDS = (
    add,
    list_readers,
    remove,
    interests,
    import_readers,
    export_readers,
    stats,
    purge_pending,
    import_bounces,
)
