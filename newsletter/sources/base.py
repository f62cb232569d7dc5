"""What every source kind returns: the papers of one feed and the date it announces."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from newsletter.models import Paper


@dataclass(frozen=True)
class ParsedFeed:
    url: str
    announced: dt.date | None
    papers: tuple[Paper, ...]
    skipped_replacements: int = 0
    problems: tuple[str, ...] = field(default_factory=tuple)
