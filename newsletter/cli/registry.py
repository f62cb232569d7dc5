"""How a command declares itself: its name, help and options sit on its handler.

A handler module lists its commands; ``newsletter.cli.build_parser`` adds them to one
argparse tree. Handler modules import only this module and argparse at the top, and the
library code they call inside the handler, so ``--help`` and the light commands load
nothing they do not use.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Arg:
    """One ``add_argument`` call."""

    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    """A command: ``path`` is its words (``("subscribers", "add")``)."""

    path: tuple[str, ...]
    help: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


def command(name: str, help: str, *args: Arg, **defaults: Any) -> Callable[[Handler], Command]:
    """Declare a command on its handler: ``@command("subscribers add", "...", arg(...))``."""

    def declare(handler: Handler) -> Command:
        return Command(tuple(name.split()), help, handler, args, defaults)

    return declare


JSON = arg("--json", action="store_true", help="print JSON")
DATE = arg("--date", help="announcement date YYYY-MM-DD (default: newest unsent)")
HOST = arg("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
PORT = arg("--port", type=int, default=8000, help="port to listen on (default: 8000)")
