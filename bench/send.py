"""Send one issue to 100,000 readers through the SendGrid backend to the local double.

python -m bench.send [--readers 100000] [--sets 20] [--naive 2000] [--db sqlite,postgresql]

The double runs in its own process (``python -m tests.fakes.sendgrid_double``) and
validates every request body against SendGrid's OpenAPI description, as in the
tests. For each database the readers are inserted in bulk (not timed), the issue is
prepared (not timed), then ``sending.send`` runs in a fresh child process that
reports its wall time and peak RSS, so the figure is the send's and not the setup's.
The naive baseline is the same code path with one reader per request (batch size
1) on ``--naive`` readers; the ratio compares readers per second.

Targets from the issue: 100,000 readers in under 60 s, peak memory under 300 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATE = dt.date(2024, 11, 22)
PG_URL = os.environ.get(
    "NEWSLETTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
API_KEY = "SG.bench-key"
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"


@contextmanager
def double_process() -> Iterator[str]:
    """The SendGrid double in its own process; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.sendgrid_double", "--api-key", API_KEY],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"the SendGrid double did not start: {line}{proc.communicate()[1]}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(10)


def double_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_double/stats", timeout=30) as answer:
        return dict(json.loads(answer.read()))


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        return
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def settings_for(url: str, double: str, batch_size: int) -> Any:
    from newsletter.settings import load_settings

    return load_settings(
        database_url=url,
        feeds=[],
        llm_model="",
        language="en",
        mail_backend="sendgrid",
        sendgrid_api_key=API_KEY,
        sendgrid_host=double,
        sendgrid_batch_size=batch_size,
        secret_key=SECRET,
        base_url="https://news.example.org",
        from_email="news@example.org",
    )


def prepare(url: str, double: str, readers: int, sets: int, domain: str) -> None:
    """The sample issue, computed and rendered, and ``readers`` in ``sets`` category sets.

    Addresses are under ``domain``, unique per measurement, so the double (shared by
    every measurement) can tell a duplicate from the same reader of another run.
    """
    import itertools

    import sqlalchemy as sa

    from newsletter.app import Services
    from newsletter.db import table_of
    from newsletter.digest import build_digest, render_stage
    from newsletter.preview import load_sample
    from subscribers.models import Subscriber

    svc = Services.build(settings_for(url, double, 1000))
    try:
        load_sample(svc)
        digest = build_digest(svc, DATE, "en")
        assert digest is not None
        render_stage(svc, digest)
        slugs = [s for s in svc.taxonomy.slugs if s in digest.slugs]
        combos = [c for n in (1, 2, 3) for c in itertools.combinations(slugs, n)][:sets]
        table = table_of(Subscriber)
        with svc.engine.begin() as conn:
            for start in range(0, readers, 10_000):
                conn.execute(
                    sa.insert(table),
                    [
                        {
                            "email": f"reader{i}@{domain}",
                            "categories": ",".join(combos[i % len(combos)]),
                            "language": "en",
                            "status": "active",
                        }
                        for i in range(start, min(start + 10_000, readers))
                    ],
                )
    finally:
        svc.engine.dispose()


def child(url: str, double: str, batch_size: int) -> None:
    """Run one send in this process and print its figures as JSON."""
    from newsletter.app import Services
    from newsletter.delivery.sendgrid import SendGridBackend
    from newsletter.sending import send

    svc = Services.build(settings_for(url, double, batch_size))
    backend = SendGridBackend.from_settings(svc.settings)
    start = time.perf_counter()
    report = send(svc, DATE, backend)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "sent": report.sent,
                "failed": report.failed + report.deferred,
                "unknown": report.unknown,
                "groups": report.groups,
                "requests": backend.requests,
                "peak_mb": peak_kb / 1024,
            }
        )
    )


def measure(kind: str, workdir: Path, double: str, readers: int, sets: int, batch: int) -> Any:
    with database(kind, workdir) as url:
        prepare(url, double, readers, sets, f"{kind}-{batch}.example.com")
        before = double_stats(double)
        out = subprocess.run(
            [sys.executable, "-m", "bench.send", "--child", url, double, str(batch)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(f"the send failed:\n{out.stderr}")
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        after = double_stats(double)
        figures["double_requests"] = after["requests"] - before["requests"]
        figures["duplicates"] = after["duplicates"] - before["duplicates"]
        return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--naive", type=int, default=2_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument(
        "--child", nargs=3, metavar=("URL", "DOUBLE", "BATCH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    sys.path.insert(0, str(ROOT))
    from tests.fakes.sendgrid_double import SPEC_PATH

    if not SPEC_PATH.is_file():
        raise SystemExit(f"SendGrid's OpenAPI description is missing at {SPEC_PATH.resolve()}")
    print(
        f"bench.send: {args.readers:,} readers in {args.sets} category sets through the SendGrid "
        "backend to the local double (every request validated against tsg_mail_v3.json)"
    )
    with tempfile.TemporaryDirectory() as tmp, double_process() as double:
        for kind in [k.strip() for k in args.db.split(",") if k.strip()]:
            try:
                fast = measure(kind, Path(tmp), double, args.readers, args.sets, 1000)
                naive = measure(kind, Path(tmp), double, args.naive, args.sets, 1)
            except Exception as exc:  # a missing PostgreSQL skips that database only
                print(f"{kind:<11} skipped: {exc}")
                continue
            rate = fast["sent"] / fast["seconds"]
            naive_rate = naive["sent"] / naive["seconds"]
            print(
                f"{kind:<11} batched: {fast['sent']:,} sent in {fast['seconds']:.1f} s = "
                f"{rate:,.0f} readers/s; {fast['requests']} requests ({fast['double_requests']} "
                f"at the double), {fast['groups']} renderings; peak RSS {fast['peak_mb']:.0f} MB; "
                f"failed {fast['failed']}, unknown {fast['unknown']}, duplicates "
                f"{fast['duplicates']}"
            )
            print(
                f"{kind:<11} naive:   {naive['sent']:,} sent in {naive['seconds']:.1f} s = "
                f"{naive_rate:,.0f} readers/s; {naive['requests']} requests (one per reader)"
            )
            verdict = "ok" if fast["seconds"] < 60 and fast["peak_mb"] < 300 else "MISSED"
            print(
                f"{kind:<11} ratio batched/naive: {rate / naive_rate:.1f}x; "
                f"target <60 s and <300 MB: {verdict}"
            )


if __name__ == "__main__":
    main()
