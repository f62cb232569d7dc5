"""The ``newsletter`` command: parses arguments, builds settings, calls the library.

One module per command group holds its handlers, each declared with its options
(``registry.command``); this module only assembles them into one parser and runs one.
Handlers import the library inside their body, so a command loads only what it uses.

Exit codes: 0 success, 1 partial failure (some source or delivery failed),
2 usage, configuration or input error. Errors print one line; ``--debug`` adds
the traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from newsletter.cli import info_commands, issue_commands, reader_commands, service_commands
from newsletter.cli.common import configure_logging
from newsletter.cli.registry import Command, Handler
from newsletter.errors import NewsletterError, database_error

#: Every command, in the order ``--help`` lists them.
COMMANDS: tuple[Command, ...] = (
    *issue_commands.COMMANDS,
    *service_commands.COMMANDS,
    *reader_commands.COMMANDS,
    *info_commands.COMMANDS,
)

#: Help of the command groups (``newsletter subscribers ...``).
GROUPS = {
    "subscribers": "manage readers",
    "bounces": "bounce reports (SMTP)",
    "llm": "LLM calls and cost",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsletter",
        description="Daily AI Insights: collect new AI papers, write reports, mail readers.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for cmd in COMMANDS:
        where = top
        if len(cmd.path) == 2:
            group = cmd.path[0]
            if group not in groups:
                p = top.add_parser(group, help=GROUPS[group], description=GROUPS[group])
                groups[group] = p.add_subparsers(
                    dest="subcommand", metavar="SUBCOMMAND", required=True
                )
            where = groups[group]
        p = where.add_parser(cmd.path[-1], help=cmd.help, description=cmd.help)
        for a in cmd.args:
            p.add_argument(*a.flags, **a.options)
        p.set_defaults(handler=cmd.handler, **cmd.defaults)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.debug)
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
    except Exception as exc:
        # A database that drops mid-run surfaces wherever the next query is: say it in one
        # line, as the database errors we raise ourselves, not as SQL and parameters.
        known = database_error(exc)
        if known is None or args.debug:
            raise
        print(f"error: {known}", file=sys.stderr)
        return known.exit_code


def run() -> None:
    sys.exit(main())
