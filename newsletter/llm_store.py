"""The LLM's tables: the answer cache, the embedding cache and the call ledger.

The cache makes a re-run of a date free: an answer is stored under (model, prompt
name, prompt version, input hash) and found again by any process that asks the
same question. Embeddings ("For you") are cached the same way, under (model, sha256
of the text): a paper is embedded once, a reader's interests once per change. The
ledger records every call, cached or not, so the operator can see what a day cost
(``newsletter llm usage``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from newsletter.db import table_of, utcnow


class LLMCacheRow(SQLModel, table=True):
    """One validated answer; only answers that passed validation are stored."""

    __tablename__ = "llm_cache"
    __table_args__ = (
        sa.UniqueConstraint("model", "prompt", "version", "input_hash", name="uq_llm_cache"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=200)
    prompt: str = Field(max_length=100)
    version: int
    input_hash: str = Field(max_length=64)
    answer: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    answered_by: str = Field(default="", max_length=200)
    created_at: dt.datetime = Field(default_factory=utcnow)


class LLMCallRow(SQLModel, table=True):
    """One request to a model (or one cache hit standing in for it)."""

    __tablename__ = "llm_calls"

    id: int | None = Field(default=None, primary_key=True)
    day: dt.date | None = Field(default=None, index=True)
    purpose: str = Field(max_length=100)
    model: str = Field(max_length=200)
    prompt: str = Field(default="", max_length=100)
    version: int = 0
    # ok | cached | invalid | capped (hit max_tokens) | timeout | error
    outcome: str = Field(default="ok", max_length=20)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    duration_ms: float = 0.0
    cache_hit: bool = False
    error: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, default=""))
    created_at: dt.datetime = Field(default_factory=utcnow)


class EmbeddingRow(SQLModel, table=True):
    """One text's embedding by one model: float32 values, little-endian."""

    __tablename__ = "llm_embeddings"
    __table_args__ = (sa.UniqueConstraint("model", "text_hash", name="uq_llm_embeddings"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=200)
    text_hash: str = Field(max_length=64)
    dims: int
    vector: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)


CACHE = table_of(LLMCacheRow)
CALLS = table_of(LLMCallRow)
EMBEDDINGS = table_of(EmbeddingRow)
#: Hashes asked per query (an IN list; PostgreSQL and SQLite cap the parameters).
_HASHES_PER_QUERY = 500


#: Outcomes of a request that gave no usable answer.
FAILED = ("invalid", "capped", "timeout", "error")


@dataclass(frozen=True)
class CallRecord:
    """What the client knows about one call when it records it."""

    day: dt.date | None
    purpose: str
    model: str
    prompt: str
    version: int
    outcome: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    duration_ms: float = 0.0
    cache_hit: bool = False
    error: str = ""


def cached_answer(
    engine: Engine, model: str, prompt: str, version: int, input_hash: str
) -> tuple[str, str] | None:
    """(answer, the model that gave it) for this question, if it was answered before."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(CACHE.c.answer, CACHE.c.answered_by).where(
                CACHE.c.model == model,
                CACHE.c.prompt == prompt,
                CACHE.c.version == version,
                CACHE.c.input_hash == input_hash,
            )
        ).first()
    return None if row is None else (str(row[0]), str(row[1]))


def answered_at(
    engine: Engine, model: str, prompt: str, version: int, input_hash: str
) -> dt.datetime | None:
    """When this question was first answered (stored), if it was."""
    with engine.connect() as conn:
        found: dt.datetime | None = conn.execute(
            sa.select(CACHE.c.created_at).where(
                CACHE.c.model == model,
                CACHE.c.prompt == prompt,
                CACHE.c.version == version,
                CACHE.c.input_hash == input_hash,
            )
        ).scalar()
    if found is None:
        return None
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


def store_answer(
    engine: Engine,
    model: str,
    prompt: str,
    version: int,
    input_hash: str,
    answer: str,
    answered_by: str,
) -> None:
    """Keep the first stored answer when two runs race on the same question."""
    from newsletter.db import insert_ignore

    with engine.begin() as conn:
        conn.execute(
            insert_ignore(engine, CACHE),
            [
                {
                    "model": model,
                    "prompt": prompt,
                    "version": version,
                    "input_hash": input_hash,
                    "answer": answer,
                    "answered_by": answered_by,
                    "created_at": utcnow(),
                }
            ],
        )


def text_hash(text: str) -> str:
    """The embedding cache key of ``text``: sha256 of its UTF-8, hex."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cached_vectors(engine: Engine, model: str, hashes: Sequence[str]) -> dict[str, bytes]:
    """text hash -> stored float32 vector bytes, for the ``hashes`` embedded before."""
    found: dict[str, bytes] = {}
    wanted = list(dict.fromkeys(hashes))
    with engine.connect() as conn:
        for start in range(0, len(wanted), _HASHES_PER_QUERY):
            rows = conn.execute(
                sa.select(EMBEDDINGS.c.text_hash, EMBEDDINGS.c.vector).where(
                    EMBEDDINGS.c.model == model,
                    EMBEDDINGS.c.text_hash.in_(wanted[start : start + _HASHES_PER_QUERY]),
                )
            )
            found.update((str(r[0]), bytes(r[1])) for r in rows)
    return found


def store_vectors(engine: Engine, model: str, vectors: dict[str, bytes], dims: int) -> None:
    """Keep text hash -> vector bytes; a hash stored meanwhile by another run is kept."""
    from newsletter.db import insert_ignore

    if not vectors:
        return
    now = utcnow()
    rows = [
        {"model": model, "text_hash": h, "dims": dims, "vector": v, "created_at": now}
        for h, v in vectors.items()
    ]
    with engine.begin() as conn:
        conn.execute(insert_ignore(engine, EMBEDDINGS), rows)


def record_call(engine: Engine, call: CallRecord) -> None:
    values: dict[str, Any] = {
        "day": call.day,
        "purpose": call.purpose,
        "model": call.model,
        "prompt": call.prompt,
        "version": call.version,
        "outcome": call.outcome,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "cost": call.cost,
        "duration_ms": call.duration_ms,
        "cache_hit": call.cache_hit,
        "error": call.error[:1000],
        "created_at": utcnow(),
    }
    with engine.begin() as conn:
        conn.execute(sa.insert(CALLS), [values])


@dataclass(frozen=True)
class UsageLine:
    """Totals of one (day, purpose, model) in the ledger."""

    day: dt.date | None
    purpose: str
    model: str
    calls: int
    cache_hits: int
    failed: int
    capped: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None  # None when some call's price is unknown
    duration_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat() if self.day else None,
            "purpose": self.purpose,
            "model": self.model,
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "failed": self.failed,
            "capped": self.capped,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost,
            "seconds": round(self.duration_ms / 1000, 3),
        }


def usage(engine: Engine, day: dt.date | None = None) -> list[UsageLine]:
    """Per day, purpose and model: requests made, cache hits, failures, tokens and cost."""
    sent = sa.not_(CALLS.c.cache_hit)
    unpriced = sa.and_(sent, CALLS.c.outcome != "error", CALLS.c.cost.is_(None))
    query = (
        sa.select(
            CALLS.c.day,
            CALLS.c.purpose,
            CALLS.c.model,
            sa.func.sum(sa.case((sent, 1), else_=0)),
            sa.func.sum(sa.case((CALLS.c.cache_hit, 1), else_=0)),
            sa.func.sum(sa.case((CALLS.c.outcome.in_(FAILED), 1), else_=0)),
            sa.func.sum(sa.case((CALLS.c.outcome == "capped", 1), else_=0)),
            sa.func.sum(CALLS.c.prompt_tokens),
            sa.func.sum(CALLS.c.completion_tokens),
            sa.func.sum(sa.func.coalesce(CALLS.c.cost, 0.0)),
            sa.func.sum(sa.case((unpriced, 1), else_=0)),
            sa.func.sum(CALLS.c.duration_ms),
        )
        .group_by(CALLS.c.day, CALLS.c.purpose, CALLS.c.model)
        .order_by(CALLS.c.day, CALLS.c.purpose, CALLS.c.model)
    )
    if day is not None:
        query = query.where(CALLS.c.day == day)
    with engine.connect() as conn:
        rows: Sequence[Any] = conn.execute(query).all()
    return [
        UsageLine(
            day=r[0],
            purpose=r[1],
            model=r[2],
            calls=int(r[3] or 0),
            cache_hits=int(r[4] or 0),
            failed=int(r[5] or 0),
            capped=int(r[6] or 0),
            prompt_tokens=int(r[7] or 0),
            completion_tokens=int(r[8] or 0),
            cost=None if int(r[10] or 0) else float(r[9] or 0.0),
            duration_ms=float(r[11] or 0.0),
        )
        for r in rows
    ]
