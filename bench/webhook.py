"""Apply one signed SendGrid Event Webhook post of 5,000 events, as SendGrid would send it.

python -m bench.webhook [--events 5000] [--db sqlite,postgresql]

For each database a fresh one gets the sample date's issue, ``--events // 2`` readers
and a ledger row for each (not timed). The post then goes through the web app (the
signature check, parsing, applying) with a mix like a day's: per reader a
``delivered`` and an ``open``, with 2% of the opens replaced by hard bounces, 1% by
unsubscribes, 0.5% by spam reports and 0.5% by events for readers we do not know.
The same post is then replayed (every event a duplicate). Figures: seconds per post
and events per second.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.send import database

DATE = dt.date(2024, 11, 22)
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"


def make_events(issue: int, readers: list[int], count: int) -> list[dict[str, Any]]:
    """``count`` events, two per reader: delivered, then open or a status-changing event."""
    events: list[dict[str, Any]] = []
    for n in range(count):
        reader = readers[(n // 2) % len(readers)]
        kind, extra = "delivered", {}
        if n % 2:
            slot = (n // 2) % 200
            kind = "open"
            if slot < 4:
                kind, extra = "bounce", {"type": "bounce", "reason": "550 5.1.1 user unknown"}
            elif slot < 6:
                kind = "unsubscribe"
            elif slot == 6:
                kind = "spamreport"
            elif slot == 7:
                reader = 10**9 + n  # a reader we do not know
        events.append(
            {
                "email": f"reader{reader}@example.com",
                "timestamp": 1732270000 + n,
                "event": kind,
                "sg_event_id": f"bench-{kind}-{n}",
                "issue_id": str(issue),
                "subscriber_id": str(reader),
                **extra,
            }
        )
    return events


def run(kind: str, workdir: Path, count: int) -> None:
    import sqlalchemy as sa
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from fastapi.testclient import TestClient

    from newsletter.app import Services
    from newsletter.db import table_of
    from newsletter.delivery import ledger
    from newsletter.delivery.memory import MemoryBackend
    from newsletter.issues import ensure_issue
    from newsletter.models import SendResult
    from newsletter.settings import load_settings
    from newsletter.statuses import SendOutcome
    from subscribers import webhooks
    from subscribers.models import Subscriber
    from subscribers.web_app import create_app

    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    with database(kind, workdir) as url:
        settings = load_settings(
            database_url=url,
            feeds=[],
            llm_model="",
            mail_backend="memory",
            secret_key=SECRET,
            base_url="https://news.example.org",
            sendgrid_webhook_public_key=public,
        )
        svc = Services.build(settings)
        try:
            issue = ensure_issue(svc.engine, DATE).id
            assert issue is not None
            table = table_of(Subscriber)
            rows = [
                {"email": f"reader{n}@example.com", "categories": "nlp", "status": "active"}
                for n in range(max(1, count // 2))
            ]
            with svc.engine.begin() as conn:
                conn.execute(sa.insert(table), rows)
                readers = sorted(conn.execute(sa.select(table.c.id)).scalars())
            ledger.claim(svc.engine, issue, [(i, "nlp") for i in readers])
            ledger.record(
                svc.engine, issue, [(i, SendResult("x", SendOutcome.SENT, "sg")) for i in readers]
            )
            body = json.dumps(make_events(issue, readers, count), separators=(",", ":")).encode()
            with TestClient(create_app(svc, MemoryBackend())) as client:
                for label in ("first post", "replayed"):
                    stamp = str(int(time.time()))
                    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
                    headers = {
                        webhooks.SIGNATURE_HEADER: base64.b64encode(signature).decode(),
                        webhooks.TIMESTAMP_HEADER: stamp,
                        "Content-Type": "application/json",
                    }
                    start = time.perf_counter()
                    answer = client.post("/webhooks/sendgrid", content=body, headers=headers)
                    seconds = time.perf_counter() - start
                    if answer.status_code != 200:
                        raise SystemExit(f"{kind}: the post was answered {answer.status_code}")
                    print(
                        f"{kind:10} {label:10} {count} events: {seconds:6.2f} s "
                        f"({count / seconds:8.0f} events/s) {answer.json()}"
                    )
        finally:
            svc.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.db.split(","):
            run(kind.strip(), Path(tmp), args.events)


if __name__ == "__main__":
    main()
