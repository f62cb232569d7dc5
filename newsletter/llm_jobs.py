"""What one LLM request carries (``Job``), how many run at once (``CallGate``), which
ways of asking and which models work in this run (``TrackRecord``, ``ModelHealth``) and
how long to wait before a retry (``retry_wait``).

Kept apart from ``llm_client`` so the client reads as its policy: cache, ask, judge,
retry, fall back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from tenacity import RetryCallState, wait_random_exponential

from newsletter import llm
from newsletter.llm_answers import _schema_json
from newsletter.llm_prompts import Prompt

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

#: Timeouts in a row on work that cannot shrink before a model counts as stalled (down).
STALLS_BEFORE_DOWN = 2
#: Failures that mark a model down for the run (after the retries, where retried).
DOWN_KINDS = frozenset({"auth", "not_found", "rate_limited", "server", "unreachable"})

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
#: A failure that cost this many seconds counts as FAILURES_BEFORE_SKIP on its own: on a
#: slow model a second try of a format it cannot write costs minutes, on a fast one seconds.
COSTLY_FAILURE_SECONDS = 30.0


class TrackRecord:
    """Which ways of asking (e.g. a report's answer formats) work for the model.

    A slow model spends a minute on each answer it cannot get right; asking every
    category in a format it already failed at costs the run that much each time, so
    callers skip a way that failed FAILURES_BEFORE_SKIP times and never worked. Such
    a verdict is kept (``keep``) and recalled by later runs (``recall``), which then
    skip the way from their first category on.
    """

    def __init__(
        self,
        recall: Callable[[str], bool] | None = None,
        keep: Callable[[str], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}
        self._recalled: dict[str, bool] = {}
        self._recall, self._keep = recall, keep

    def note(self, way: str, ok: bool, seconds: float = 0.0) -> None:
        """Record one attempt; a failure that took ``seconds`` >= COSTLY_FAILURE_SECONDS
        weighs as much as FAILURES_BEFORE_SKIP failures."""
        with self._lock:
            counts = self._counts.setdefault(way, [0, 0])
            before = counts[1]
            if ok:
                counts[0] += 1
            else:
                costly = seconds >= COSTLY_FAILURE_SECONDS
                counts[1] = max(counts[1] + 1, FAILURES_BEFORE_SKIP if costly else 0)
            verdict = not counts[0] and before < FAILURES_BEFORE_SKIP <= counts[1]
        if verdict and self._keep is not None:
            self._keep(way)

    def failed_like(self, prefix: str) -> bool:
        """True when some way starting with ``prefix`` is failing in this run (the same
        format in another language, say): a first failure here is then no bad luck."""
        with self._lock:
            return any(
                way.startswith(prefix) and not ok and failed >= FAILURES_BEFORE_SKIP
                for way, (ok, failed) in self._counts.items()
            )

    def failing(self, way: str) -> bool:
        """True when ``way`` failed in this run (or an earlier one) and never worked."""
        with self._lock:
            ok, failed = self._counts.get(way, (0, 0))
        if ok:
            return False
        if failed >= FAILURES_BEFORE_SKIP:
            return True
        if self._recall is None:
            return False
        with self._lock:
            known = self._recalled.get(way)
        if known is None:
            known = self._recall(way)
            with self._lock:
                self._recalled[way] = known
        return known


class ModelHealth:
    """Which models are down for this run, and why.

    Only an outage (unreachable, refused credentials, unknown model, rate limits and
    server errors that outlast the retries) or repeated stalls on work that cannot
    shrink mark a model down; a timeout on work that can shrink only shrinks it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down: dict[str, str] = {}
        self._stalls: dict[str, int] = {}

    def down(self) -> dict[str, str]:
        with self._lock:
            return dict(self._down)

    def answered(self, model: str) -> None:
        """An answer came: earlier stalls of ``model`` no longer count."""
        with self._lock:
            self._stalls.pop(model, None)

    def note_failure(self, model: str, failed: llm.CallFailed, shrinkable: bool) -> None:
        reason = ""
        with self._lock:
            if failed.kind in DOWN_KINDS:
                reason = failed.message
            elif failed.kind == "timeout" and not shrinkable:
                self._stalls[model] = self._stalls.get(model, 0) + 1
                if self._stalls[model] >= STALLS_BEFORE_DOWN:
                    reason = f"stalled {self._stalls[model]} times on the smallest work"
            if reason:
                self._down[model] = reason


def retry_wait(base: float, cap: float) -> Callable[[RetryCallState], float]:
    """Tenacity's wait: Retry-After where the provider sends one (capped), else jittered
    exponential back-off from ``base`` seconds up to ``cap``."""
    backoff = wait_random_exponential(multiplier=base, max=cap)

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        asked = exc.retry_after if isinstance(exc, llm.CallFailed) else None
        if asked is not None:
            seconds = min(asked, cap)
            log.warning(
                "rate limited; waiting %.2f s as Retry-After asks (cap %.0f s)", seconds, cap
            )
            return seconds
        return float(backoff(state))

    return wait
