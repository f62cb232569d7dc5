"""Sending an issue: who gets which rendering, the mail run, and what the ledger says after.

The issue is rendered whole once and stored (``render_stage``) before the first mail;
readers are grouped by what they get (their categories and language, daily or weekly),
each group's rendering is made once and mailed through the delivery ledger, so a run
killed at any point and run again mails nobody twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from newsletter import weekly
from newsletter.app import Services
from newsletter.collecting import resolve_date
from newsletter.db import utcnow
from newsletter.delivery import dispatch, ledger
from newsletter.delivery.base import Envelope, MailBackend
from newsletter.digest import build_digest, build_weekly_digest, render_stage, render_view
from newsletter.errors import DeliveryError
from newsletter.issues import advance_stage, get_issue, update_issue
from newsletter.models import Digest, ReaderView, RenderedIssue
from newsletter.render import render_empty_day
from newsletter.sources import empty_days
from newsletter.statuses import Cadence, DeliveryStatus, IssueStatus
from subscribers import recipients
from subscribers.tokens import reader_links

log = logging.getLogger(__name__)


@dataclass
class SendReport:
    """What one send did, in counts of readers, and notes for the operator."""

    date: dt.date | None
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: int = 0
    already: int = 0
    dry_run: bool = False
    #: Another process holds this date (see ``locks``); this run did nothing.
    locked: bool = False
    #: Stopped on request (SIGTERM) between chunks; the next run sends to the rest.
    stopped: bool = False
    #: The delivery error that ended the run early (failure budget, refused API key).
    error: str = ""
    groups: int = 0
    #: Readers that can be with the provider at once (batches in flight x batch size):
    #: the most a crash of this run can leave ``unknown``.
    in_flight: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.unknown or self.deferred or self.error)

    def line(self) -> str:
        """The run's one-line summary; ``failed`` counts temporary failures too."""
        return (
            f"sent: {self.sent}, skipped: {self.skipped}, failed: {self.failed + self.deferred}, "
            f"unknown: {self.unknown}"
        )


def list_headers(links: dict[str, str]) -> dict[str, str]:
    """One-click unsubscribe headers (RFC 8058) for a reader's signed links."""
    return {
        "List-Unsubscribe": f"<{links['unsubscribe_url']}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _empty_day(
    svc: Services, date: dt.date, backend: MailBackend, report: SendReport
) -> SendReport:
    """No papers on ``date``: no issue. On an empty day (arXiv announced nothing),
    NEWSLETTER_EMPTY_DAY=note mails every active reader a short note, at most once per
    reader and date (the delivery ledger of the date's ``empty`` issue row).
    """
    if not empty_days.is_empty_day(svc.engine, date):
        report.notes.append(f"no papers were announced on {date}; no issue is sent")
        log.info("no papers stored for %s: nothing to send", date)
        return report
    why = f"arXiv announced no papers on {date} (a weekend or holiday)"
    if svc.settings.empty_day == "skip":
        report.notes.append(
            f"{why}; no issue is sent (NEWSLETTER_EMPTY_DAY=note mails a short note instead)"
        )
        log.info("%s: no issue is sent (NEWSLETTER_EMPTY_DAY=skip)", why)
        return report
    report.notes.append(f"{why}; mailing the short 'no new papers' note")
    log.info("%s: mailing the no-new-papers note (NEWSLETTER_EMPTY_DAY=note)", why)
    issue = get_issue(svc.engine, date)
    assert issue is not None and issue.id is not None
    issue_id = issue.id
    by_language: dict[str, list[tuple[int, str]]] = {}
    for reader in recipients.active_recipients(svc.engine):
        if reader.cadence == Cadence.DAILY:  # a weekly reader's digest comes on an announcement day
            by_language.setdefault(reader.language, []).append((reader.subscriber_id, reader.email))
    report.groups = len(by_language)
    if report.dry_run:
        report.sent = sum(len(readers) for readers in by_language.values())
        return report

    def jobs() -> list[MailJob]:
        return [
            (functools.partial(render_empty_day, date, language), (), readers)
            for language, readers in by_language.items()
        ]

    _mail(svc, issue_id, backend, report, jobs, retry=(DeliveryStatus.DEFERRED,))
    _settle(svc, issue_id, date, report, mark_sent=False)
    return report


#: What one rendering goes to: (render it, its categories, its readers as (id, address)).
MailJob = tuple[Callable[[], RenderedIssue], tuple[str, ...], list[tuple[int, str]]]


def _mail(
    svc: Services,
    issue_id: int,
    backend: MailBackend,
    report: SendReport,
    jobs: Callable[[], list[MailJob]],
    *,
    retry: Sequence[str],
    progress: dispatch.Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Claim, send and record every job's readers inside one registered send run.

    The run lets a later run tell this one's unanswered rows from a live sender's
    (``unknown`` after a crash). ``jobs`` is called after stale rows are marked, so the
    readers it lists reflect the ledger as it now stands.
    """
    with ledger.SendRun(svc.engine, issue_id) as run:
        ledger.mark_stale_unknown(svc.engine, issue_id, run)
        todo = jobs()
        dispatcher = dispatch.Dispatcher(
            ledger.RunLedger(svc.engine, issue_id, run, tuple(retry)),
            backend,
            make_envelope=_envelope_maker(svc, issue_id),
            throttle=dispatch.Throttle(dispatch.rate_for(svc.settings.send_rate, backend)),
            budget=dispatch.FailureBudget(svc.settings.send_max_failure_ratio),
            progress=progress,
            should_stop=should_stop,
            concurrency=dispatch.concurrency_for(svc.settings.send_concurrency, backend),
        )
        report.in_flight = dispatcher.concurrency * backend.max_batch
        if progress:
            progress.start(sum(len(readers) for _, _, readers in todo))
        try:
            with backend, dispatcher:
                for render, categories, readers in todo:
                    if not dispatcher.send(render(), categories, readers):
                        report.stopped = True
                        break
        except DeliveryError as exc:
            report.error = str(exc)
            log.error("sending issue %s stopped: %s", report.date, exc)
        tally = dispatcher.tally
        report.sent, report.failed, report.deferred = tally.sent, tally.failed, tally.deferred
        report.already += tally.already


def _settle(
    svc: Services, issue_id: int, date: dt.date, report: SendReport, *, mark_sent: bool
) -> None:
    """Count what the ledger holds, mark the issue sent when nobody is left, add notes."""
    totals = ledger.counts(svc.engine, issue_id)
    report.unknown = totals.get(DeliveryStatus.UNKNOWN, 0)
    pending = totals.get(DeliveryStatus.SENDING, 0) + totals.get(DeliveryStatus.DEFERRED, 0)
    if report.stopped:
        report.notes.append(f"stopped on request; the next run mails the rest of {date}")
    elif report.error:
        report.notes.append(report.error)
    elif mark_sent and not pending:
        # Rejected readers are final (their address is suppressed): the issue is done.
        update_issue(svc.engine, issue_id, status=IssueStatus.SENT, sent_at=utcnow())
    if report.deferred:
        report.notes.append(
            f"{report.deferred} readers failed temporarily; `newsletter send` retries them"
        )
    if report.unknown:
        report.notes.append(
            f"{report.unknown} readers are unknown (a run was interrupted before the "
            "provider answered; a crash leaves at most the batches in flight, "
            f"NEWSLETTER_SEND_CONCURRENCY x batch size = {report.in_flight or 'n/a'} "
            "readers per run); see `newsletter deliveries --status unknown`, then "
            f"`newsletter send --date {date} --resend-unknown` to mail them again"
        )


def send(
    svc: Services,
    date: dt.date | None,
    backend: MailBackend,
    *,
    dry_run: bool = False,
    resend_unknown: bool = False,
    progress: dispatch.Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SendReport:
    """Mail the issue of ``date`` to every active reader who has not had it yet.

    Readers left ``unknown`` by an interrupted run are mailed again only with
    ``resend_unknown`` (the operator's word). A delivery error that ends the run early
    (the failure budget, a refused API key) is in ``report.error``; readers not yet
    mailed stay unclaimed for the next run.

    ``should_stop`` is asked between chunks (graceful shutdown): when it says yes the
    current chunk has been mailed and recorded, and the issue stays ``sending``.
    """
    if not dry_run:
        svc.settings.require_safe_secret()
    date = resolve_date(svc, date) or empty_days.latest_empty_day(svc.engine)
    report = SendReport(date, dry_run=dry_run)
    if date is None:
        report.notes.append("no announcement without a sent issue; nothing to send")
        return report
    base_digest = build_digest(svc, date)
    if base_digest is None:
        return _empty_day(svc, date, backend, report)
    issue = get_issue(svc.engine, date)
    assert issue is not None and issue.id is not None
    if not dry_run:
        render_stage(svc, base_digest)
        advance_stage(svc.engine, issue.id, IssueStatus.SENDING)
    retry: tuple[DeliveryStatus, ...] = (DeliveryStatus.DEFERRED,)
    if resend_unknown:
        retry += (DeliveryStatus.UNKNOWN,)
    digests: dict[str, Digest] = {base_digest.language: base_digest}
    weekly_digests: dict[str, Digest] = {}

    def rendering(view: ReaderView) -> RenderedIssue:
        if view.language not in digests:
            digest = build_digest(svc, date, view.language)
            assert digest is not None
            digests[view.language] = digest
        return render_view(svc, digests[view.language], view)

    def weekly_rendering(view: ReaderView) -> RenderedIssue:
        if view.language not in weekly_digests:
            digest = build_weekly_digest(svc, date, view.language)
            assert digest is not None
            weekly_digests[view.language] = digest
        return render_view(svc, weekly_digests[view.language], view)

    if dry_run:
        daily, weeklies = _reader_groups(svc, base_digest, issue.id, retry, report)
        for render, groups in ((rendering, daily), (weekly_rendering, weeklies)):
            for view, readers in groups.items():
                render(view)
                report.sent += len(readers)
        return report

    issue_id = issue.id

    def jobs() -> list[MailJob]:
        daily, weeklies = _reader_groups(svc, base_digest, issue_id, retry, report)
        todo: list[MailJob] = [
            (functools.partial(rendering, view), view.categories, readers)
            for view, readers in daily.items()
        ]
        todo += [
            (functools.partial(weekly_rendering, view), view.categories, readers)
            for view, readers in weeklies.items()
        ]
        return todo

    _mail(
        svc,
        issue_id,
        backend,
        report,
        jobs,
        retry=retry,
        progress=progress,
        should_stop=should_stop,
    )
    _settle(svc, issue_id, date, report, mark_sent=True)
    return report


Groups = dict[ReaderView, list[tuple[int, str]]]


def _reader_groups(
    svc: Services,
    digest: Digest,
    issue_id: int,
    retry: Sequence[str],
    report: SendReport,
) -> tuple[Groups, Groups]:
    """Active readers still to mail, grouped by what they get: (categories, language);
    daily readers for the issue of ``digest``, then weekly readers due on its date for
    the weekly digest (see ``newsletter.weekly``).

    Counts the skipped (suppressed, no paper in their categories, weekly readers not
    due today) and those the ledger already settled for this issue into ``report``.
    """
    settled = ledger.settled_ids(svc.engine, issue_id, retry)
    available = set(digest.slugs)
    views: dict[tuple[tuple[str, ...], str], ReaderView | None] = {}
    groups: Groups = {}
    weekly_readers: list[recipients.Recipient] = []
    no_paper = 0
    for reader in recipients.active_recipients(svc.engine):
        if reader.cadence == Cadence.WEEKLY:
            weekly_readers.append(reader)
            continue
        key = (reader.categories, reader.language)
        if key not in views:
            chosen = tuple(s for s in reader.categories if s in available)
            views[key] = ReaderView(svc.taxonomy.order(chosen), reader.language) if chosen else None
        view = views[key]
        if view is None:
            no_paper += 1
        elif reader.subscriber_id in settled:
            report.already += 1
        else:
            groups.setdefault(view, []).append((reader.subscriber_id, reader.email))
    if no_paper:
        log.info("%d readers have no paper in their categories on %s", no_paper, digest.date)
    weekly_groups, weekly_skipped = _weekly_groups(
        svc, digest.date, weekly_readers, settled, report
    )
    report.skipped = no_paper + weekly_skipped + recipients.count_not_mailable(svc.engine)
    report.groups = len(groups) + len(weekly_groups)
    return groups, weekly_groups


def _weekly_groups(
    svc: Services,
    date: dt.date,
    readers: Sequence[recipients.Recipient],
    settled: set[int],
    report: SendReport,
) -> tuple[Groups, int]:
    """Weekly readers due on ``date``, grouped by their view of the week's digest, and
    how many were skipped (not their day, or no paper this week in their categories)."""
    last = ledger.last_mailed(svc.engine, (r.subscriber_id for r in readers), date)
    due: list[recipients.Recipient] = []
    not_today = 0
    for reader in readers:
        if reader.subscriber_id in settled:
            report.already += 1
        elif weekly.is_due(date, reader.weekday, last.get(reader.subscriber_id)):
            due.append(reader)
        else:
            not_today += 1
    if not_today:
        log.info("%d weekly readers are not due on %s (not their day)", not_today, date)
    week = build_weekly_digest(svc, date) if due else None
    if week is None:
        return {}, not_today
    available = set(week.slugs)
    groups: Groups = {}
    no_paper = 0
    for reader in due:
        chosen = tuple(s for s in reader.categories if s in available)
        if not chosen:
            no_paper += 1
            continue
        view = ReaderView(svc.taxonomy.order(chosen), reader.language)
        groups.setdefault(view, []).append((reader.subscriber_id, reader.email))
    return groups, not_today + no_paper


def _envelope_maker(svc: Services, issue_id: int) -> Callable[[int, str], Envelope]:
    """Each reader's envelope: signed links for the placeholders, List-Unsubscribe, ids."""
    base_url, signer, issue = svc.settings.base_url, svc.signer, str(issue_id)

    def make(subscriber_id: int, email: str) -> Envelope:
        links = reader_links(signer, base_url, subscriber_id)
        return Envelope(
            to=email,
            values=links,
            headers=list_headers(links),
            tags={"issue_id": issue, "subscriber_id": str(subscriber_id)},
        )

    return make
