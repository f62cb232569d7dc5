"""Embeddings for "For you" (NEWSLETTER_EMBEDDING_MODEL): cached, batched, counted.

A text is embedded once per model: vectors are kept in ``llm_store``'s embedding
cache under (model, sha256 of the text), so a paper costs one embedding however many
sends and manage pages rank it, and a reader's interests one per change (their text
and each liked paper are texts of their own). What is missing is asked in batches of
NEWSLETTER_EMBEDDING_BATCH_SIZE, retried like a completion, and every request goes
into the LLM ledger (purpose ``foryou-embed``), so ``newsletter llm usage`` shows it.
A model that keeps failing is not fatal: the caller ranks with BM25 instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from newsletter import llm, llm_store
from newsletter.settings import Settings

log = logging.getLogger(__name__)

PURPOSE = "foryou-embed"
_RETRIED = ("rate_limited", "server", "unreachable", "timeout")


def decode(blob: bytes) -> Any:
    """A stored vector as a float32 numpy array."""
    import numpy as np

    return np.frombuffer(blob, dtype="<f4")


def connection(settings: Settings) -> dict[str, str]:
    """The embedding endpoint and key: their own settings, else the LLM's."""
    extra: dict[str, str] = {}
    if base := settings.embedding_api_base or settings.llm_api_base:
        extra["api_base"] = base
    if key := settings.embedding_api_key or settings.llm_api_key:
        extra["api_key"] = key
    return extra


class Embedder:
    """Vectors of texts through one model, for one day's ledger lines."""

    def __init__(self, engine: Engine, settings: Settings, day: dt.date | None) -> None:
        self.engine = engine
        self.settings = settings
        self.model = settings.embedding_model
        self.day = day
        #: Embedding requests made (cache misses, in batches) and texts found cached.
        self.requests = 0
        self.cached = 0

    def vectors(self, texts: Sequence[str]) -> dict[str, Any] | None:
        """text -> vector for every text, or None when the model failed (rank offline)."""
        hashes = {text: llm_store.text_hash(text) for text in dict.fromkeys(texts)}
        stored = llm_store.cached_vectors(self.engine, self.model, list(hashes.values()))
        missing = [t for t, h in hashes.items() if h not in stored]
        self.cached += len(hashes) - len(missing)
        size = self.settings.embedding_batch_size
        for start in range(0, len(missing), size):
            batch = missing[start : start + size]
            made = self._embed(batch)
            if made is None:
                return None
            stored.update((hashes[t], v) for t, v in made.items())
        return {text: decode(stored[h]) for text, h in hashes.items()}

    def _embed(self, texts: list[str]) -> dict[str, bytes] | None:
        """One batch through the model (retried), stored and recorded; None: it failed."""
        import numpy as np

        attempts = self.settings.llm_max_retries + 1
        wait = self.settings.llm_retry_wait
        for attempt in range(1, attempts + 1):
            self.requests += 1
            try:
                answer = llm.embed(
                    self.model,
                    texts,
                    timeout=self.settings.llm_timeout,
                    connection=connection(self.settings),
                )
            except llm.CallFailed as exc:
                self._record("error", error=f"{exc.kind}: {exc.message}")
                if exc.kind not in _RETRIED or attempt == attempts:
                    log.warning(
                        "embedding with %s failed (%s); For you ranks with BM25 instead",
                        self.model,
                        exc.message,
                    )
                    return None
                pause = min(exc.retry_after or wait * 2 ** (attempt - 1), 60.0)
                self._sleep(pause)
                continue
            rows = np.asarray(answer.vectors, dtype="<f4")
            made = {text: rows[n].tobytes() for n, text in enumerate(texts)}
            llm_store.store_vectors(
                self.engine,
                self.model,
                {llm_store.text_hash(t): v for t, v in made.items()},
                rows.shape[1],
            )
            self._record(
                "ok",
                prompt_tokens=answer.prompt_tokens,
                cost=answer.cost,
                duration_ms=answer.duration_ms,
            )
            return made
        return None

    def _sleep(self, seconds: float) -> None:
        import time

        time.sleep(max(seconds, 0.0))

    def _record(self, outcome: str, **values: Any) -> None:
        llm_store.record_call(
            self.engine,
            llm_store.CallRecord(
                day=self.day,
                purpose=PURPOSE,
                model=self.model,
                prompt="embedding",
                version=0,
                outcome=outcome,
                **values,
            ),
        )
