"""The ledger under crashes and races, on SQLite and PostgreSQL, with real processes."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.app import Services
from newsletter.db import make_engine, table_of
from newsletter.delivery import ledger
from newsletter.delivery.send_runs import STALE_AFTER
from newsletter.delivery.tables import DELIVERIES, SEND_RUNS
from newsletter.models import SendResult
from newsletter.statuses import SendOutcome
from subscribers.models import Subscriber
from tests.delivery.conftest import ONLY_POSTGRESQL, ONLY_SQLITE, SAMPLE_DATE, add_readers

ROOT = Path(__file__).resolve().parents[2]

#: A second process: opens a run, claims the ids, says so, then waits for "finish" on
#: stdin (records them sent) or is killed.
CLAIMER = textwrap.dedent(
    """
    import sys
    from newsletter.delivery import ledger
    from newsletter.db import make_engine
    from newsletter.models import SendResult
    url, issue, ids = sys.argv[1], int(sys.argv[2]), [int(i) for i in sys.argv[3].split(",")]
    engine = make_engine(url)
    with ledger.SendRun(engine, issue) as run:
        owned = ledger.claim(engine, issue, [(i, "nlp") for i in ids], run=run)
        print("claimed", len(owned), flush=True)
        if sys.stdin.readline().strip() == "finish":
            done = [(i, SendResult("x@y.z", "sent", "m1")) for i in owned]
            ledger.record(engine, issue, done, run)
    print("done", flush=True)
    """
)


@pytest.fixture
def issue(ledger_services: Services) -> int:
    from newsletter.issues import get_issue

    row = get_issue(ledger_services.engine, SAMPLE_DATE)
    assert row is not None and row.id is not None
    return row.id


def _status(svc: Services, issue: int) -> dict[int, str]:
    table = DELIVERIES
    with svc.engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.subscriber_id, table.c.status).where(table.c.issue_id == issue)
        )
        return {int(sid): str(status) for sid, status in rows}


class Claimer:
    """A real second process holding claims."""

    def __init__(self, url: str, issue: int, ids: list[int]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLAIMER, url, str(issue), ",".join(map(str, ids))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.claimed = int(self.proc.stdout.readline().split()[1])

    def finish(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("finish\n")
        self.proc.stdin.flush()
        assert self.proc.wait(30) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


@pytest.fixture
def claimers() -> Iterator[list[Claimer]]:
    started: list[Claimer] = []
    yield started
    for claimer in started:
        if claimer.proc.poll() is None:
            claimer.kill()


def test_rows_of_a_killed_process_become_unknown(
    ledger_services: Services, issue: int, claimers: list[Claimer]
) -> None:
    svc = ledger_services
    ids = add_readers(svc, 5)
    claimer = Claimer(svc.settings.database_url, issue, ids[:3])
    claimers.append(claimer)
    assert claimer.claimed == 3
    claimer.kill()
    with ledger.SendRun(svc.engine, issue) as run:
        assert ledger.mark_stale_unknown(svc.engine, issue, run) == 3
        assert ledger.claim(svc.engine, issue, [(i, "nlp") for i in ids], run=run) == set(ids[3:])
    status = _status(svc, issue)
    assert [status[i] for i in ids] == ["unknown"] * 3 + ["sending"] * 2


def test_rows_of_a_live_process_are_left_alone(
    ledger_services: Services, issue: int, claimers: list[Claimer]
) -> None:
    svc = ledger_services
    ids = add_readers(svc, 4)
    claimer = Claimer(svc.settings.database_url, issue, ids)
    claimers.append(claimer)
    with ledger.SendRun(svc.engine, issue) as run:
        assert ledger.mark_stale_unknown(svc.engine, issue, run) == 0
        assert ledger.claim(svc.engine, issue, [(i, "nlp") for i in ids], run=run) == set()
    claimer.finish()
    assert set(_status(svc, issue).values()) == {"sent"}


def test_unknown_rows_are_claimed_again_only_when_asked(
    ledger_services: Services, issue: int
) -> None:
    svc = ledger_services
    ids = add_readers(svc, 3)
    ledger.claim(svc.engine, issue, [(i, "nlp") for i in ids])
    assert ledger.mark_stale_unknown(svc.engine, issue) == 3
    with ledger.SendRun(svc.engine, issue) as run:
        readers = [(i, "nlp") for i in ids]
        assert ledger.claim(svc.engine, issue, readers, run=run) == set()
        both = ("deferred", "unknown")
        assert ledger.claim(svc.engine, issue, readers, both, run=run) == set(ids)
        assert ledger.claim(svc.engine, issue, readers, both, run=run) == set()


def test_record_writes_only_rows_the_run_owns(ledger_services: Services, issue: int) -> None:
    svc = ledger_services
    a, b = add_readers(svc, 2)
    with ledger.SendRun(svc.engine, issue) as first:
        ledger.claim(svc.engine, issue, [(a, "nlp")], run=first)
    with ledger.SendRun(svc.engine, issue) as second:
        ledger.claim(svc.engine, issue, [(b, "nlp")], run=second)
        ledger.record(
            svc.engine,
            issue,
            [
                (a, SendResult("a", SendOutcome.SENT, "m")),
                (b, SendResult("b", SendOutcome.SENT, "m")),
            ],
            second,
        )
    assert _status(svc, issue) == {a: "sending", b: "sent"}


def test_a_batch_with_one_answer_is_recorded_in_one_statement(
    ledger_services: Services, issue: int
) -> None:
    svc = ledger_services
    ids = add_readers(svc, 300)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE DELIVERIES"):
            statements.append(statement)

    with ledger.SendRun(svc.engine, issue) as run:
        ledger.claim(svc.engine, issue, [(i, "nlp") for i in ids], run=run)
        sa.event.listen(svc.engine, "before_cursor_execute", count)
        try:
            ledger.record(
                svc.engine, issue, [(i, SendResult("x", SendOutcome.SENT, "mid")) for i in ids], run
            )
        finally:
            sa.event.remove(svc.engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert set(_status(svc, issue).values()) == {"sent"}


@ONLY_POSTGRESQL  # row locks (SKIP LOCKED) exist on PostgreSQL; SQLite serializes writers
def test_retry_claims_skip_rows_another_transaction_holds(
    ledger_services: Services, issue: int
) -> None:
    svc = ledger_services
    a, b = add_readers(svc, 2)
    ledger.claim(svc.engine, issue, [(a, "nlp"), (b, "nlp")])
    ledger.record(
        svc.engine,
        issue,
        [(a, SendResult("a", SendOutcome.DEFERRED)), (b, SendResult("b", SendOutcome.DEFERRED))],
    )
    other = make_engine(svc.settings.database_url)
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(
                sa.select(DELIVERIES.c.id).where(DELIVERIES.c.subscriber_id == a).with_for_update()
            )
            with ledger.SendRun(svc.engine, issue) as run:
                owned = ledger.claim(svc.engine, issue, [(a, "nlp"), (b, "nlp")], run=run)
            assert owned == {b}  # a is being taken elsewhere: skipped, not waited for
    finally:
        other.dispose()


def test_racing_claims_never_hand_a_reader_to_two_runs(
    ledger_services: Services, issue: int
) -> None:
    svc = ledger_services
    ids = add_readers(svc, 600)
    engines = [make_engine(svc.settings.database_url) for _ in range(2)]
    owned: list[set[int]] = [set(), set()]
    barrier = threading.Barrier(2)

    def worker(n: int) -> None:
        engine = engines[n]
        with ledger.SendRun(engine, issue) as run:
            barrier.wait()
            for start in range(0, len(ids), 50):
                chunk = [(i, "nlp") for i in ids[start : start + 50]]
                owned[n] |= ledger.claim(engine, issue, chunk, ("deferred",), run)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for engine in engines:
        engine.dispose()
    assert not owned[0] & owned[1]
    assert owned[0] | owned[1] == set(ids)


@ONLY_SQLITE  # PostgreSQL knows a run is alive from its held lock, not from heartbeats
def test_a_heartbeat_older_than_the_limit_counts_as_dead(
    ledger_services: Services, issue: int
) -> None:
    svc = ledger_services
    (reader,) = add_readers(svc, 1)
    stale = ledger.SendRun(svc.engine, issue).__enter__()
    ledger.claim(svc.engine, issue, [(reader, "nlp")], run=stale)
    old = dt.datetime.now(dt.UTC) - STALE_AFTER - dt.timedelta(minutes=1)
    with svc.engine.begin() as conn:
        conn.execute(
            sa.update(SEND_RUNS)
            .where(SEND_RUNS.c.run_id == stale.id)
            .values(heartbeat_at=old, pid=os.getpid())
        )
    with ledger.SendRun(svc.engine, issue) as run:
        assert ledger.mark_stale_unknown(svc.engine, issue, run) == 1
    stale.__exit__(None, None, None)


def test_the_questions_other_areas_ask_the_ledger(ledger_services: Services, issue: int) -> None:
    svc = ledger_services
    a, b, c = add_readers(svc, 3)
    ledger.claim(svc.engine, issue, [(a, "nlp"), (b, "nlp")])
    ledger.record(
        svc.engine,
        issue,
        [(a, SendResult("a", SendOutcome.SENT)), (b, SendResult("b", SendOutcome.REJECTED))],
    )
    assert ledger.has_deliveries(svc.engine, [a, b, c]) == {a, b}
    assert ledger.has_deliveries(svc.engine, []) == set()
    with svc.engine.connect() as conn:  # inside the caller's own transaction too
        assert ledger.has_deliveries(conn, [c, a]) == {a}
    assert ledger.settled_ids(svc.engine, issue, ("deferred",)) == {a, b}
    assert ledger.counts(svc.engine, issue) == {"sent": 1, "failed": 1}
    # Only a mail that went out counts, within the week before the date, never the date itself.
    day = dt.timedelta(days=1)
    assert ledger.last_mailed(svc.engine, [a, b, c], SAMPLE_DATE + 6 * day) == {a: SAMPLE_DATE}
    assert ledger.last_mailed(svc.engine, [a], SAMPLE_DATE + 7 * day) == {}
    assert ledger.last_mailed(svc.engine, [a], SAMPLE_DATE) == {}
    assert ledger.latest_issue(svc.engine) == (issue, SAMPLE_DATE)


def test_a_sign_up_the_ledger_mailed_is_never_purged(ledger_services: Services, issue: int) -> None:
    from subscribers import signup

    svc = ledger_services
    mailed, never = add_readers(svc, 2, status="pending")
    table = table_of(Subscriber)
    with svc.engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.id.in_([mailed, never]))
            .values(confirmed_at=None, created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
        )
    ledger.claim(svc.engine, issue, [(mailed, "nlp")])
    assert signup.purge_unconfirmed(svc.engine, dt.timedelta(days=30)) == 1
    with svc.engine.connect() as conn:
        left = set(conn.execute(sa.select(table.c.id)).scalars())
    assert left == {mailed}
