"""What every command needs: settings and services built once, dates, output, logging."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from newsletter.errors import InvalidInputError

if TYPE_CHECKING:
    from newsletter.app import Services
    from newsletter.settings import Settings


def settings(args: argparse.Namespace) -> Settings:
    """The settings, read once per command, with logging configured from them."""
    from newsletter.settings import load_settings

    loaded = load_settings()
    configure_logging(args.debug, loaded.log_format, getattr(args, "log_level", logging.WARNING))
    return loaded


def services(args: argparse.Namespace) -> Services:
    """The composition root for a command that touches the database."""
    from newsletter.app import Services

    return Services.build(settings(args))


def parse_date(text: str | None) -> dt.date | None:
    """``--date`` as a date, or None when it was not given."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInputError(f"invalid date {text!r}: use YYYY-MM-DD, e.g. 2024-11-22") from exc


def out(data: Any, as_json: bool, lines: Callable[[], Sequence[str]]) -> None:
    """Print ``data`` as JSON for scripts, or the human ``lines``."""
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        for line in lines():
            print(line)


def configure_logging(
    debug: bool, log_format: Literal["text", "json"] = "text", level: int = logging.WARNING
) -> None:
    from newsletter.logs import configure_logging as configure

    configure(logging.DEBUG if debug else level, log_format)
