"""A rich progress display for ``newsletter collect``: one bar per source.

Used only when stderr is a terminal; the one-line summaries go to stdout either way.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from newsletter.sources.collect import SourceStats


class RichProgress:
    """Implements ``collect.CollectProgress`` with a ``rich.progress.Progress``."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            console=console or Console(stderr=True),
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def started(self, url: str) -> None:
        label = url if len(url) <= 60 else url[:57] + "..."
        self.tasks[url] = self.progress.add_task(label, total=None, state="fetching")

    def parsed(self, url: str, total: int) -> None:
        self.progress.update(self.tasks[url], total=total, state="storing")

    def stored(self, url: str, count: int) -> None:
        self.progress.advance(self.tasks[url], count)

    def finished(self, stats: SourceStats) -> None:
        task = self.tasks[stats.url]
        if stats.error:
            state = f"[red]failed: {stats.error}[/]"
        elif stats.not_modified:
            state = "not modified"
        else:
            state = f"[green]{stats.new} new[/]" + (
                f", [yellow]{stats.failed} failed[/]" if stats.failed else ""
            )
        total = self.progress.tasks[task].total or 0
        self.progress.update(task, total=total, completed=total, state=state)
