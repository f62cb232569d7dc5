"""What one LLM request carries (``Job``) and how many run at once (``CallGate``).

Kept apart from ``llm_client`` so the client reads as its policy: cache, ask, judge,
retry, fall back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from newsletter.llm_answers import _schema_json
from newsletter.llm_prompts import Prompt

T = TypeVar("T", bound=BaseModel)

#: How an answer is asked for: a JSON-schema response format, JSON in the prompt, or text.
Mode = Literal["schema", "json", "text"]


class CallGate:
    """At most ``limit`` calls at a time; remembers which calls overlapped another."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active: list[dict[str, bool]] = []
        self._cond = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[dict[str, bool]]:
        token = {"shared": False}
        with self._cond:
            while len(self._active) >= self.limit:
                self._cond.wait()
            for other in self._active:
                other["shared"] = True
            token["shared"] = bool(self._active)
            self._active.append(token)
        try:
            yield token
        finally:
            with self._cond:
                self._active.remove(token)
                self._cond.notify_all()

    def drop_to_one(self) -> bool:
        """Allow one call at a time from now on; True when this changed the limit."""
        with self._cond:
            changed = self.limit > 1
            self.limit = 1
            return changed


@dataclass(frozen=True)
class Job(Generic[T]):
    """What one ``ask`` wants, passed down its calls."""

    purpose: str
    prompt: Prompt
    schema: type[T]
    check: Callable[[T], None] | None
    max_tokens: int
    json_schema: dict[str, Any] | None
    mode: Mode | None
    parse: Callable[[str], T] | None
    repair: bool

    def schema_dict(self) -> dict[str, Any]:
        return self.json_schema or dict(json.loads(_schema_json(self.schema)))

    def response_format(self) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {"name": self.prompt.name, "schema": self.schema_dict(), "strict": True},
        }


#: Failures, with no success, after which a way of asking is skipped for the rest of a run
#: (one failure may be bad luck on one category; two in a row rarely are).
FAILURES_BEFORE_SKIP = 2


class TrackRecord:
    """Which ways of asking (e.g. a report's answer formats) worked in this run.

    A slow model spends a minute on each answer it cannot get right; asking every
    category in a format it already failed at costs the run that much each time, so
    callers skip a way that failed and never worked in this run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}

    def note(self, way: str, ok: bool) -> None:
        with self._lock:
            self._counts.setdefault(way, [0, 0])[0 if ok else 1] += 1

    def failing(self, way: str) -> bool:
        """True when ``way`` failed FAILURES_BEFORE_SKIP times in this run and never worked."""
        with self._lock:
            ok, failed = self._counts.get(way, (0, 0))
        return failed >= FAILURES_BEFORE_SKIP and ok == 0
