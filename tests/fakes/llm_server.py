"""A local OpenAI-compatible chat-completions server for the LLM tests and ``bench.llm``.

It runs in a thread on 127.0.0.1 (a free port), so the real litellm client and the
OpenAI SDK beneath it make real HTTP requests. By default it answers like a
well-behaved model: it reads the category slugs and the ``<papers>`` data block of
the prompt and returns a valid classification or report (Korean text when asked
for Korean). Scripted steps make the next matching request misbehave: invalid
JSON, the wrong shape, an unknown slug, an id that was not sent, an empty answer,
English for a Korean report, an HTTP error with headers (429 + Retry-After, 500),
or a hang past the client's timeout. Every request is recorded and counted.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

DATA_BLOCK = re.compile(r"<papers>\n(.*?)</papers>", re.S)
SLUG_LINE = re.compile(r"^- ([a-z0-9-]+): ", re.M)
LANGUAGE = re.compile(r'language code "([a-zA-Z-]+)"')
UNSENT_ID = "9999.99999"

KINDS = {
    "ok",
    "invalid_json",
    "wrong_shape",
    "unknown_slug",
    "unsent_id",
    "missing",
    "empty",
    "wrong_language",
    "fenced",
    "raw",
    "status",
    "hang",
}


@dataclass(frozen=True)
class Step:
    """How to answer the next request of ``task`` ("classify", "report" or None for any)."""

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


def task_of(body: dict[str, Any]) -> str:
    system = str(body["messages"][0]["content"])
    return "classify" if system.startswith("Task: classify") else "report"


def data_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The papers of the request's data block (the first user message holds it)."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    found = DATA_BLOCK.search(user)
    if not found:
        return []
    return [json.loads(line) for line in found.group(1).splitlines() if line.strip()]


def classification(body: dict[str, Any], kind: str = "ok") -> dict[str, Any]:
    slugs = [s for s in SLUG_LINE.findall(str(body["messages"][0]["content"])) if s != "other"]
    labels = []
    for row in data_rows(body):
        h = zlib.crc32(row["id"].encode())
        chosen = [slugs[h % len(slugs)]]
        if h % 5 == 0:
            chosen.append(slugs[(h // 7) % len(slugs)])
        labels.append({"id": row["id"], "categories": list(dict.fromkeys(chosen))})
    if kind == "unknown_slug" and labels:
        labels[0]["categories"] = ["quantum-cooking"]
    if kind == "unsent_id":
        labels.append({"id": UNSENT_ID, "categories": [slugs[0]]})
    if kind == "missing" and labels:
        labels.pop(0)
    return {"papers": labels}


def report(body: dict[str, Any], kind: str = "ok") -> dict[str, Any]:
    rows = data_rows(body)
    found = LANGUAGE.search(str(body["messages"][0]["content"]))
    korean = bool(found and found.group(1) == "ko") and kind != "wrong_language"
    ids = [r["id"] for r in rows[:3]]
    if kind == "unsent_id":
        ids = [UNSENT_ID, *ids]
    if korean:
        findings = [f"논문 [{i}]은 새로운 방법으로 성능을 크게 높였습니다." for i in ids]
        notable = [{"arxiv_id": i, "line": f"{i} 논문은 중요한 결과를 보여 줍니다."} for i in ids]
        conclusion = (
            f"오늘 {len(rows)}편의 논문이 이 분야의 빠른 발전을 보여 줍니다. "
            "앞으로의 연구가 기대됩니다."
        )
        themes, keywords = ["효율적인 학습", "평가 방법"], ["벤치마크", "데이터", "확장성"]
    else:
        findings = [f"Paper [{i}] improves results with a new method." for i in ids]
        notable = [{"arxiv_id": i, "line": f"{i} shows an important result."} for i in ids]
        conclusion = (
            f"Today's {len(rows)} papers show fast progress in this field. "
            "Watch for follow-up work."
        )
        themes, keywords = ["efficient training", "evaluation"], ["benchmark", "data", "scaling"]
    return {
        "themes": themes,
        "keywords": keywords,
        "findings": findings,
        "notable": notable,
        "conclusion": conclusion,
    }


def answer_text(body: dict[str, Any], step: Step) -> str:
    task = task_of(body)
    if step.kind == "raw":
        return step.content
    if step.kind == "empty":
        return ""
    if step.kind == "invalid_json":
        return '{"papers": [{"id": "2411.0' if task == "classify" else '{"themes": ["unclosed'
    if step.kind == "wrong_shape":
        if task == "classify":
            return json.dumps({"labels": {"2411.00001": "nlp"}})
        return json.dumps({"themes": "one string", "summary": "no other keys"})
    data = classification(body, step.kind) if task == "classify" else report(body, step.kind)
    text = json.dumps(data, ensure_ascii=False)
    return f"```json\n{text}\n```" if step.kind == "fenced" else text


class FakeLLMServer:
    """Start with ``start()``; ``base_url`` is what NEWSLETTER_LLM_API_BASE should be."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.schema_supported = True
        self.server_seconds = 0.0
        self._script: list[Step] = []
        self._lock = threading.Lock()
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
            try:
                return await self._complete(request)
            finally:
                with self._lock:
                    self.server_seconds += time.perf_counter() - started

        return app

    async def _complete(self, request: Request) -> Response:
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
        content = answer_text(body, step)
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body["messages"])
        return JSONResponse(
            {
                "id": f"chatcmpl-fake-{len(self.seen)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                # A rough count (4 characters a token): the fake has no tokenizer.
                "usage": {
                    "prompt_tokens": prompt_chars // 4,
                    "completion_tokens": len(content) // 4,
                    "total_tokens": prompt_chars // 4 + len(content) // 4,
                },
            }
        )
