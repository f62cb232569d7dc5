"""The only module that imports litellm: one completion request, streamed, and what failed.

``complete`` sends one request and returns a ``Reply`` (``embed`` one batch of texts
to embed, returning ``Embedded``), or raises ``CallFailed`` whose ``kind`` tells the
client what to do next:

- ``timeout``: no token for NEWSLETTER_LLM_TIMEOUT seconds. When the answer streams
  the limit is an idle timeout between tokens (the first included), so a model
  that keeps writing is never cut off by a wall clock; the work is shrunk instead;
- ``too_long``: the prompt does not fit the model's context (shrink the work too);
- ``rate_limited`` / ``server`` / ``unreachable``: retried with back-off; still
  failing, the model is down for the run;
- ``auth`` / ``not_found``: down for the run at once (bad key, unknown model);
- ``schema_refused``: the provider takes no JSON-schema ``response_format``;
- ``refused``: any other 4xx, for this request only.

Everything else about asking (cache, ledger, retries, fallbacks, repair,
concurrency) lives in ``newsletter.llm_client``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import re
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

log = logging.getLogger(__name__)


@cache
def _litellm() -> Any:
    """Import litellm once, offline: the bundled cost map, no telemetry, no banners."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def warm() -> None:
    """Import litellm now (once, before threads race to import it)."""
    _litellm()


def token_count(model: str, text: str) -> int:
    """Tokens in ``text`` as litellm counts them for ``model`` (offline tokenizers)."""
    return int(_litellm().token_counter(model=model, text=text))


def provider(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def schema_supported(model: str) -> bool:
    """Whether litellm's model map says ``model`` takes a JSON-schema response_format.

    Models it does not know (local servers, new names) are tried with one first.
    """
    try:
        return bool(_litellm().get_model_info(model).get("supports_response_schema"))
    except Exception:  # litellm raises several types for a model missing from its map
        log.debug("%s is not in litellm's model map; trying response_format first", model)
        return True


@dataclass(frozen=True)
class Request:
    """One completion request as the client builds it."""

    model: str
    messages: list[dict[str, str]]
    timeout: float
    max_tokens: int
    temperature: float
    response_format: dict[str, Any] | None = None
    connection: dict[str, str] = field(default_factory=dict)
    stream: bool = True


#: A streamed answer that ends in one short piece said over and over, across this many
#: characters, is a loop: a small model that starts one seldom stops before its cap, and
#: at a few tokens a second the cap is minutes away. The stream is closed there.
LOOP_SPAN = 240
_REPEATS = re.compile(r"(.{1,80}?)\1{7,}", re.S)
_LOOP_CHECK_EVERY = 64


def looping(text: str) -> bool:
    """True when the end of ``text`` is one piece of 1-80 characters repeated over LOOP_SPAN."""
    window = text[-(LOOP_SPAN + 160) :]
    return any(
        m.end() - m.start() >= LOOP_SPAN and m.end() >= len(window) - 80
        for m in _REPEATS.finditer(window)
    )


@dataclass(frozen=True)
class Reply:
    """A model's answer and what it cost; ``capped`` when it stopped at ``max_tokens`` or
    was cut off because it repeated itself (``looped``)."""

    content: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    duration_ms: float
    first_token_ms: float
    finish_reason: str
    looped: bool = False

    @property
    def capped(self) -> bool:
        return self.finish_reason == "length" or self.looped


class CallFailed(Exception):
    """One request failed; ``kind`` is listed in the module docstring."""

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None) -> None:
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.crowded = False  # set by the client: other calls were in flight meanwhile
        super().__init__(message)


def complete(request: Request) -> Reply:
    """Send ``request``; raises CallFailed (never a provider's own exception type)."""
    lm = _litellm()
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": request.messages,
        "timeout": request.timeout,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "max_retries": 0,  # the client retries; the OpenAI SDK's own retries would hide calls
        **request.connection,
    }
    if request.response_format is not None:
        kwargs["response_format"] = request.response_format
    started = time.perf_counter()
    first = 0.0
    looped = False
    try:
        if request.stream:
            chunks: list[Any] = []
            text, unchecked = "", 0
            stream = lm.completion(**kwargs, stream=True)
            for chunk in stream:
                piece = _text_of(chunk)
                if not first and piece:
                    first = time.perf_counter()
                chunks.append(chunk)
                text += piece
                unchecked += len(piece)
                if unchecked >= _LOOP_CHECK_EVERY:
                    unchecked = 0
                    if looping(text):
                        looped = True
                        stream.close()  # the server stops writing when the client leaves
                        break
            response = lm.stream_chunk_builder(chunks, messages=request.messages)
            if response is None:
                raise CallFailed("server", "the stream ended without an answer")
        else:
            response = lm.completion(**kwargs)
    except _provider_errors() as exc:
        raise _failure(exc, request) from exc
    ended = time.perf_counter()
    choice = response.choices[0] if response.choices else None
    content = (choice.message.content if choice is not None else "") or ""
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    if not prompt_tokens:
        prompt_tokens = int(lm.token_counter(model=request.model, messages=request.messages))
    return Reply(
        content=content,
        model=request.model,
        prompt_tokens=prompt_tokens,
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost=_cost(response),
        duration_ms=(ended - started) * 1000,
        first_token_ms=((first or ended) - started) * 1000,
        finish_reason=str(getattr(choice, "finish_reason", "") or ""),
        looped=looped,
    )


@dataclass(frozen=True)
class Embedded:
    """One embedding request's vectors (in the order of its texts) and what it cost."""

    vectors: list[list[float]]
    model: str
    prompt_tokens: int
    cost: float | None
    duration_ms: float


def embed(
    model: str, texts: list[str], *, timeout: float, connection: dict[str, str] | None = None
) -> Embedded:
    """Embed ``texts`` in one request; raises CallFailed (never a provider's own type)."""
    lm = _litellm()
    request = Request(model, [], timeout, 0, 0.0, None, connection or {}, stream=False)
    started = time.perf_counter()
    try:
        response = lm.embedding(
            model=model, input=texts, timeout=timeout, max_retries=0, **request.connection
        )
    except _provider_errors() as exc:
        raise _failure(exc, request) from exc
    rows = sorted(response.data, key=lambda row: int(_field(row, "index")))
    vectors = [list(_field(row, "embedding")) for row in rows]
    if len(vectors) != len(texts):
        raise CallFailed("server", f"{len(vectors)} embeddings for {len(texts)} texts")
    usage = getattr(response, "usage", None)
    return Embedded(
        vectors,
        str(getattr(response, "model", None) or model),
        int(getattr(usage, "prompt_tokens", 0) or 0),
        _cost(response),
        (time.perf_counter() - started) * 1000,
    )


def _field(row: Any, name: str) -> Any:
    """A field of an embedding row, which litellm gives as a dict or an object."""
    return row[name] if isinstance(row, dict) else getattr(row, name)


def _text_of(chunk: Any) -> str:
    choices = getattr(chunk, "choices", None) or []
    delta = getattr(choices[0], "delta", None) if choices else None
    return str(getattr(delta, "content", None) or "")


def _provider_errors() -> tuple[type[BaseException], ...]:
    """What litellm raises for a failed call (all its exceptions derive from openai's)."""
    import httpx
    import openai

    _litellm()
    return (openai.APIError, httpx.HTTPError)


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _failure(exc: BaseException, request: Request) -> CallFailed:
    """The provider's exception as a CallFailed of the right kind, in one short line."""
    import httpx

    lm = _litellm()
    status = _status(exc)
    text = one_line(exc)
    if isinstance(exc, lm.Timeout | httpx.TimeoutException):
        return CallFailed("timeout", f"no answer for {request.timeout:g} s")
    if _connection_failed(exc):
        return CallFailed("unreachable", f"cannot reach the model ({_root(exc)})")
    if isinstance(exc, lm.ContextWindowExceededError):
        return CallFailed("too_long", f"the prompt is longer than the model takes: {text}")
    if request.response_format is not None and _schema_refused(exc):
        return CallFailed("schema_refused", text)
    if isinstance(exc, lm.RateLimitError) or status == 429:
        return CallFailed("rate_limited", f"rate limited: {text}", retry_after=retry_after(exc))
    if status in (401, 403):
        return CallFailed("auth", f"the provider refused the credentials (HTTP {status}): {text}")
    if status == 404 or "LLM Provider NOT provided" in text:
        return CallFailed("not_found", f"unknown model or endpoint: {text}")
    if status is not None and (status in (408, 409) or status >= 500):
        return CallFailed("server", f"HTTP {status}: {text}", retry_after=retry_after(exc))
    if isinstance(exc, lm.APIConnectionError | httpx.TransportError):
        return CallFailed("unreachable", f"cannot reach the model: {text}")
    if status is not None:
        return CallFailed("refused", f"HTTP {status}: {text}")
    return CallFailed("unreachable", f"{type(exc).__name__}: {text}")


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _connection_failed(exc: BaseException) -> bool:
    """A refused connection or an unknown host, however litellm wraps it (it may say HTTP 500)."""
    import httpx
    import openai

    return any(
        isinstance(e, httpx.ConnectError | openai.APIConnectionError | ConnectionError)
        and not isinstance(e, openai.APITimeoutError)
        for e in _causes(exc)
    )


def _root(exc: BaseException) -> str:
    return one_line(_causes(exc)[-1]) or type(exc).__name__


def _schema_refused(exc: BaseException) -> bool:
    lm = _litellm()
    if isinstance(exc, lm.UnsupportedParamsError):
        return True
    text = str(exc).lower()
    return _status(exc) in (400, 422) and ("response_format" in text or "json_schema" in text)


def one_line(exc: BaseException) -> str:
    """The error's text on one line, without litellm's repeated prefixes, at most 300 chars."""
    text = " ".join(str(exc).split())
    for prefix in ("litellm.", "OpenAIException - ", "APIError: ", "APIConnectionError: "):
        text = text.replace(prefix, "")
    half = len(text) // 2
    if half > 20 and text[:half].strip() == text[half:].strip():
        text = text[:half].strip()
    return text[:300]


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


def _cost(response: Any) -> float | None:
    """The price litellm's bundled cost map gives this response, or None for unmapped models."""
    try:
        return float(_litellm().completion_cost(completion_response=response))
    except Exception as exc:  # litellm raises NotFound/ModelNotMapped/ValueError variants
        log.debug("no price known for this response: %s", exc)
        return None
