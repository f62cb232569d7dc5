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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from newsletter import audience
from newsletter.app import Services
from newsletter.collecting import resolve_date
from newsletter.db import utcnow
from newsletter.delivery import dispatch, ledger
from newsletter.delivery.base import Envelope, MailBackend
from newsletter.digest import build_digest, build_weekly_digest, render_stage, render_view
from newsletter.errors import DeliveryError
from newsletter.foryou_mail import ForYou
from newsletter.issues import advance_stage, get_issue, update_issue
from newsletter.models import Digest, ReaderView, RenderedIssue
from newsletter.render import render_empty_day
from newsletter.sources import empty_days
from newsletter.statuses import DeliveryStatus, IssueStatus
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
    #: Full renderings (MJML, premailer) this run made: one per group, whatever the
    #: number of readers; each reader's "For you" block is a fragment filled in after.
    renders: int = 0
    #: Readers whose "For you" block was ranked, and who got one.
    for_you_ranked: int = 0
    for_you_blocks: int = 0
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
    counts = audience.Counts()
    retry = (DeliveryStatus.DEFERRED,)
    renderings: dict[str, RenderedIssue] = {}

    def rendering(language: str) -> RenderedIssue:
        if language not in renderings:
            renderings[language] = render_empty_day(date, language)
        return renderings[language]

    if report.dry_run:
        size = max(1, backend.max_batch)
        for _, readers in audience.batches_by_language(svc, issue_id, retry, counts, size):
            report.sent += len(readers)
        report.groups, report.already = len(counts.views), counts.already
        return report

    def jobs() -> Iterator[MailJob]:
        size = max(1, backend.max_batch)
        for language, readers in audience.batches_by_language(svc, issue_id, retry, counts, size):
            yield functools.partial(rendering, language), (), readers

    _mail(svc, issue_id, backend, report, jobs, retry=retry)
    report.groups = len(counts.views)
    report.already += counts.already
    _settle(svc, issue_id, date, report, mark_sent=False)
    return report


#: One batch and its rendering: (render it, its categories, its readers as (id, address)).
MailJob = tuple[Callable[[], RenderedIssue], tuple[str, ...], list[tuple[int, str]]]


def _mail(
    svc: Services,
    issue_id: int,
    backend: MailBackend,
    report: SendReport,
    jobs: Callable[[], Iterator[MailJob]],
    *,
    retry: Sequence[str],
    progress: dispatch.Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    for_you: ForYou | None = None,
) -> None:
    """Claim, send and record every job's readers inside one registered send run.

    The run lets a later run tell this one's unanswered rows from a live sender's
    (``unknown`` after a crash). ``jobs`` is called after stale rows are marked, so the
    readers it streams reflect the ledger as it now stands; the batches of successive
    jobs overlap in the dispatcher (several in flight).
    """
    with ledger.SendRun(svc.engine, issue_id) as run:
        ledger.mark_stale_unknown(svc.engine, issue_id, run)
        todo = jobs()
        book = ledger.RunLedger(svc.engine, issue_id, run, tuple(retry))
        dispatcher = dispatch.Dispatcher(
            book,
            backend,
            make_envelopes=_envelope_maker(svc, issue_id, for_you),
            throttle=dispatch.Throttle(dispatch.rate_for(svc.settings.send_rate, backend)),
            budget=dispatch.FailureBudget(svc.settings.send_max_failure_ratio),
            progress=progress,
            should_stop=should_stop,
            concurrency=dispatch.concurrency_for(svc.settings.send_concurrency, backend),
        )
        report.in_flight = dispatcher.concurrency * backend.max_batch
        if progress:
            progress.start(recipients.count_active(svc.engine))
        try:
            with book, backend, dispatcher:
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
    digests: dict[tuple[str, str], Digest] = {("daily", base_digest.language): base_digest}
    renderings: dict[tuple[str, ReaderView], RenderedIssue] = {}

    def rendering(kind: str, view: ReaderView) -> RenderedIssue:
        """Each view's rendering is made once, whatever number of batches it goes to."""
        if (kind, view) not in renderings:
            report.renders += 1
            key = (kind, view.language)
            if key not in digests:
                build = build_weekly_digest if kind == "weekly" else build_digest
                digest = build(svc, date, view.language)
                assert digest is not None
                digests[key] = digest
            renderings[(kind, view)] = render_view(svc, digests[key], view)
        return renderings[(kind, view)]

    counts = audience.Counts()
    size = max(1, backend.max_batch)
    if dry_run:
        batches = audience.reader_batches(svc, base_digest, issue.id, retry, counts, size)
        for kind, view, readers in batches:
            rendering(kind, view)
            report.sent += len(readers)
        _count(report, counts)
        return report

    issue_id = issue.id

    def jobs() -> Iterator[MailJob]:
        skip = progress.advance if progress else None
        batches = audience.reader_batches(svc, base_digest, issue_id, retry, counts, size, skip)
        for kind, view, readers in batches:
            yield functools.partial(rendering, kind, view), view.categories, readers

    for_you = ForYou(svc, base_digest.sections, date)
    _mail(
        svc,
        issue_id,
        backend,
        report,
        jobs,
        retry=retry,
        progress=progress,
        should_stop=should_stop,
        for_you=for_you,
    )
    report.for_you_ranked, report.for_you_blocks = for_you.ranked, for_you.blocks
    _count(report, counts)
    _settle(svc, issue_id, date, report, mark_sent=True)
    return report


def _count(report: SendReport, counts: audience.Counts) -> None:
    """Add what the reader stream skipped and found settled to ``report``."""
    report.already += counts.already
    report.skipped = counts.skipped
    report.groups = len(counts.views)


def _envelope_maker(svc: Services, issue_id: int, for_you: ForYou | None) -> dispatch.EnvelopeMaker:
    """Each chunk's envelopes: signed links for the placeholders, the reader's "For you"
    block (ranked for the whole chunk at once), List-Unsubscribe, ids."""
    base_url, signer, issue = svc.settings.base_url, svc.signer, str(issue_id)

    def make(
        rendered: RenderedIssue, categories: tuple[str, ...], chunk: Sequence[tuple[int, str]]
    ) -> list[Envelope]:
        links = {sid: reader_links(signer, base_url, sid) for sid, _ in chunk}
        personal = (
            for_you.values(rendered, categories, [(s, links[s]["manage_url"]) for s, _ in chunk])
            if for_you
            else {}
        )
        return [
            Envelope(
                to=email,
                values={**links[sid], **personal.get(sid, {})},
                headers=list_headers(links[sid]),
                tags={"issue_id": issue, "subscriber_id": str(sid)},
            )
            for sid, email in chunk
        ]

    return make
