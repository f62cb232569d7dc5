"""``newsletter send`` killed with SIGKILL at several points, and two senders racing.

The sender is a real subprocess (the installed CLI) mailing 2,000 readers through
the SendGrid double, which records every recipient it accepted. The double's hooks
hold a request at an exact point while the test kills the sender:

1. the request arrived, nothing accepted yet (the readers were claimed);
2. the mail was accepted, the answer not yet sent (SendGrid took it, we never knew);
3. the answer was sent (the sender may or may not have recorded it).

After a final complete run, every reader got the issue exactly once, or is
``unknown`` and got it at most once; nobody got it twice, nobody was forgotten.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from newsletter.app import Services
from newsletter.delivery import ledger
from newsletter.issues import get_issue
from tests.delivery.conftest import ONLY_POSTGRESQL, SAMPLE_DATE, SECRET, add_readers
from tests.fakes.sendgrid_double import API_KEY, SendGridDouble

ROOT = Path(__file__).resolve().parents[2]
READERS = 2000
SETS = (("nlp", "llm"),)  # one rendering: the run's time goes to sending, not to rendering
BATCH = 500  # four requests per complete run
LINE = re.compile(r"^sent: \d+, skipped: \d+, failed: \d+, unknown: \d+$")


def sender_env(svc: Services, double: SendGridDouble, concurrency: int = 1) -> dict[str, str]:
    """The sender's environment; one batch in flight unless ``concurrency`` says more."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        {
            "NEWSLETTER_DATABASE_URL": svc.settings.database_url,
            "NEWSLETTER_MAIL_BACKEND": "sendgrid",
            "NEWSLETTER_SENDGRID_API_KEY": API_KEY,
            "NEWSLETTER_SENDGRID_HOST": double.url,
            "NEWSLETTER_SENDGRID_BATCH_SIZE": str(BATCH),
            "NEWSLETTER_SEND_CONCURRENCY": str(concurrency),
            "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_BASE_URL": "https://news.example.org",
            "NEWSLETTER_FROM_EMAIL": "news@example.org",
            "NEWSLETTER_FEEDS": "[]",
            "NEWSLETTER_LLM_MODEL": "",
            "NEWSLETTER_LANGUAGE": "en",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "HF_HUB_OFFLINE": "1",
        }
    )
    return env


def start_sender(env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter.cli", "send", "--date", SAMPLE_DATE.isoformat(), *extra],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_at(
    double: SendGridDouble, hook: str, env: dict[str, str], held: tuple[int, ...] = (1,)
) -> None:
    """Start a sender and SIGKILL it once its requests number ``held`` (counted from 1 in
    this run) all reached ``hook``; they are held there (except after the answer)."""
    targets = {double.arrived + n for n in held}
    reached, release = threading.Event(), threading.Event()
    lock = threading.Lock()

    def hold(number: int) -> None:
        if number in targets:
            with lock:
                targets.discard(number)
                if not targets:
                    reached.set()
            if hook != "after_answer":
                release.wait(30)

    setattr(double, hook, hold)
    sender = start_sender(env)
    try:
        assert reached.wait(60), f"the sender never reached {hook}: {sender.communicate()}"
        sender.send_signal(signal.SIGKILL)
        assert sender.wait(30) == -signal.SIGKILL
    finally:
        setattr(double, hook, None)
        release.set()
        if sender.poll() is None:
            sender.kill()
            sender.wait()
        sender.communicate()


def ledger_status(svc: Services) -> dict[str, str]:
    issue = get_issue(svc.engine, SAMPLE_DATE)
    assert issue is not None and issue.id is not None
    return {r.email: r.status for r in ledger.list_deliveries(svc.engine, issue.id)}


def run_to_end(env: dict[str, str], *extra: str) -> tuple[int, str]:
    sender = start_sender(env, *extra)
    out, err = sender.communicate(timeout=120)
    lines = out.splitlines()
    assert len(lines) == 1 and LINE.match(lines[0]), (out, err)
    return sender.returncode, lines[0]


def test_kill_9_at_any_point_mails_nobody_twice(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, READERS, SETS)
    sendgrid.keep_bodies = False  # only who got it matters here
    env = sender_env(svc, sendgrid)
    # PostgreSQL skips the first point: like the second, it leaves claimed rows of a dead
    # process, and each point costs a whole sender start-up.
    hooks = ["on_request", "on_accept", "after_answer"]
    if svc.engine.dialect.name == "postgresql":
        hooks.remove("on_request")
    for hook in hooks:
        kill_at(sendgrid, hook, env)
    code, line = run_to_end(env)
    status = ledger_status(svc)
    got = sendgrid.recipients
    assert len(status) == READERS  # nobody forgotten
    assert max(got.values()) == 1  # nobody twice
    for address, state in status.items():
        assert state in ("sent", "unknown"), (address, state)
        if state == "sent":
            assert got[address] == 1
    unknown = [a for a, s in status.items() if s == "unknown"]
    # Kills before an answer each left one whole request's readers unknown; the kill
    # after an answer maybe one more.
    before_answer = len(hooks) - 1
    assert len(unknown) in (before_answer * BATCH, (before_answer + 1) * BATCH)
    assert sum(1 for a in unknown if got[a]) >= BATCH  # kill 2: accepted, answer lost
    assert code == 1 and line.endswith(f"unknown: {len(unknown)}")


@ONLY_POSTGRESQL  # two processes sending at once is a PostgreSQL deployment
def test_two_senders_racing_mail_each_reader_once(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, READERS, SETS)
    sendgrid.keep_bodies = False
    env = sender_env(svc, sendgrid)
    both = threading.Barrier(2, timeout=60)

    def slow(number: int) -> None:
        if number <= 2:  # the first request of each sender waits for the other's
            both.wait()

    sendgrid.on_request = slow
    senders = [start_sender(env), start_sender(env)]
    outputs = [s.communicate(timeout=120) for s in senders]
    assert [s.returncode for s in senders] == [0, 0], outputs
    sent = [int(out.split(",")[0].split()[1]) for out, _ in outputs]
    assert sum(sent) == READERS and all(sent)  # both worked, on different readers
    assert len(sendgrid.recipients) == READERS and max(sendgrid.recipients.values()) == 1
    assert set(ledger_status(svc).values()) == {"sent"}


def test_a_kill_with_several_batches_in_flight_leaves_only_those_unknown(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, READERS, SETS)
    sendgrid.keep_bodies = False
    env = sender_env(svc, sendgrid, concurrency=3)
    # The first request is answered; the next three are all with the provider at once
    # (accepted, answers held) when the sender is killed.
    kill_at(sendgrid, "on_accept", env, held=(2, 3, 4))
    code, line = run_to_end(env)
    status = ledger_status(svc)
    unknown = {a for a, s in status.items() if s == "unknown"}
    assert len(status) == READERS and set(status.values()) == {"sent", "unknown"}
    assert 0 < len(unknown) <= 3 * BATCH  # at most the batches in flight
    assert max(sendgrid.recipients.values()) == 1  # nobody twice
    assert code == 1 and line.endswith(f"unknown: {len(unknown)}")
    before = dict(sendgrid.recipients)
    code, line = run_to_end(env, "--resend-unknown")
    resent = {a for a, n in sendgrid.recipients.items() if n > before.get(a, 0)}
    assert resent == unknown  # exactly the unknown readers, nobody else
    assert code == 0 and set(ledger_status(svc).values()) == {"sent"}


def test_a_kill_while_waiting_on_the_send_rate_leaves_no_waiting_reader_unknown(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    add_readers(svc, READERS, SETS)
    sendgrid.keep_bodies = False
    env = sender_env(svc, sendgrid) | {"NEWSLETTER_SEND_RATE": "200"}  # batches of 200
    kill_at(sendgrid, "on_accept", env, held=(2,))
    issue = get_issue(svc.engine, SAMPLE_DATE)
    assert issue is not None and issue.id is not None
    ledger.mark_stale_unknown(svc.engine, issue.id)
    status = ledger_status(svc)
    unknown = [a for a, s in status.items() if s == "unknown"]
    # Only the batch the provider holds is unknown: the readers after it waited on the
    # rate limiter unclaimed, so the next run mails them without --resend-unknown.
    assert len(unknown) == 200
    assert all(sendgrid.recipients[a] == 1 for a in unknown)
    assert len(status) == 400 and sum(1 for s in status.values() if s == "sent") == 200
