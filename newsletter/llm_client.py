"""``LLMClient``: validated, cached answers from the configured model, sized to what it can do.

``ask`` turns a versioned prompt and a pydantic answer model into a validated
answer and owns what makes that safe, cheap and bounded:

- a cache keyed by (model, prompt name, prompt version, input hash), so asking the
  same question again, in any process, costs nothing;
- every request carries an output cap (``max_tokens``, from the job) and
  NEWSLETTER_LLM_TEMPERATURE; an answer that hits its cap counts as invalid;
- three answer modes: a JSON-schema ``response_format`` where the provider takes
  one, JSON asked for in the prompt, or plain text with headings parsed by the caller;
- one repair turn for an unusable answer, restating the task with the error;
- retries with back-off on 429 (honouring ``Retry-After``), 5xx and lost
  connections, then the fallback models (``NEWSLETTER_LLM_FALLBACKS``);
- slow is not dead: a timeout raises ``LLMTimeout`` so the caller shrinks the work;
  only an unreachable server, refused credentials, an unknown model or repeated
  stalls on the smallest work mark a model down for the run;
- adaptive concurrency: NEWSLETTER_LLM_CONCURRENCY calls at a time, dropping to one
  when calls time out while others are in flight (a server with one slot queues them);
- a ledger row for every request and cache hit (tokens, cost, duration, outcome).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from newsletter import llm, llm_store
from newsletter.errors import LLMInvalid, LLMTimeout, LLMUnavailable
from newsletter.llm_answers import AnswerRejected, _schema_json, parse_answer
from newsletter.llm_jobs import CallGate, Job, Mode, ModelHealth, TrackRecord, retry_wait
from newsletter.llm_ledger import CallLedger
from newsletter.llm_prompts import Prompt, render_prompt
from newsletter.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")
ItemT = TypeVar("ItemT")

TIMEOUT_HINT = (
    "the model is slower than NEWSLETTER_LLM_TIMEOUT allows; raise NEWSLETTER_LLM_TIMEOUT, "
    "lower NEWSLETTER_LLM_BATCH_SIZE, or set NEWSLETTER_LLM_CONCURRENCY to the server's "
    "parallel slots (1 for a local server with one slot)"
)
#: A way of asking found failing is skipped by later runs for this long, then tried again
#: (a model served anew, a provider's fix); stored in the answer cache under this name.
FAILING_KEPT = dt.timedelta(days=7)
FAILING_WAY = "failing-way"
_RETRIED = {"rate_limited", "server", "unreachable"}


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    model: str
    cached: bool


class NotCached(LookupError):
    """``ask(cache_only=True)`` found no stored answer (nothing was sent)."""


class _Failed(Exception):
    """One model gave no usable answer; ``kind`` is a CallFailed kind or "invalid"."""

    def __init__(self, model: str, kind: str, reason: str) -> None:
        self.model, self.kind, self.reason = model, kind, reason
        super().__init__(f"{model}: {reason}")


@dataclass
class LLMClient:
    """Asks the configured model (then its fallbacks) for validated, cached answers."""

    settings: Settings
    engine: Engine
    day: dt.date | None = None
    _prompt_mode: set[str] = field(default_factory=set, init=False)
    _schema_support: dict[str, bool] = field(default_factory=dict, init=False)
    _health: ModelHealth = field(default_factory=ModelHealth, init=False)
    #: Which ways of asking worked in this run (a report's answer formats).
    track: TrackRecord = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _gate: CallGate = field(init=False)
    _ledger: CallLedger = field(init=False)
    _started: float = field(default_factory=time.monotonic, init=False)

    def __post_init__(self) -> None:
        self._gate = CallGate(self.settings.llm_concurrency)
        self._ledger = CallLedger(self.engine, self.day)
        self.track = TrackRecord(recall=self._recall_failing, keep=self._keep_failing)

    @property
    def model(self) -> str:
        return self.settings.llm_model

    @property
    def models(self) -> tuple[str, ...]:
        return (self.model, *(m for m in self.settings.llm_fallbacks if m != self.model))

    @property
    def concurrency(self) -> int:
        return self._gate.limit

    def down(self) -> dict[str, str]:
        """Models marked down in this run, with the reason."""
        return self._health.down()

    def takes_schema(self, model: str | None = None) -> bool:
        """Whether requests to ``model`` carry a JSON-schema response_format."""
        model = model or self.model
        with self._lock:
            if model in self._prompt_mode:
                return False
        if self.settings.llm_json_mode != "auto":
            return self.settings.llm_json_mode == "schema"
        if model not in self._schema_support:
            supported = llm.schema_supported(model)
            with self._lock:
                self._schema_support[model] = supported
        return self._schema_support[model]

    def ask(
        self,
        purpose: str,
        prompt: Prompt,
        schema: type[T],
        check: Callable[[T], None] | None = None,
        *,
        max_tokens: int,
        json_schema: dict[str, Any] | None = None,
        mode: Mode | None = None,
        parse: Callable[[str], T] | None = None,
        repair: bool = True,
        shrinkable: bool = True,
        cache_only: bool = False,
    ) -> Answer[T]:
        """A validated answer from the cache or the first model that gives one.

        ``mode`` None picks "schema" or "json" per model; "text" sends no schema and
        reads the answer with ``parse``. ``cache_only`` raises NotCached instead of
        asking. ``shrinkable`` False says the work cannot get smaller, so a timeout
        counts towards a stall. Raises LLMTimeout (shrink the work and ask
        again), LLMInvalid (no usable answer) or LLMUnavailable (every model down).
        """
        schema_text = (
            json.dumps(json_schema, sort_keys=True) if json_schema else _schema_json(schema)
        )
        key = [prompt.system, prompt.user, schema_text] + (["text"] if mode == "text" else [])
        input_hash = hashlib.sha256("\x00".join(key).encode("utf-8")).hexdigest()
        hit = self._from_cache(purpose, prompt, schema, check, input_hash)
        if hit is not None:
            return hit
        if cache_only:
            raise NotCached(purpose)
        self._within_budget(purpose)
        down_now = self._health.down()
        usable = [m for m in self.models if m not in down_now]
        down = "; ".join(f"{m}: {why}" for m, why in down_now.items())
        if not usable:
            raise LLMUnavailable(
                f"{purpose}: skipped, the model is unavailable in this run ({down})"
            )
        failures: list[_Failed] = []
        job = Job(purpose, prompt, schema, check, max_tokens, json_schema, mode, parse, repair)
        for model in usable:
            try:
                value = self._ask_model(model, job, shrinkable)
            except _Failed as failed:
                log.info("LLM %s failed for %s: %s", model, purpose, failed.reason)
                failures.append(failed)
                continue
            llm_store.store_answer(
                self.engine,
                self.model,
                prompt.name,
                prompt.version,
                input_hash,
                value.model_dump_json(),
                model,
            )
            return Answer(value, model, cached=False)
        summary = "; ".join(str(f) for f in failures)
        kinds = {f.kind for f in failures}
        if kinds <= {"timeout", "too_long"}:
            raise LLMTimeout(f"{purpose}: {summary}; {TIMEOUT_HINT}")
        if all(m in self.down() for m in usable):
            raise LLMUnavailable(
                f"{purpose}: no model gave a usable answer ({summary}); check "
                "NEWSLETTER_LLM_MODEL, NEWSLETTER_LLM_API_BASE and the provider's status, "
                "or add NEWSLETTER_LLM_FALLBACKS"
            )
        raise LLMInvalid(
            f"{purpose}: no model gave a usable answer ({summary}); check NEWSLETTER_LLM_MODEL, "
            "NEWSLETTER_LLM_API_BASE and the provider's status, or add NEWSLETTER_LLM_FALLBACKS"
        )

    def parallel(self, fn: Callable[[ItemT], R], items: Sequence[ItemT]) -> list[R]:
        """``fn`` over ``items``, NEWSLETTER_LLM_CONCURRENCY at a time, results in order."""
        if self.settings.llm_concurrency <= 1 or len(items) <= 1:
            return [fn(item) for item in items]
        llm.warm()  # import once here, not in several threads at the same time
        with ThreadPoolExecutor(max_workers=self.settings.llm_concurrency) as pool:
            return list(pool.map(fn, items))

    # -- internals ---------------------------------------------------------------------------

    def _recall_failing(self, way: str) -> bool:
        """Whether an earlier run found ``way`` failing, less than FAILING_KEPT ago."""
        key = hashlib.sha256(way.encode("utf-8")).hexdigest()
        at = llm_store.answered_at(self.engine, self.model, FAILING_WAY, 1, key)
        return at is not None and dt.datetime.now(dt.UTC) - at < FAILING_KEPT

    def _keep_failing(self, way: str) -> None:
        key = hashlib.sha256(way.encode("utf-8")).hexdigest()
        log.info("%s does not work for %s; later runs skip it for a while", way, self.model)
        llm_store.store_answer(self.engine, self.model, FAILING_WAY, 1, key, way, self.model)

    def _within_budget(self, purpose: str) -> None:
        """Raise LLMUnavailable once this run spent NEWSLETTER_LLM_RUN_BUDGET seconds.

        A slow model must not hold back the morning's mail: what is left falls back
        (keyword rules, extractive reports), is stored as such and asked again at the
        next build of an issue not yet sent.
        """
        budget = self.settings.llm_run_budget
        if budget and time.monotonic() - self._started > budget:
            raise LLMUnavailable(
                f"{purpose}: skipped, this run spent its model time budget "
                f"(NEWSLETTER_LLM_RUN_BUDGET={budget:g} s); the part falls back now and is "
                "asked again at the next build of an issue not yet sent"
            )

    def _from_cache(
        self,
        purpose: str,
        prompt: Prompt,
        schema: type[T],
        check: Callable[[T], None] | None,
        input_hash: str,
    ) -> Answer[T] | None:
        found = llm_store.cached_answer(
            self.engine, self.model, prompt.name, prompt.version, input_hash
        )
        if found is None:
            return None
        raw, answered_by = found
        try:
            value = parse_answer(raw, schema, check)
        except AnswerRejected as exc:
            log.warning("ignoring a cached %s answer that no longer validates: %s", purpose, exc)
            return None
        self._ledger.record(purpose, prompt, self.model, "cached", cache_hit=True)
        return Answer(value, answered_by or self.model, cached=True)

    def _ask_model(self, model: str, job: Job[T], shrinkable: bool) -> T:
        """The answer of one model, with one repair turn for an unusable answer."""
        mode: Mode = job.mode if job.mode in ("text", "json") else "json"
        if mode == "json" and job.mode != "json" and self.takes_schema(model):
            mode = "schema"
        try:
            reply = self._call(model, job, mode, job.prompt.messages(), shrinkable)
        except _Failed as failed:
            if failed.kind != "schema_refused":
                raise
            log.warning("%s refused response_format; asking for JSON in the prompt", model)
            with self._lock:
                self._prompt_mode.add(model)
            mode = "json"
            reply = self._call(model, job, mode, job.prompt.messages(), shrinkable)
        try:
            return self._judge(job, reply, mode)
        except AnswerRejected as rejected:
            # A capped answer (a model repeating itself) would loop again: smaller work helps.
            if not job.repair or mode == "text" or reply.capped:
                raise _Failed(model, "invalid", f"unusable answer: {rejected}") from rejected
            problem = str(rejected)
        log.info(
            "%s gave an unusable %s answer (%s); asking once to repair", model, job.purpose, problem
        )
        restated = job.prompt.messages()
        restated[-1]["content"] += "\n\n" + render_prompt("repair", problem=problem).user
        repair_job = dataclasses.replace(job, purpose=f"{job.purpose}:repair")
        reply = self._call(model, repair_job, mode, restated, shrinkable)
        try:
            return self._judge(repair_job, reply, mode)
        except AnswerRejected as again:
            raise _Failed(model, "invalid", f"unusable answer after a repair: {again}") from again

    def _judge(self, job: Job[T], reply: llm.Reply, mode: Mode) -> T:
        """The reply's value, recorded in the ledger as ok, invalid or capped."""
        try:
            if reply.looped:
                raise AnswerRejected(
                    "the answer repeated the same words over and over and was cut off; answer "
                    "briefly and do not repeat values"
                )
            if reply.capped:
                raise AnswerRejected(
                    f"the answer was cut off at its limit of {job.max_tokens} tokens; answer "
                    "briefly and do not repeat values"
                )
            if mode == "text" and job.parse is not None:
                value = job.parse(reply.content)
                if job.check is not None:
                    job.check(value)
            else:
                value = parse_answer(reply.content, job.schema, job.check)
        except AnswerRejected as problem:
            outcome = "capped" if reply.capped else "invalid"
            self._ledger.reply(job.purpose, job.prompt, reply, outcome, str(problem))
            raise
        self._ledger.reply(job.purpose, job.prompt, reply, "ok")
        self._health.answered(reply.model)
        return value

    def _call(
        self,
        model: str,
        job: Job[Any],
        mode: Mode,
        messages: list[dict[str, str]],
        shrinkable: bool,
    ) -> llm.Reply:
        """One request, retried on transient errors and once after a crowded timeout."""
        if mode == "json":
            messages[0]["content"] += (
                "\n\n"
                + render_prompt(
                    "json_only", schema=json.dumps(job.schema_dict(), ensure_ascii=False)
                ).system
            )
        request = llm.Request(
            model=model,
            messages=messages,
            timeout=self.settings.llm_timeout,
            max_tokens=job.max_tokens,
            temperature=self.settings.llm_temperature,
            response_format=job.response_format() if mode == "schema" else None,
            connection=self.connection(model),
            stream=self.settings.llm_stream,
        )
        for _ in range(2):
            try:
                return self._retrying(job, request)
            except llm.CallFailed as failed:
                crowded = failed.kind == "timeout" and failed.crowded
                if crowded and self._gate.drop_to_one():
                    log.warning(
                        "calls to %s time out while others wait: one call at a time from now "
                        "on (set NEWSLETTER_LLM_CONCURRENCY to the server's parallel slots)",
                        model,
                    )
                    continue
                if crowded:
                    continue
                self._health.note_failure(model, failed, shrinkable)
                raise _Failed(model, failed.kind, failed.message) from failed
        self._health.note_failure(model, llm.CallFailed("timeout", "timed out twice"), shrinkable)
        raise _Failed(model, "timeout", f"no answer for {self.settings.llm_timeout:g} s")

    def _retrying(self, job: Job[Any], request: llm.Request) -> llm.Reply:
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.llm_max_retries + 1),
            wait=retry_wait(self.settings.llm_retry_wait, self.settings.llm_retry_max_wait),
            retry=retry_if_exception(
                lambda e: isinstance(e, llm.CallFailed) and e.kind in _RETRIED
            ),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._once(job, request)
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _once(self, job: Job[Any], request: llm.Request) -> llm.Reply:
        with self._gate.slot() as token:
            try:
                return llm.complete(request)
            except llm.CallFailed as failed:
                failed.crowded = token["shared"]
                outcome = "timeout" if failed.kind == "timeout" else "error"
                self._ledger.record(
                    job.purpose, job.prompt, request.model, outcome, error=failed.message
                )
                raise

    def connection(self, model: str) -> dict[str, str]:
        """The configured endpoint and key apply to every model of the primary's provider."""
        if llm.provider(model) != llm.provider(self.model):
            return {}
        extra: dict[str, str] = {}
        if self.settings.llm_api_base:
            extra["api_base"] = self.settings.llm_api_base
        if self.settings.llm_api_key:
            extra["api_key"] = self.settings.llm_api_key
        return extra


def client_for(settings: Settings, engine: Engine, day: dt.date | None) -> LLMClient | None:
    """The client for a run, or None in offline mode (no NEWSLETTER_LLM_MODEL)."""
    if not settings.llm_model:
        return None
    return LLMClient(settings, engine, day)
