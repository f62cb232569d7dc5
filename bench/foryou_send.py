"""A send with "For you" at scale: ``python -m bench.foryou --send``.

100,000 readers (``--readers``) in 20 category sets (``--sets``) and two languages, half
of them with interests (a third free text, a third liked papers, a third both, from
``bench.foryou_day``), on a generated day of 2,000 papers sorted by the offline rules,
mailed through the SendGrid backend to the local double answering after ``--latency``
seconds (default 0.3) and validating every body against SendGrid's OpenAPI description
in the background. The database is SQLite; the day's digest in both languages is made
before the clock starts (not timed); ``sending.send`` runs in a child process
(``bench.send --child``) that reports its wall time and peak RSS.

Targets from the issue: under 60 s, peak RSS under 300 MB, and the full renders equal
to the (category set, language) pairs.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.foryou_day import DATE, day, readers
from bench.send import ROOT, database, double_process, double_stats, settings_for, validated

LANGUAGES = ("en", "ko")
CHUNK = 25_000


def prepare(
    url: str, double: str, count: int, sets: int, per_topic: int, with_interests: bool = True
) -> int:
    """The generated day (digest and renders of both languages stored), ``count`` readers,
    every other one with interests; returns the number of (category set, language) pairs."""
    import sqlalchemy as sa

    from newsletter.app import Services
    from newsletter.db import table_of, utcnow
    from newsletter.digest import build_digest, render_stage
    from newsletter.papers import upsert_papers
    from subscribers.interests import INTERESTS, LikedPaper, digest_of
    from subscribers.models import Subscriber

    svc = Services.build(settings_for(url, double, 1000))
    try:
        papers, _, _ = day(per_topic)
        upsert_papers(svc.engine, papers)
        slugs: list[str] = []
        for language in LANGUAGES:
            digest = build_digest(svc, DATE, language)
            assert digest is not None
            render_stage(svc, digest)
            slugs = [s for s in svc.taxonomy.slugs if s in digest.slugs]
        combos = [c for n in (1, 2, 3) for c in itertools.combinations(slugs, n)][:sets]
        people = readers(count // 2)
        domain = f"foryou-{uuid.uuid4().hex[:6]}.example.com"
        table = table_of(Subscriber)
        for start in range(0, count, CHUNK):
            rows = [
                {
                    "email": f"reader{i}@{domain}",
                    "categories": ",".join(combos[i % len(combos)]),
                    "language": LANGUAGES[(i // len(combos)) % 2],
                    "status": "active",
                }
                for i in range(start, min(start + CHUNK, count))
            ]
            with svc.engine.begin() as conn:
                conn.execute(sa.insert(table), rows)
                found = conn.execute(
                    sa.select(table.c.id, table.c.email).where(
                        table.c.email.in_([r["email"] for r in rows[1::2]])
                    )
                ).all()
                now = utcnow()
                rows_of_interests = []
                for sid, email in found:
                    person = people[int(email.split("@")[0].removeprefix("reader")) // 2]
                    liked = tuple(LikedPaper(t, a) for t, a in person.liked)
                    rows_of_interests.append(
                        {
                            "subscriber_id": sid,
                            "text": person.text,
                            "papers": [{"title": p.title, "abstract": p.abstract} for p in liked],
                            "digest": digest_of(person.text, liked),
                            "updated_at": now,
                        }
                    )
                if with_interests:
                    conn.execute(sa.insert(INTERESTS), rows_of_interests)
        return len(combos) * len(LANGUAGES)
    finally:
        svc.engine.dispose()


def run(count: int, sets: int, latency: float, per_topic: int, interests: bool = True) -> bool:
    """Prepare, send in a child process, print the figures; True when the targets are met.

    Without ``interests`` nobody has any (every reader gets the invitation): the same send
    without ranking, to compare.
    """
    print(
        f"bench.foryou --send: {count:,} readers ({count // 2 if interests else 0:,} with "
        f"interests) in {sets} "
        f"category sets x {len(LANGUAGES)} languages, a day of {per_topic * 10:,} papers, "
        f"SendGrid double at {latency:g} s latency"
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        double_process(latency) as double,
        database("sqlite", Path(tmp)) as url,
    ):
        pairs = prepare(url, double, count, sets, per_topic, interests)
        before = double_stats(double)
        out = subprocess.run(
            [sys.executable, "-m", "bench.send", "--child", url, double, "1000"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(f"the send failed:\n{out.stderr}")
        figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        stats = validated(double)
    requests = stats["requests"] - before["requests"]
    ok = (
        figures["seconds"] < 60
        and figures["peak_mb"] < 300
        and figures["renders"] == pairs
        and figures["sent"] == count
        and not stats["violations"]
    )
    print(
        f"sent {figures['sent']:,} in {figures['seconds']:.1f} s "
        f"({figures['sent'] / figures['seconds']:,.0f} readers/s), {requests} requests; "
        f"peak RSS {figures['peak_mb']:.0f} MB"
    )
    print(
        f"full renders {figures['renders']} for {pairs} (category set, language) pairs; "
        f"For you ranked for {figures['for_you_ranked']:,} readers, "
        f"{figures['for_you_blocks']:,} blocks mailed; "
        f"failed {figures['failed']}, unknown {figures['unknown']}, "
        f"spec violations {stats['violations']}"
    )
    if stats["violations"]:
        print(f"first violation: {stats['first_violation']}")
    print(f"targets: < 60 s, < 300 MB, renders == pairs: {'ok' if ok else 'MISSED'}")
    return ok
