"""Send one issue to 100,000 readers through the SendGrid backend to the local double.

python -m bench.send [--readers 100000] [--sets 20] [--latency 0.3] [--naive 2000]
                     [--naive-slow 50] [--big 1000000] [--db sqlite,postgresql]

The double runs in its own process (``python -m tests.fakes.sendgrid_double``) and
answers every request after ``--latency`` seconds, as a real provider takes a few
hundred milliseconds; it answers first and validates each body against SendGrid's
OpenAPI description afterwards in a child process at idle priority, and the
benchmark fails at the end if any body broke it. For each database the readers are
inserted in bulk (not timed), the issue is prepared (not timed), then
``sending.send`` runs in a fresh child process that reports its wall time, CPU time
and peak RSS, so the figure is the send's and not the setup's; the 1-minute load
average is printed beside it (the machine may be shared). Each database is measured
with latency 0 and ``--latency``. The naive baseline is the same code path with one
reader per request and one request in flight (batch size 1, concurrency 1), at the
same latency, on ``--naive`` readers (``--naive-slow`` with latency); the ratio
compares readers per second. ``--big`` readers are then sent on PostgreSQL at
``--latency`` (0 skips that run).

Targets from the issue: 100,000 readers at 0.3 s latency under 20 s and >= 50x the
naive loop at the same latency; 1,000,000 on PostgreSQL under 200 s; peak RSS < 300 MB.
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
def double_process(latency: float) -> Iterator[str]:
    """The SendGrid double in its own process, answering after ``latency``; yields its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.sendgrid_double",
            "--api-key",
            API_KEY,
            "--latency",
            str(latency),
            "--validate-later",
        ],
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


def validated(url: str) -> dict[str, Any]:
    """The double's stats once its background validation has caught up."""
    while True:
        stats = double_stats(url)
        if not stats["waiting_validation"]:
            return stats
        time.sleep(0.5)


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


def settings_for(url: str, double: str, batch_size: int, concurrency: int | None = None) -> Any:
    from newsletter.settings import load_settings

    return load_settings(
        send_concurrency=concurrency,
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
        for start in range(0, readers, 50_000):
            with svc.engine.begin() as conn:
                conn.execute(
                    sa.insert(table),
                    [
                        {
                            "email": f"reader{i}@{domain}",
                            "categories": ",".join(combos[i % len(combos)]),
                            "language": "en",
                            "status": "active",
                        }
                        for i in range(start, min(start + 50_000, readers))
                    ],
                )
    finally:
        svc.engine.dispose()


def child(url: str, double: str, batch_size: int) -> None:
    """Run one send in this process and print its figures as JSON (the naive loop, batch
    size 1, also has one request in flight)."""
    from newsletter.app import Services
    from newsletter.delivery.sendgrid import SendGridBackend
    from newsletter.sending import send

    svc = Services.build(settings_for(url, double, batch_size, 1 if batch_size == 1 else None))
    backend = SendGridBackend.from_settings(svc.settings)
    start = time.perf_counter()
    report = send(svc, DATE, backend)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kb = usage.ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "sent": report.sent,
                "failed": report.failed + report.deferred,
                "unknown": report.unknown,
                "groups": report.groups,
                "requests": backend.requests,
                "in_flight": report.in_flight // max(1, backend.max_batch),
                "peak_mb": peak_kb / 1024,
                "renders": report.renders,
                "for_you_ranked": report.for_you_ranked,
                "for_you_blocks": report.for_you_blocks,
                "cpu_s": usage.ru_utime + usage.ru_stime,
            }
        )
    )


def measure(kind: str, workdir: Path, double: str, readers: int, sets: int, batch: int) -> Any:
    with database(kind, workdir) as url:
        tag = uuid.uuid4().hex[:6]
        prepare(url, double, readers, sets, f"{kind}-{batch}-{tag}.example.com")
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
        # The machine is shared: the 1-minute load average as the send ends goes beside it.
        figures["load"] = os.getloadavg()[0]
        return figures


def report(kind: str, latency: float, fast: Any, naive: Any, target_s: float) -> bool:
    """Print one database's figures at one latency; True when the targets are met."""
    rate = fast["sent"] / fast["seconds"]
    naive_rate = naive["sent"] / naive["seconds"]
    label = f"{kind} {latency:g}s"
    print(
        f"{label:<17} batched: {fast['sent']:,} sent in {fast['seconds']:.1f} s = "
        f"{rate:,.0f} readers/s; {fast['requests']} requests ({fast['double_requests']} "
        f"at the double, {fast['in_flight']} in flight), {fast['groups']} renderings; "
        f"peak RSS {fast['peak_mb']:.0f} MB; CPU {fast['cpu_s']:.1f} s; failed "
        f"{fast['failed']}, unknown {fast['unknown']}, duplicates {fast['duplicates']}; "
        f"load {fast['load']:.1f}"
    )
    print(
        f"{label:<17} naive:   {naive['sent']:,} sent in {naive['seconds']:.1f} s = "
        f"{naive_rate:,.0f} readers/s; one reader per request, one request at a time"
    )
    # The ratio target (>= 50x) is at a real provider's latency, not at zero.
    ratio_ok = rate / naive_rate >= 50 or not latency
    ok = fast["seconds"] < target_s and fast["peak_mb"] < 300 and ratio_ok
    verdict = "ok" if ok else "MISSED"
    ratio_target = ", >=50x" if latency else ""
    print(
        f"{label:<17} ratio batched/naive: {rate / naive_rate:.1f}x; "
        f"target <{target_s:g} s{ratio_target}, <300 MB: {verdict}"
    )
    return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--naive", type=int, default=2_000)
    parser.add_argument("--naive-slow", type=int, default=50)
    parser.add_argument("--big", type=int, default=1_000_000)
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
        "backend to the local double (every request validated against tsg_mail_v3.json after "
        "the answer, in a child process at idle priority)"
    )
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    violations = 0
    with tempfile.TemporaryDirectory() as tmp:
        for latency in dict.fromkeys((0.0, args.latency)):
            with double_process(latency) as double:
                for kind in kinds:
                    try:
                        fast = measure(kind, Path(tmp), double, args.readers, args.sets, 1000)
                        few = args.naive_slow if latency else args.naive
                        naive = measure(kind, Path(tmp), double, few, args.sets, 1)
                    except Exception as exc:  # a missing PostgreSQL skips that database only
                        print(f"{kind:<11} skipped: {exc}")
                        continue
                    target = 20 if latency else 60
                    report(kind, latency, fast, naive, target * args.readers / 100_000)
                if args.big and latency and "postgresql" in kinds:
                    big = measure("postgresql", Path(tmp), double, args.big, args.sets, 1000)
                    ok = big["seconds"] < 200 * args.big / 1_000_000 and big["peak_mb"] < 300
                    print(
                        f"postgresql {latency:g}s big: {big['sent']:,} sent in "
                        f"{big['seconds']:.1f} s = {big['sent'] / big['seconds']:,.0f} readers/s; "
                        f"peak RSS {big['peak_mb']:.0f} MB; CPU {big['cpu_s']:.0f} s; "
                        f"duplicates {big['duplicates']}; load {big['load']:.1f}; "
                        f"target <200 s per million, <300 MB: {'ok' if ok else 'MISSED'}"
                    )
                stats = validated(double)
                violations += stats["violations"]
                if stats["violations"]:
                    print(f"spec violations at latency {latency:g}: {stats['first_violation']}")
    if violations:
        raise SystemExit(f"{violations} request bodies broke SendGrid's OpenAPI description")
    print("every request body matched SendGrid's OpenAPI description")


if __name__ == "__main__":
    main()
