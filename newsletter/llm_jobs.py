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
