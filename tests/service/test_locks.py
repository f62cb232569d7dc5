"""One run per date across processes: PostgreSQL advisory lock, SQLite claim row."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import time

import sqlalchemy as sa

from newsletter.app import prepare_database
from newsletter.db import make_engine
from newsletter.locks import CLAIMS, date_lock

DAY = dt.date(2024, 11, 22)


def test_second_holder_is_refused_until_release(database_url: str) -> None:
    one, two = make_engine(database_url), make_engine(database_url)
    prepare_database(one)
    with date_lock(one, DAY) as held:
        assert held
        with date_lock(two, DAY) as other:
            assert not other
        with date_lock(two, DAY + dt.timedelta(days=1)) as next_day:
            assert next_day
    with date_lock(two, DAY) as again:
        assert again
    one.dispose()
    two.dispose()


def test_lock_is_released_when_the_holder_dies(database_url: str) -> None:
    """A killed process never blocks the date: PG drops its session, SQLite sees a dead pid."""
    engine = make_engine(database_url)
    prepare_database(engine)
    holder = textwrap.dedent(
        f"""
        import datetime as dt, sys, time
        from newsletter.db import make_engine
        from newsletter.locks import date_lock
        engine = make_engine({database_url!r})
        with date_lock(engine, dt.date(2024, 11, 22)) as held:
            print("held" if held else "refused", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        with date_lock(engine, DAY) as held:
            assert not held
    finally:
        proc.kill()
        proc.wait(timeout=10)
    # PostgreSQL ends the dead session (and drops its locks) a moment after the socket
    # closes, not at once: the next run may have to look again.
    assert _lock_frees_within(engine, seconds=10)
    engine.dispose()


def _lock_frees_within(engine: sa.Engine, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        with date_lock(engine, DAY) as held:
            if held:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_sqlite_claim_of_a_live_process_elsewhere_is_respected(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    prepare_database(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(sa.insert(CLAIMS).values(date=DAY, owner="other-host:1:abc", claimed_at=now))
    with date_lock(engine, DAY) as held:
        assert not held
    with engine.begin() as conn:  # a claim older than STALE_AFTER is abandoned
        conn.execute(sa.update(CLAIMS).values(claimed_at=now - dt.timedelta(hours=7)))
    with date_lock(engine, DAY) as held:
        assert held
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(CLAIMS)).scalar() == 0
    engine.dispose()


def test_two_replicas_creating_the_job_table_at_once_both_start() -> None:
    """A second CREATE TABLE waits for the first, then fails; the scheduler takes it in stride."""
    import threading
    import time

    from newsletter.schedule_store import JOBS_TABLE
    from newsletter.scheduler import DailyScheduler
    from tests.conftest import pg_schema_url

    gen = pg_schema_url()
    url = next(gen)
    try:
        engine = make_engine(url)
        first = make_engine(url)
        sched = DailyScheduler(
            engine, "0 7 * * *", "Asia/Seoul", lambda *_: None, misfire_grace=dt.timedelta(hours=1)
        )
        errors: list[BaseException] = []
        with first.connect() as conn:
            trans = conn.begin()
            sched._store.jobs_t.create(conn)  # the other replica, not yet committed

            def create() -> None:
                try:
                    sched._create_job_table()
                except BaseException as exc:  # reported below
                    errors.append(exc)

            thread = threading.Thread(target=create)
            thread.start()
            deadline = time.monotonic() + 20
            while True:  # until our CREATE waits on the other replica's
                with engine.connect() as probe:
                    waiting = probe.execute(
                        sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    ).scalar()
                if waiting or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            trans.commit()
            thread.join(timeout=20)
        assert not thread.is_alive() and errors == []
        with engine.connect() as conn:
            assert sa.inspect(conn).has_table(JOBS_TABLE)
        engine.dispose()
        first.dispose()
    finally:
        gen.close()
