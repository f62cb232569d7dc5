"""Logging for every command: text on a terminal, one JSON object per line in production.

``NEWSLETTER_LOG_FORMAT=json`` is for log collectors (journald, Docker, Kubernetes):
each record becomes one line with a timestamp, level, logger and message, plus any
``extra={...}`` fields a caller passed (``date``, ``outcome``), so runs can be filtered
without parsing prose.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

HANDLER_NAME = "newsletter"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Noisy libraries kept at WARNING unless --debug, so INFO shows our own story.
QUIET = ("matplotlib", "apscheduler", "uvicorn.access", "httpx", "LiteLLM", "cssutils")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each record (test runners swap it per test)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        """StreamHandler assigns its stream; this handler always follows sys.stderr."""


def configure_logging(
    level: int = logging.WARNING, log_format: Literal["text", "json"] = "text"
) -> None:
    """Replace the root handlers with one stderr handler in the chosen format."""
    handler = _StderrHandler()
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler: a test runner's capture handler stays attached.
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(
            logging.NOTSET if level <= logging.DEBUG else logging.WARNING
        )
    logging.getLogger("matplotlib").setLevel(
        logging.NOTSET if level <= logging.DEBUG else logging.ERROR
    )
