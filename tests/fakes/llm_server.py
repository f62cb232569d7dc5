"""A local OpenAI-compatible chat-completions server for the LLM tests and ``bench.llm``.

It runs in a thread on 127.0.0.1 (a free port), so the real litellm client and the
OpenAI SDK beneath it make real HTTP requests, streamed (server-sent events) when
the request asks for a stream. What it answers is in ``tests.fakes.llm_answers``:
a well-behaved model by default; scripted steps make the next matching request
misbehave (see ``KINDS``), send an HTTP error with headers (429 + Retry-After,
500), hang past the client's timeout, or stream slowly while it keeps writing.
Like a real server it honours ``max_tokens`` (about 4 characters a token): an
answer longer than the cap is cut and ends with ``finish_reason: "length"``.
``slots = 1`` makes it serve one request at a time, the others waiting in its
queue, as a local server with one slot does. Every request is recorded and counted.

``/v1/embeddings`` answers every input with a deterministic vector (``fake_vector``: a
bag of its words hashed into EMBED_DIMS dimensions), as floats or base64 as asked;
its requests are recorded with task "embed" and can be scripted ("status", "ok").
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.llm_answers import (
    CLASSIFY_KINDS,
    LANGUAGE,
    REPORT_KINDS,
    UNSENT_ID,
    answer_text,
    data_rows,
    task_of,
)

__all__ = ["LANGUAGE", "UNSENT_ID", "FakeLLMServer", "Seen", "Step", "data_rows"]

KINDS = {
    "ok",
    "invalid_json",
    "wrong_shape",
    "empty",
    "fenced",
    "fenced_trailing",
    "second_object",
    "raw",
    "status",
    "hang",
    "slow_stream",
    *CLASSIFY_KINDS,
    *REPORT_KINDS,
}
CHUNK_CHARS = 16
EMBED_DIMS = 64
_WORD = re.compile(r"[a-z0-9]{2,}")


def fake_vector(text: str) -> list[float]:
    """A deterministic embedding: each word (a trailing "s" dropped) adds 1 to a hashed
    dimension, so texts sharing words point the same way; never all zeros."""
    vector = [0.0] * EMBED_DIMS
    vector[0] = 0.01
    for word in _WORD.findall(text.lower()):
        stem = word[:-1] if len(word) > 3 and word.endswith("s") else word
        vector[int(hashlib.md5(stem.encode()).hexdigest(), 16) % EMBED_DIMS] += 1.0
    return vector


@dataclass(frozen=True)
class Step:
    """How to answer the next request of ``task`` ("classify", "report" or None for any).

    ``seconds``: how long "hang" waits before answering, or the pause between
    the pieces of a "slow_stream" answer (whose ``content`` kind is "ok").
    """

    kind: str
    task: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    content: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown step kind {self.kind!r}")


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    task: str
    step: str
    body: dict[str, Any]

    @property
    def system(self) -> str:
        return str(self.body["messages"][0]["content"])

    @property
    def user(self) -> str:
        return str(self.body["messages"][-1]["content"])

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body["messages"])


class FakeLLMServer:
    """Start with ``start()``; ``base_url`` is what NEWSLETTER_LLM_API_BASE should be."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.schema_supported = True
        self.server_seconds = 0.0
        self.slots = 0  # 0: no limit
        self.known_labels: dict[str, list[str]] = {}
        self._script: list[Step] = []
        self._lock = threading.Lock()
        self._slot: asyncio.Semaphore | None = None
        self._stopping = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app = self._build_app()

    # -- control -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        return len(self.seen)

    def count_of(self, task: str) -> int:
        return sum(1 for s in self.seen if s.task == task)

    def script(self, *steps: Step) -> None:
        with self._lock:
            self._script.extend(steps)

    @property
    def pending(self) -> int:
        return len(self._script)

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self._script.clear()
            self.schema_supported = True
            self.server_seconds = 0.0
            self.slots = 0
            self.known_labels = {}
            self._slot = None

    def start(self) -> FakeLLMServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit TCP_NODELAY: without it each response waits ~40 ms
        # (Nagle's algorithm meets the client's delayed ACK), 10x the cost of a call.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake LLM server did not start within 10 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- serving -----------------------------------------------------------------------------

    def _next_step(self, task: str) -> Step:
        with self._lock:
            for i, step in enumerate(self._script):
                if step.task in (None, task):
                    return self._script.pop(i)
        return Step("ok")

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request) -> Response:
            started = time.perf_counter()
            slot = None
            if self.slots:
                if self._slot is None:
                    self._slot = asyncio.Semaphore(self.slots)
                slot = self._slot
                await slot.acquire()  # queued requests wait here, sending nothing
            try:
                response = await self._complete(request, slot)
                slot = None if isinstance(response, StreamingResponse) else slot
                return response
            finally:
                if slot is not None:
                    slot.release()
                with self._lock:
                    self.server_seconds += time.perf_counter() - started

        @app.post("/v1/embeddings")
        async def embeddings(request: Request) -> Response:
            return await self._embed(request)

        return app

    async def _embed(self, request: Request) -> Response:
        body = await request.json()
        step = self._next_step("embed")
        with self._lock:
            self.seen.append(Seen("embed", step.kind, body))
        if step.kind == "status":
            return JSONResponse(
                {"error": {"message": f"scripted HTTP {step.status}", "type": "fake"}},
                status_code=step.status,
                headers=step.headers,
            )
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        rows = []
        for index, text in enumerate(texts):
            vector: Any = fake_vector(str(text))
            if body.get("encoding_format") == "base64":
                packed = struct.pack(f"<{len(vector)}f", *vector)
                vector = base64.b64encode(packed).decode("ascii")
            rows.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(str(t)) // 4 + 1 for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": rows,
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _complete(self, request: Request, slot: asyncio.Semaphore | None) -> Response:
        body = await request.json()
        task = task_of(body)
        step = self._next_step(task)
        with self._lock:
            self.seen.append(Seen(task, step.kind, body))
        if step.kind == "status":
            return JSONResponse(
                {
                    "error": {
                        "message": f"scripted HTTP {step.status}",
                        "type": "fake",
                        "code": None,
                    }
                },
                status_code=step.status,
                headers=step.headers,
            )
        if "response_format" in body and not self.schema_supported:
            return JSONResponse(
                {
                    "error": {
                        "message": "response_format json_schema is not supported by this model"
                    }
                },
                status_code=400,
            )
        if step.kind == "hang":
            deadline = time.monotonic() + step.seconds
            while time.monotonic() < deadline and not self._stopping.is_set():
                if await request.is_disconnected():
                    return Response(status_code=499)
                await asyncio.sleep(0.02)
        kind = "ok" if step.kind in ("hang", "slow_stream") else step.kind
        content = answer_text(body, kind, step.content, self.known_labels)
        cap = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if cap and len(content) // 4 > int(cap):
            content, finish = content[: int(cap) * 4], "length"
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body["messages"])
        # A rough count (4 characters a token): the fake has no tokenizer.
        usage = {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": max(len(content) // 4, 1),
            "total_tokens": prompt_chars // 4 + max(len(content) // 4, 1),
        }
        ident = f"chatcmpl-fake-{len(self.seen)}"
        if body.get("stream"):
            pause = step.seconds if step.kind == "slow_stream" else 0.0
            events = self._events(ident, body, content, finish, usage, pause, slot)
            return StreamingResponse(events, media_type="text/event-stream")
        return JSONResponse(
            {
                "id": ident,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
            }
        )

    async def _events(
        self,
        ident: str,
        body: dict[str, Any],
        content: str,
        finish: str,
        usage: dict[str, int],
        pause: float,
        slot: asyncio.Semaphore | None,
    ) -> AsyncIterator[str]:
        """The answer as server-sent events, CHUNK_CHARS at a time, ``pause`` s apart.

        The server's slot (if any) stays taken until the whole answer is written.
        """

        def event(delta: dict[str, Any], reason: str | None, extra: dict[str, Any]) -> str:
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
                **extra,
            }
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

        try:
            yield event({"role": "assistant", "content": ""}, None, {})
            for start in range(0, len(content), CHUNK_CHARS):
                if pause:
                    await asyncio.sleep(pause)
                yield event({"content": content[start : start + CHUNK_CHARS]}, None, {})
            yield event({}, finish, {"usage": usage})
            yield "data: [DONE]\n\n"
        finally:
            if slot is not None:
                slot.release()
