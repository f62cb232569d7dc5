"""Commands over readers: subscribers add/list/remove/import/export/purge-pending, bounces."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from newsletter.cli.common import out, services
from newsletter.cli.registry import JSON, arg, command
from newsletter.errors import InvalidInputError


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
    "subscribers import",
    "import readers from CSV (email,categories,language)",
    arg("file"),
)
def import_readers(args: argparse.Namespace) -> int:
    from subscribers.csv_io import import_csv

    path = Path(args.file)
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from exc
    svc = services(args)
    imported, suppressed = import_csv(svc.engine, svc.taxonomy, text, svc.settings.language)
    print(f"imported: {imported}, kept suppressed (unsubscribed/bounced/complained): {suppressed}")
    return 0


@command("subscribers export", "export readers as CSV")
def export_readers(args: argparse.Namespace) -> int:
    from subscribers.csv_io import export_csv

    sys.stdout.write(export_csv(services(args).engine))
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
    import_readers,
    export_readers,
    purge_pending,
    import_bounces,
)
