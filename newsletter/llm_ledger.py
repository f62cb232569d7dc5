"""The LLM ledger's writer for one run: a row per request and per cache hit.

``newsletter llm usage`` and the benchmarks read these rows (``llm_store`` owns the
table); the client writes one for every answer, failure and cache hit, with tokens,
cost, duration and outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from newsletter import llm, llm_store
from newsletter.llm_prompts import Prompt


@dataclass(frozen=True)
class CallLedger:
    engine: Engine
    day: dt.date | None

    def reply(
        self, purpose: str, prompt: Prompt, reply: llm.Reply, outcome: str, error: str = ""
    ) -> None:
        """A row for an answer the model gave (``outcome``: ok, invalid or capped)."""
        self.record(
            purpose,
            prompt,
            reply.model,
            outcome,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            cost=reply.cost,
            duration_ms=reply.duration_ms,
            error=error,
        )

    def record(
        self,
        purpose: str,
        prompt: Prompt,
        model: str,
        outcome: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: float | None = None,
        duration_ms: float = 0.0,
        cache_hit: bool = False,
        error: str = "",
    ) -> None:
        llm_store.record_call(
            self.engine,
            llm_store.CallRecord(
                day=self.day,
                purpose=purpose,
                model=model,
                prompt=prompt.name,
                version=prompt.version,
                outcome=outcome,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=0.0 if cache_hit else cost,
                duration_ms=duration_ms,
                cache_hit=cache_hit,
                error=error,
            ),
        )
