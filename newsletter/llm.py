"""The only module that talks to a language model (through litellm, imported lazily).

``LLMClient.ask`` turns a versioned prompt and a pydantic answer model into a
validated answer, and owns everything that makes that safe and cheap:

- a cache keyed by (model, prompt name, prompt version, input hash), so asking the
  same question again, in any process, costs nothing;
- a JSON-schema ``response_format`` where the provider accepts one, and the schema
  written into the prompt where it does not (switched per model on the first refusal);
- one repair round-trip when an answer is not valid JSON of the right shape;
- retries with back-off on 429 (honouring ``Retry-After``), 5xx, timeouts and lost
  connections, then the fallback models (``NEWSLETTER_LLM_FALLBACKS``);
- a ledger row for every request and cache hit (tokens, cost where litellm knows
  the price, duration);
- a circuit breaker: once every model is unreachable, later asks in the same run
  fail at once, so an outage costs one round of retries instead of one per batch.

Paper text only ever reaches a prompt inside a delimited data block rendered by
the ``data_json`` filter, which cannot close the block (``<`` is escaped).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar

import jinja2
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from newsletter import llm_store
from newsletter.errors import LLMError
from newsletter.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")
ItemT = TypeVar("ItemT")

_VERSION = re.compile(r"\{#\s*version:\s*(\d+)\s*#\}")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)


class AnswerRejected(ValueError):
    """An answer that parsed but cannot be used; its message is sent back in the repair turn."""


# -- prompts ---------------------------------------------------------------------------------


def data_json(value: Any) -> str:
    """One data-block line: JSON with ``<``/``>`` escaped so text cannot close the block."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


@cache
def _prompt_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("newsletter", "templates/prompts"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["data_json"] = data_json
    return env


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt; ``version`` is bumped whenever its wording changes meaning."""

    name: str
    version: int
    system: str
    user: str

    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user},
        ]


def prompt_version(name: str) -> int:
    env = _prompt_env()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, f"{name}.j2")
    found = _VERSION.search(source)
    if found is None:
        raise LLMError(f"prompt template {name}.j2 has no '{{# version: N #}}' line; add one")
    return int(found.group(1))


def render_prompt(name: str, **variables: Any) -> Prompt:
    """Render the ``system`` and ``user`` blocks of ``templates/prompts/<name>.j2``."""
    template = _prompt_env().get_template(f"{name}.j2")
    context = template.new_context(variables)
    parts = {
        block: "".join(template.blocks[block](context)).strip() for block in ("system", "user")
    }
    return Prompt(name, prompt_version(name), parts["system"], parts["user"])


# -- answers ---------------------------------------------------------------------------------


def answer_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema made acceptable to strict structured-output providers."""
    return dict(json.loads(_schema_json(model)))


@cache
def _schema_json(model: type[BaseModel]) -> str:
    """Built once per answer model: pydantic's schema generation costs ~5 ms a time."""

    def tighten(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                tighten(value)
        elif isinstance(node, list):
            for value in node:
                tighten(value)

    schema = model.model_json_schema()
    tighten(schema)
    return json.dumps(schema, sort_keys=True)


def parse_answer(raw: str | None, model: type[T], check: Callable[[T], None] | None = None) -> T:
    """Parse and validate an answer; raises AnswerRejected saying what was wrong."""
    text = (raw or "").strip()
    if not text:
        raise AnswerRejected("the answer was empty")
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnswerRejected(
            f"the answer was not valid JSON ({exc.msg} at char {exc.pos})"
        ) from exc
    try:
        value = model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise AnswerRejected(f"the JSON had the wrong shape ({problems})") from exc
    if check is not None:
        check(value)
    return value


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    model: str
    cached: bool


# -- litellm ---------------------------------------------------------------------------------


@cache
def _litellm() -> Any:
    """Import litellm once, offline: the bundled cost map, no telemetry, no banners."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def token_count(model: str, text: str) -> int:
    """Tokens in ``text`` as litellm counts them for ``model`` (offline tokenizers)."""
    return int(_litellm().token_counter(model=model, text=text))


def _provider(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _transient(exc: BaseException) -> bool:
    """Worth retrying on the same model: rate limits, server errors, timeouts, lost connections."""
    lm = _litellm()
    if isinstance(exc, lm.Timeout | lm.APIConnectionError | lm.RateLimitError):
        return True
    status = _status(exc)
    return status is not None and (status in (408, 409, 429) or status >= 500)


def _schema_refused(exc: BaseException) -> bool:
    lm = _litellm()
    if isinstance(exc, lm.UnsupportedParamsError):
        return True
    text = str(exc).lower()
    return _status(exc) in (400, 422) and ("response_format" in text or "json_schema" in text)


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``Retry-After``), if any."""
    if exc is None:
        return None
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            log.debug("ignoring unparseable retry-after-ms %r", millis)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)


class _ModelFailed(Exception):
    """One model could not give a usable answer; ``reachable`` False means it was down."""

    def __init__(self, model: str, reason: str, *, reachable: bool) -> None:
        self.model = model
        self.reason = reason
        self.reachable = reachable
        super().__init__(f"{model}: {reason}")


class _SchemaRefused(Exception):
    pass


@dataclass(frozen=True)
class _Reply:
    content: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    duration_ms: float


# -- the client ------------------------------------------------------------------------------


@dataclass
class LLMClient:
    """Asks the configured model (then its fallbacks) for validated, cached answers."""

    settings: Settings
    engine: Engine
    day: dt.date | None = None
    _down: dict[str, str] = field(default_factory=dict, init=False)  # model -> why
    _prompt_mode: set[str] = field(default_factory=set, init=False)
    _schema_support: dict[str, bool] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def model(self) -> str:
        return self.settings.llm_model

    @property
    def models(self) -> tuple[str, ...]:
        return (self.model, *(m for m in self.settings.llm_fallbacks if m != self.model))

    def ask(
        self,
        purpose: str,
        prompt: Prompt,
        schema: type[T],
        check: Callable[[T], None] | None = None,
    ) -> Answer[T]:
        """A validated answer from the cache or the first model that gives one.

        Raises LLMError when no model could answer; the caller falls back offline.
        """
        schema_json = _schema_json(schema)
        input_hash = hashlib.sha256(
            "\x00".join((prompt.system, prompt.user, schema_json)).encode("utf-8")
        ).hexdigest()
        hit = self._from_cache(purpose, prompt, schema, check, input_hash)
        if hit is not None:
            return hit
        with self._lock:
            usable = [m for m in self.models if m not in self._down]
            down = "; ".join(f"{m}: {why}" for m, why in self._down.items())
        if not usable:
            raise LLMError(f"{purpose}: skipped, the model is unavailable in this run ({down})")
        failures: list[_ModelFailed] = []
        for model in usable:
            try:
                value, raw = self._ask_model(model, purpose, prompt, schema, check)
            except _ModelFailed as failed:
                log.warning("LLM %s failed for %s: %s", model, purpose, failed.reason)
                failures.append(failed)
                if not failed.reachable:
                    with self._lock:  # an outage: not asked again in this run
                        self._down[model] = failed.reason
                continue
            llm_store.store_answer(
                self.engine, self.model, prompt.name, prompt.version, input_hash, raw, model
            )
            return Answer(value, model, cached=False)
        summary = "; ".join(str(f) for f in failures)
        raise LLMError(
            f"{purpose}: no model gave a usable answer ({summary}); check NEWSLETTER_LLM_MODEL, "
            "NEWSLETTER_LLM_API_BASE and the provider's status, or add NEWSLETTER_LLM_FALLBACKS"
        )

    def parallel(self, fn: Callable[[ItemT], R], items: Sequence[ItemT]) -> list[R]:
        """``fn`` over ``items``, NEWSLETTER_LLM_CONCURRENCY at a time, results in order."""
        if self.settings.llm_concurrency <= 1 or len(items) <= 1:
            return [fn(item) for item in items]
        _litellm()  # import once here, not in several threads at the same time
        with ThreadPoolExecutor(max_workers=self.settings.llm_concurrency) as pool:
            return list(pool.map(fn, items))

    # -- internals ---------------------------------------------------------------------------

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
        self._record(purpose, prompt, self.model, "cached", cache_hit=True)
        return Answer(value, answered_by or self.model, cached=True)

    def _uses_schema(self, model: str) -> bool:
        with self._lock:
            if model in self._prompt_mode:
                return False
        mode = self.settings.llm_json_mode
        if mode != "auto":
            return mode == "schema"
        if model not in self._schema_support:
            try:
                info = _litellm().get_model_info(model)
                supported = bool(info.get("supports_response_schema"))
            except Exception:  # litellm raises several types for a model missing from its map
                log.debug("%s is not in litellm's model map; trying response_format first", model)
                supported = True
            with self._lock:
                self._schema_support[model] = supported
        return self._schema_support[model]

    def _ask_model(
        self,
        model: str,
        purpose: str,
        prompt: Prompt,
        schema: type[T],
        check: Callable[[T], None] | None,
    ) -> tuple[T, str]:
        """(answer, raw JSON) from one model, with one repair turn for an unusable answer."""
        use_schema = self._uses_schema(model)
        messages = self._messages(prompt, schema, use_schema)
        try:
            reply = self._request(model, purpose, prompt, messages, schema if use_schema else None)
        except _SchemaRefused:
            log.warning("%s refused response_format; asking for JSON in the prompt", model)
            with self._lock:
                self._prompt_mode.add(model)
            use_schema = False
            messages = self._messages(prompt, schema, use_schema)
            reply = self._request(model, purpose, prompt, messages, None)
        try:
            value = parse_answer(reply.content, schema, check)
        except AnswerRejected as problem:
            self._record_reply(purpose, prompt, reply, "invalid", str(problem))
            log.info(
                "%s gave an unusable %s answer (%s); asking once to repair", model, purpose, problem
            )
            repair = [
                *messages,
                {"role": "assistant", "content": reply.content or ""},
                {"role": "user", "content": render_prompt("repair", problem=str(problem)).user},
            ]
            purpose = f"{purpose}:repair"
            reply = self._request(model, purpose, prompt, repair, schema if use_schema else None)
            try:
                value = parse_answer(reply.content, schema, check)
            except AnswerRejected as again:
                self._record_reply(purpose, prompt, reply, "invalid", str(again))
                raise _ModelFailed(
                    model, f"unusable answer after a repair: {again}", reachable=True
                ) from again
        self._record_reply(purpose, prompt, reply, "ok")
        return value, value.model_dump_json()

    def _messages(
        self, prompt: Prompt, schema: type[BaseModel], use_schema: bool
    ) -> list[dict[str, str]]:
        messages = prompt.messages()
        if not use_schema:
            messages[0]["content"] += (
                "\n\n"
                + render_prompt(
                    "json_only", schema=json.dumps(answer_schema(schema), ensure_ascii=False)
                ).system
            )
        return messages

    def _connection(self, model: str) -> dict[str, Any]:
        """The configured endpoint and key apply to every model of the primary's provider."""
        if _provider(model) != _provider(self.model):
            return {}
        extra: dict[str, Any] = {}
        if self.settings.llm_api_base:
            extra["api_base"] = self.settings.llm_api_base
        if self.settings.llm_api_key:
            extra["api_key"] = self.settings.llm_api_key
        return extra

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        asked = retry_after(exc)
        cap = self.settings.llm_retry_max_wait
        if asked is not None:
            seconds = min(asked, cap)
            log.warning(
                "rate limited; waiting %.2f s as Retry-After asks (cap %.0f s)", seconds, cap
            )
            return seconds
        backoff = wait_random_exponential(multiplier=self.settings.llm_retry_wait, max=cap)
        return float(backoff(state))

    def _request(
        self,
        model: str,
        purpose: str,
        prompt: Prompt,
        messages: list[dict[str, str]],
        schema: type[BaseModel] | None,
    ) -> _Reply:
        """One completion, retried on transient errors; raises _ModelFailed when it gives up."""
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.llm_max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(model, purpose, prompt, messages, schema)
        except _SchemaRefused:
            raise
        except _provider_errors() as exc:
            reason = f"{type(exc).__name__}: {_one_line(exc)}"
            raise _ModelFailed(model, reason, reachable=not _down_for_the_run(exc)) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _once(
        self,
        model: str,
        purpose: str,
        prompt: Prompt,
        messages: list[dict[str, str]],
        schema: type[BaseModel] | None,
    ) -> _Reply:
        lm = _litellm()
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "timeout": self.settings.llm_timeout,
            "max_retries": 0,  # tenacity retries; the OpenAI SDK's own retries would hide calls
            **self._connection(model),
        }
        if schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": prompt.name,
                    "schema": answer_schema(schema),
                    "strict": True,
                },
            }
        started = time.perf_counter()
        try:
            response = lm.completion(**kwargs)
        except _provider_errors() as exc:
            elapsed = (time.perf_counter() - started) * 1000
            self._record(purpose, prompt, model, "error", duration_ms=elapsed, error=_one_line(exc))
            if schema is not None and _schema_refused(exc):
                raise _SchemaRefused(str(exc)) from exc
            raise
        elapsed = (time.perf_counter() - started) * 1000
        content = response.choices[0].message.content if response.choices else ""
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        if not prompt_tokens:
            prompt_tokens = int(lm.token_counter(model=model, messages=messages))
        return _Reply(
            content=content or "",
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=_cost(response),
            duration_ms=elapsed,
        )

    def _record_reply(
        self, purpose: str, prompt: Prompt, reply: _Reply, outcome: str, error: str = ""
    ) -> None:
        self._record(
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

    def _record(
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


def _provider_errors() -> tuple[type[BaseException], ...]:
    """What litellm raises for a failed call (all its exceptions derive from openai's)."""
    import httpx
    import openai

    _litellm()
    return (openai.APIError, httpx.HTTPError)


def _down_for_the_run(exc: BaseException) -> bool:
    """Outages, bad credentials and unknown models fail every later call too; a refused
    request (400 for this input) does not."""
    if _transient(exc) or _status(exc) in (401, 403, 404):
        return True
    return "LLM Provider NOT provided" in str(exc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _cost(response: Any) -> float | None:
    """The price litellm's bundled cost map gives this response, or None for unmapped models."""
    try:
        return float(_litellm().completion_cost(completion_response=response))
    except Exception as exc:  # litellm raises NotFound/ModelNotMapped/ValueError variants
        log.debug("no price known for this response: %s", exc)
        return None


def client_for(settings: Settings, engine: Engine, day: dt.date | None) -> LLMClient | None:
    """The client for a run, or None in offline mode (no NEWSLETTER_LLM_MODEL)."""
    if not settings.llm_model:
        return None
    return LLMClient(settings, engine, day)
