"""A local stand-in for SendGrid's v3 Mail Send API, for the delivery tests and ``bench.send``.

It listens on 127.0.0.1 (a free port) and answers ``POST /v3/mail/send`` the way
SendGrid does, so the official ``sendgrid`` client makes real HTTP requests:

- 401 without ``Authorization: Bearer <the key>``;
- 413 for a body over ``max_bytes``;
- 400 with SendGrid's error JSON for a body that breaks the official OpenAPI
  description (``components.requestBodies.PostMailSend`` of
  ``tests/data/sendgrid/tsg_mail_v3.json``, validated with jsonschema, ``$ref``s
  resolved) or an address SendGrid would refuse (the field names the
  personalization: ``personalizations.3.to.0.email``);
- 202 with an ``X-Message-Id`` header otherwise, recording each personalization
  as the reader would get it (substitutions applied to subject and content).

``script(...)`` makes the next requests misbehave: any status with headers (429
with ``X-RateLimit-Reset``, 500), or a hang past the client's timeout (optionally
after accepting the mail, as a real server that lost its answer would).
``on_request`` / ``on_accept`` / ``after_answer`` hooks (called with the request's
number) let a crash test kill the sender at an exact point.
``python -m tests.fakes.sendgrid_double`` serves it in its own process; ``GET
/_double/stats`` then reports what it received. ``bench.send`` runs it with
``--latency 0.3`` (a real answer's time) and ``--validate-later``: the answer does not
wait for the spec check, which runs in a child process at idle priority (SCHED_IDLE),
so that checking a thousand personalizations per request (more CPU than the sender
spends on them) takes neither the double's interpreter from its answers nor the
machine's CPU from the sender; it catches up once the send is over. Violations are
counted and the benchmark fails on any.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import re
import secrets
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: The official description, vendored with its licence (see the README beside it).
SPEC_PATH = Path(__file__).resolve().parents[1] / "data" / "sendgrid" / "tsg_mail_v3.json"
SCHEMA_POINTER = "#/components/requestBodies/PostMailSend/content/application~1json/schema"
SPEC_URI = "urn:sendgrid:tsg_mail_v3"
API_KEY = "SG.test-key"
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
#: What SendGrid's address check lets through, roughly: one @, a dot in the domain.
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@lru_cache(maxsize=2)
def validator(path: Path = SPEC_PATH) -> Any:
    """A jsonschema validator for the Mail Send request body, ``$ref``s resolved in the spec."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = json.loads(path.read_text("utf-8"))
    registry = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": SPEC_URI + SCHEMA_POINTER},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


@dataclass(frozen=True)
class Step:
    """How to answer one upcoming request."""

    status: int = 0  # answer this status (with ``headers`` and ``body``) instead of working
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    hang: float = 0.0  # seconds to wait without answering, then close the connection
    accept: bool = False  # with ``hang``: record the mail first (the answer is what is lost)


@dataclass(frozen=True)
class Delivered:
    """One personalization as its reader would get it."""

    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    custom_args: dict[str, str]
    categories: tuple[str, ...]
    attachments: tuple[dict[str, Any], ...]
    message_id: str
    sandbox: bool


@dataclass(frozen=True)
class Seen:
    """One request and the answer it got."""

    status: int
    personalizations: int
    size: int
    body: dict[str, Any] | None


def rate_limited(seconds: float = 1.0) -> Step:
    """A 429 whose reset is ``seconds`` away, as SendGrid sends it."""
    reset = str(int(time.time() + seconds))
    return Step(
        status=429,
        headers={
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        },
        body={"errors": [{"field": None, "message": "too many requests"}]},
    )


def server_error(status: int = 500) -> Step:
    return Step(status=status, body={"errors": [{"field": None, "message": "internal error"}]})


def _errors(*pairs: tuple[str | None, str]) -> dict[str, Any]:
    return {"errors": [{"field": f, "message": m, "help": HELP} for f, m in pairs]}


class SendGridDouble:
    """The server; use as a context manager or call ``start``/``stop``."""

    def __init__(
        self,
        api_key: str = API_KEY,
        *,
        spec: Path = SPEC_PATH,
        keep_bodies: bool = True,
        max_bytes: int = 30 * 1024 * 1024,
        reject: Iterable[str] = (),
        latency: float = 0.0,
        validate_later: bool = False,
    ) -> None:
        self.api_key = api_key
        self.spec = spec
        self.validator = validator(spec)
        #: Seconds every answer takes, as a real provider's does (a few hundred ms).
        self.latency = latency
        #: Answer first and validate in a child process (``bench.send``): a body that
        #: breaks the spec is still accepted but counted in ``violations``.
        self.validate_later = validate_later
        self.violations: list[list[tuple[str | None, str]]] = []
        self._to_validate: Any = None  # the checking process's inbox (a multiprocessing queue)
        self._checker: Any = None
        self._validating = 0
        self.keep_bodies = keep_bodies
        self.max_bytes = max_bytes
        self.reject = {a.lower() for a in reject}
        self.on_request: Callable[[int], None] | None = None
        self.on_accept: Callable[[int], None] | None = None
        self.after_answer: Callable[[int], None] | None = None
        self.seen: list[Seen] = []
        self.delivered: list[Delivered] = []
        self.recipients: Counter[str] = Counter()
        self.accepted = 0
        self.arrived = 0
        self._steps: list[Step] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life ----------------------------------------------------------------------------

    def start(self, port: int = 0) -> SendGridDouble:
        double = self

        class Handler(_Handler):
            owner = double

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        if self.validate_later:
            self._start_checker()
        return self

    def _start_checker(self) -> None:
        """The spec check in a child process at idle priority, answering in ``_verdicts``."""
        context = multiprocessing.get_context("spawn")
        self._to_validate = context.Queue()
        verdicts = context.Queue()
        self._checker = context.Process(
            target=_check_forever,
            args=(self._to_validate, verdicts, self.spec, sorted(self.reject)),
            daemon=True,
        )
        self._checker.start()
        threading.Thread(target=self._verdicts, args=(verdicts,), daemon=True).start()

    def _verdicts(self, verdicts: Any) -> None:
        while not self._closing.is_set():
            try:
                problems = verdicts.get(timeout=0.1)
            except queue.Empty:
                continue
            with self._lock:
                self._validating -= 1
                if problems:
                    self.violations.append(problems)

    def stop(self) -> None:
        self._closing.set()
        if self._checker is not None:
            self._checker.terminate()
            self._checker.join(10)
            self._checker = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SendGridDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *steps: Step) -> None:
        """Answer the next requests with these steps, in order, then normally again."""
        with self._lock:
            self._steps.extend(steps)

    def _next_step(self) -> Step | None:
        with self._lock:
            return self._steps.pop(0) if self._steps else None

    def statuses(self) -> list[int]:
        return [s.status for s in self.seen]

    def stats(self) -> dict[str, Any]:
        return {
            "requests": len(self.seen),
            "accepted": self.accepted,
            "statuses": dict(Counter(s.status for s in self.seen)),
            "recipients": sum(self.recipients.values()),
            "distinct": len(self.recipients),
            "duplicates": sum(n - 1 for n in self.recipients.values() if n > 1),
            "bytes": sum(s.size for s in self.seen),
            "violations": len(self.violations),
            "first_violation": self.violations[0] if self.violations else None,
            "waiting_validation": self._validating,
        }

    # -- the API -------------------------------------------------------------------------

    def handle(
        self, authorization: str, raw: bytes
    ) -> tuple[int, dict[str, str], Any, Step | None]:
        """(status, headers, JSON body, hang step) for one POST /v3/mail/send."""
        if authorization != f"Bearer {self.api_key}":
            return self._answer(
                401, raw, None, _errors((None, "The provided authorization grant is invalid"))
            )
        if len(raw) > self.max_bytes:
            return self._answer(413, raw, None, _errors((None, "The request is too large")))
        step = self._next_step()
        if step is not None and step.status:
            return self._answer(step.status, raw, None, step.body, step.headers)
        try:
            body = json.loads(raw)
        except ValueError:
            return self._answer(400, raw, None, _errors((None, "Bad Request: invalid JSON")))
        if self.validate_later and isinstance(body, dict):
            with self._lock:
                self._validating += 1
            self._to_validate.put(zlib.compress(raw, 1))  # a backlog of bodies stays small
        else:
            problems = self._problems(body)
            if problems:
                return self._answer(400, raw, body, _errors(*problems[:10]))
        if step is not None and step.hang and not step.accept:
            self._answer(0, raw, body, None)
            return 0, {}, None, step
        message_id = secrets.token_urlsafe(16)
        self._accept(body, message_id)
        if step is not None and step.hang:
            self._answer(0, raw, body, None)
            return 0, {}, None, step
        return self._answer(202, raw, body, None, {"X-Message-Id": message_id})

    def _answer(
        self,
        status: int,
        raw: bytes,
        body: Any,
        answer: Any,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any, Step | None]:
        personalizations = body.get("personalizations", []) if isinstance(body, dict) else []
        kept = body if self.keep_bodies and isinstance(body, dict) else None
        with self._lock:
            self.seen.append(Seen(status, len(personalizations), len(raw), kept))
        return status, headers or {}, answer, None

    def _problems(self, body: Any) -> list[tuple[str | None, str]]:
        return spec_problems(self.validator, body, self.reject)

    def _accept(self, body: dict[str, Any], message_id: str) -> None:
        personalizations = body["personalizations"]
        with self._lock:
            self.accepted += 1
            for p in personalizations:
                self.recipients.update(str(t["email"]).lower() for t in p["to"])
        if not self.keep_bodies:
            return
        content = {c["type"]: c["value"] for c in body["content"]}
        sandbox = bool(body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable"))
        delivered = []
        for p in personalizations:
            subs = p.get("substitutions", {})

            def fill(text: str, subs: dict[str, str] = subs) -> str:
                for key, value in subs.items():
                    text = text.replace(key, value)
                return text

            for to in p["to"]:
                delivered.append(
                    Delivered(
                        to=str(to["email"]),
                        subject=fill(p.get("subject") or body.get("subject", "")),
                        text=fill(content.get("text/plain", "")),
                        html=fill(content.get("text/html", "")),
                        headers={**body.get("headers", {}), **p.get("headers", {})},
                        custom_args={**p.get("custom_args", {})},
                        categories=tuple(body.get("categories", [])),
                        attachments=tuple(body.get("attachments", [])),
                        message_id=message_id,
                        sandbox=sandbox,
                    )
                )
        with self._lock:
            self.delivered.extend(delivered)


def spec_problems(
    validator: Any, body: Any, reject: set[str] | frozenset[str] = frozenset()
) -> list[tuple[str | None, str]]:
    """What SendGrid would refuse in ``body``: the OpenAPI description's errors, else the
    checks it makes beyond it (addresses, subject, content, substitutions, headers)."""
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        return [(".".join(str(p) for p in e.absolute_path) or None, e.message) for e in errors]
    problems: list[tuple[str | None, str]] = []
    if not ADDRESS.match(str(body["from"].get("email", ""))):
        problems.append(("from.email", "The from email does not contain a valid address."))
    if not body.get("subject") and not all(p.get("subject") for p in body["personalizations"]):
        problems.append(("subject", "The subject is required."))
    if not body.get("content"):
        problems.append(("content", "The content is required."))
    for i, personalization in enumerate(body["personalizations"]):
        for j, to in enumerate(personalization["to"]):
            address = str(to.get("email", ""))
            if (
                not ADDRESS.match(address)
                or address.lower() in reject
                or (address.lower().endswith(".invalid"))
            ):
                problems.append(
                    (f"personalizations.{i}.to.{j}.email", "Does not contain a valid address.")
                )
        substitutions = personalization.get("substitutions", {})
        if len(json.dumps(substitutions).encode()) > 10_000:
            problems.append(
                (f"personalizations.{i}.substitutions", "Substitutions exceed 10,000 bytes.")
            )
        for name in personalization.get("headers", {}):
            if name.lower() in ("to", "from", "subject", "content-type", "reply-to"):
                problems.append((f"personalizations.{i}.headers", f"{name} is reserved."))
    return problems


def _check_forever(inbox: Any, verdicts: Any, spec: Path, reject: list[str]) -> None:
    """The checking process: each compressed body in, its first problems out, until None."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
    check = validator(spec)
    while (packed := inbox.get()) is not None:
        verdicts.put(spec_problems(check, json.loads(zlib.decompress(packed)), set(reject))[:5])


class _Handler(BaseHTTPRequestHandler):
    owner: SendGridDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send_json(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/_double/stats":
            self._send_json(200, {}, self.owner.stats())
        else:
            self._send_json(404, {}, _errors((None, "not found")))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v3/mail/send":
            self._send_json(404, {}, _errors((None, "not found")))
            return
        owner = self.owner
        with owner._lock:
            owner.arrived += 1
            arrived = owner.arrived
        if owner.on_request is not None:
            owner.on_request(arrived)
        status, headers, body, hang = owner.handle(self.headers.get("Authorization", ""), raw)
        if owner.latency:
            owner._closing.wait(owner.latency)
        if hang is not None:
            owner._closing.wait(hang.hang)
            self.close_connection = True
            return
        if status == 202 and owner.on_accept is not None:
            owner.on_accept(arrived)
        try:
            self._send_json(status, headers, body)
            self.wfile.flush()
        except OSError:
            return
        if status == 202 and owner.after_answer is not None:
            owner.after_answer(arrived)


def main(argv: list[str] | None = None) -> None:
    """Serve the double in this process until killed; prints ``PORT <n>`` when ready."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--keep-bodies", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument(
        "--validate-later", action="store_true", help="answer first, validate in the background"
    )
    args = parser.parse_args(argv)
    double = SendGridDouble(
        args.api_key,
        keep_bodies=args.keep_bodies,
        latency=args.latency,
        validate_later=args.validate_later,
    ).start(args.port)
    print(f"PORT {double.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        double.stop()


if __name__ == "__main__":
    main()
