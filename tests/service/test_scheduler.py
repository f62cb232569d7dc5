"""The schedule: crontab in an IANA zone, DST-correct, and bad settings refused at start."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from newsletter.cli import main
from newsletter.errors import ConfigurationError
from newsletter.scheduler import DailyScheduler, last_fire_time, parse_trigger
from tests.service.conftest import cli_env, newsletter_cmd

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def fire_times(schedule: str, zone: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    trigger = parse_trigger(schedule, zone)
    fires: list[dt.datetime] = []
    previous = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        fires.append(fire)
        previous, now = fire, fire + dt.timedelta(seconds=1)
    return fires


@pytest.mark.parametrize(
    "other_zone, change",
    [
        (NEW_YORK, dt.datetime(2025, 3, 9, 12, tzinfo=NEW_YORK)),  # spring forward
        (NEW_YORK, dt.datetime(2025, 11, 2, 12, tzinfo=NEW_YORK)),  # fall back
        (BERLIN, dt.datetime(2025, 3, 30, 12, tzinfo=BERLIN)),
    ],
)
def test_daily_0700_seoul_across_dst_change_elsewhere(
    other_zone: ZoneInfo, change: dt.datetime
) -> None:
    fires = fire_times("0 7 * * *", "Asia/Seoul", change - dt.timedelta(days=3), 7)
    assert all(f.astimezone(SEOUL).time() == dt.time(7, 0) for f in fires)
    days = [f.astimezone(SEOUL).date() for f in fires]
    assert days == [days[0] + dt.timedelta(days=i) for i in range(7)]
    # Exactly 24 h apart in absolute time, though the other zone's wall clock shifts by an hour.
    assert {b - a for a, b in itertools.pairwise(fires)} == {dt.timedelta(hours=24)}
    assert len({f.astimezone(other_zone).hour for f in fires}) == 2


def test_schedule_in_a_dst_zone_keeps_local_time() -> None:
    fires = fire_times("0 7 * * *", "America/New_York", dt.datetime(2025, 3, 7, tzinfo=NEW_YORK), 4)
    assert [f.astimezone(NEW_YORK).hour for f in fires] == [7, 7, 7, 7]
    assert {f.utcoffset() for f in fires} == {dt.timedelta(hours=-5), dt.timedelta(hours=-4)}


def test_weekday_schedule() -> None:
    fires = fire_times("30 6 * * mon-fri", "Asia/Seoul", dt.datetime(2025, 3, 7, tzinfo=SEOUL), 3)
    assert [f.strftime("%a %H:%M") for f in fires] == ["Fri 06:30", "Mon 06:30", "Tue 06:30"]


def test_last_fire_time_within_the_window() -> None:
    trigger = parse_trigger("0 7 * * *", "Asia/Seoul")
    nine = dt.datetime(2025, 3, 10, 9, 0, tzinfo=SEOUL)
    assert last_fire_time(trigger, nine, dt.timedelta(hours=12)) == dt.datetime(
        2025, 3, 10, 7, 0, tzinfo=SEOUL
    )
    assert last_fire_time(trigger, nine, dt.timedelta(hours=1)) is None
    six = dt.datetime(2025, 3, 10, 6, 0, tzinfo=SEOUL)
    assert last_fire_time(trigger, six, dt.timedelta(hours=12)) is None
    assert last_fire_time(trigger, six, dt.timedelta(hours=24)) == dt.datetime(
        2025, 3, 9, 7, 0, tzinfo=SEOUL
    )


@pytest.mark.parametrize(
    "schedule, zone, message",
    [
        ("0 7 * *", "Asia/Seoul", "NEWSLETTER_SCHEDULE='0 7 * *' is not a crontab expression"),
        ("61 7 * * *", "Asia/Seoul", "NEWSLETTER_SCHEDULE='61 7 * * *' is not a crontab"),
        ("0 7 * * *", "Mars/Olympus", "NEWSLETTER_TIMEZONE='Mars/Olympus' is not an IANA"),
    ],
)
def test_bad_schedule_or_zone_is_a_configuration_error(
    schedule: str, zone: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match="^" + message.replace("*", r"\*")):
        parse_trigger(schedule, zone)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"NEWSLETTER_SCHEDULE": "every morning"}, "NEWSLETTER_SCHEDULE='every morning'"),
        ({"NEWSLETTER_TIMEZONE": "Seoul"}, "NEWSLETTER_TIMEZONE"),
    ],
)
def test_start_refuses_bad_schedule_with_exit_2(
    env: dict[str, str],
    message: str,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", sqlite_url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["start", "--no-web"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    # Refused before touching anything: no database file was even created.
    assert not (tmp_path / "test.db").exists()


def test_start_refuses_bad_schedule_in_a_real_process(sqlite_url: str, tmp_path: Path) -> None:
    env = cli_env(sqlite_url, tmp_path, NEWSLETTER_SCHEDULE="0 25 * * *")
    done = subprocess.run(
        newsletter_cmd("start", "--no-web"), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: NEWSLETTER_SCHEDULE='0 25 * * *' is not a crontab")
    assert done.stderr.count("\n") == 1


def test_real_scheduler_fires_at_0700_seoul_on_a_controlled_clock(database_url: str) -> None:
    """A BackgroundScheduler with the database job store, the clock moved to 06:59:59 KST.

    The day after New York's spring-forward, so the machine's other zone has just shifted.
    """
    from newsletter.db import make_engine

    engine = make_engine(database_url)
    fired: list[tuple[str, dt.datetime | None, dt.datetime]] = []
    done = threading.Event()

    def job(label: str, scheduled_for: dt.datetime | None) -> None:
        fired.append((label, scheduled_for, dt.datetime.now(SEOUL)))
        done.set()

    start = dt.datetime(2025, 3, 10, 6, 59, 59, 500000, tzinfo=SEOUL)
    with time_machine.travel(start, tick=True):
        sched = DailyScheduler(
            engine, "0 7 * * *", "Asia/Seoul", job, misfire_grace=dt.timedelta(hours=12)
        )
        sched.start()
        try:
            assert sched.next_run_time() == dt.datetime(2025, 3, 10, 7, 0, tzinfo=SEOUL)
            assert done.wait(15), "the job did not fire"
            assert sched.next_run_time() == dt.datetime(2025, 3, 11, 7, 0, tzinfo=SEOUL)
        finally:
            sched.shutdown()
    import sqlalchemy as sa

    with engine.connect() as conn:  # the job lives in the database's job store
        assert conn.execute(sa.text("SELECT id FROM apscheduler_jobs")).scalars().all() == [
            "daily-issue"
        ]
    engine.dispose()
    [(label, scheduled_for, at)] = fired
    assert label == "schedule"
    assert scheduled_for == dt.datetime(2025, 3, 10, 7, 0, tzinfo=SEOUL)
    assert at >= dt.datetime(2025, 3, 10, 7, 0, tzinfo=SEOUL)
