"""What the service adds around a run: date lock, catch-up check, health, scheduler start.

Run: python -m bench.daily_run  (needs the local PostgreSQL for the PostgreSQL rows).
Prints per-operation times on SQLite and PostgreSQL; each should be far below the
seconds a run itself takes, so the service's bookkeeping never matters.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PG = os.environ.get("NEWSLETTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPEAT = 200


def timed(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    """Median milliseconds of ``fn``."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


@contextmanager
def databases() -> Iterator[list[tuple[str, str]]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-daily-run-"))
    found = [("sqlite", f"sqlite:///{tmp / 'bench.db'}")]
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        found.append(("postgresql", f"{PG}?options=-csearch_path%3D{schema}"))
    except sa.exc.OperationalError:
        print("PostgreSQL is not reachable: SQLite only")
        schema = ""
    try:
        yield found
    finally:
        if schema:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def measure(name: str, url: str) -> None:
    from newsletter.app import Services
    from newsletter.daemon import build_scheduler
    from newsletter.daily_run import DailyRun, missed_run
    from newsletter.delivery.memory import MemoryBackend
    from newsletter.health import health
    from newsletter.locks import date_lock
    from newsletter.settings import load_settings

    day = dt.date(2024, 11, 22)
    svc = Services.build(load_settings(database_url=url, feeds=[]))
    job = DailyRun(svc, MemoryBackend)
    for _ in range(20):
        job("manual", None)  # nothing to send: fills the run table a little

    def lock() -> None:
        with date_lock(svc.engine, day) as held:
            assert held

    sched = build_scheduler(svc, job)
    # Within the catch-up window of 07:00, so the check reads the run table.
    nine = dt.datetime.now(sched.zone).replace(hour=9, minute=0, second=0, microsecond=0)
    rows = {
        "date lock, take and release": timed(lock),
        "catch-up check at start": timed(lambda: missed_run(svc, sched, nine)),
        "health (/healthz, status)": timed(lambda: health(svc), 50),
        "empty daily run (collect nothing)": timed(lambda: job("manual", None), 20),
    }
    start = time.perf_counter()
    sched.start()
    rows["scheduler start (job store)"] = (time.perf_counter() - start) * 1000
    sched.shutdown()
    for label, ms in rows.items():
        print(f"{name:<11} {label:<34} {ms:>10.2f}")
    svc.engine.dispose()


def main() -> None:
    print(f"{'database':<11} {'operation':<34} {'median ms':>10}")
    with databases() as urls:
        for name, url in urls:
            measure(name, url)


if __name__ == "__main__":
    main()
