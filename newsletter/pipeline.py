"""The one orchestrator: collect -> classify -> summarize -> chart -> render -> send.

Each stage's output is stored on the issue row, so a re-run of a date continues
where it stopped and repeats no work; the delivery ledger makes sending resumable.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from newsletter import classify, llm_client, summarize, weekly
from newsletter.app import Services
from newsletter.db import utcnow
from newsletter.delivery import dispatch, ledger
from newsletter.delivery.base import Envelope, MailBackend, MessageBatch
from newsletter.errors import DeliveryError, InvalidInputError, NewsletterError, RenderError
from newsletter.i18n import texts
from newsletter.issues import (
    ensure_issue,
    get_issue,
    interrupted_issues,
    issue_dates,
    newest_issue_before,
    report_from_json,
    report_to_json,
    update_content,
    update_issue,
)
from newsletter.models import CategorySection, Digest, Paper, ReaderView, RenderedIssue
from newsletter.papers import (
    announced_dates,
    has_papers_on,
    papers_between,
    papers_on,
    upsert_papers,
)
from newsletter.render import Links, render_empty_day, render_issue
from newsletter.settings import Settings
from newsletter.sources import empty_days
from newsletter.sources.collect import CollectProgress, CollectReport, collect_all, parse_feed
from newsletter.sources.fetch import Fetcher
from newsletter.statuses import IssueStatus, advance
from subscribers import recipients
from subscribers.readers import add_active
from subscribers.tokens import reader_links

log = logging.getLogger(__name__)


def parse_date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInputError(f"invalid date {text!r}: use YYYY-MM-DD, e.g. 2024-11-22") from exc


# -- collect -----------------------------------------------------------------------------


def collect(
    svc: Services,
    date: dt.date | None = None,
    *,
    fetcher: Fetcher | None = None,
    progress: CollectProgress | None = None,
) -> CollectReport:
    """Fetch every feed and store new papers; record a date arXiv stated with no items.

    ``date`` (``--date``) is the issue date for ``{date}`` URLs; papers are always
    stored under the date their feed states.
    """
    settings = svc.settings
    own = fetcher is None
    active = fetcher or Fetcher(
        settings.fetch_timeout, settings.fetch_attempts, deadline=settings.fetch_deadline
    )
    try:
        report = collect_all(
            svc.engine,
            settings.feeds,
            include_replacements=settings.include_replacements,
            fetcher=active,
            progress=progress,
            run_date=date,
            today=dt.datetime.now(ZoneInfo(settings.timezone)).date(),
        )
    finally:
        if own:
            active.close()
    empty_days.record(svc.engine, empty_days.stated_empty_dates(report))
    if date is not None:
        for source in report.sources:
            if source.announced and source.announced != date:
                log.warning(
                    "%s announces %s, not the requested %s; its papers are stored under %s",
                    source.url,
                    source.announced,
                    date,
                    source.announced,
                )
    return report


def load_sample(svc: Services) -> dt.date:
    """Store the bundled recorded arXiv feed (the demo's offline source); returns its date."""
    from importlib import resources

    content = resources.files("newsletter").joinpath("data/sample-arxiv.xml").read_bytes()
    feed = parse_feed(content, "bundled-sample", svc.settings.include_replacements)
    upsert_papers(svc.engine, feed.papers)
    assert feed.announced is not None
    return feed.announced


def resolve_date(svc: Services, date: dt.date | None) -> dt.date | None:
    """``date`` itself, or the newest announcement that has no completed issue yet.

    Only announcements newer than the newest sent issue count: days missed during an
    outage are not sent late (``--date`` still sends one on purpose).
    """
    if date is not None:
        return date
    done = issue_dates(svc.engine, status="sent")
    newest_done = max(done, default=None)
    return next(
        (
            d
            for d in announced_dates(svc.engine)
            if d not in done and (newest_done is None or d > newest_done)
        ),
        None,
    )


# -- classify, summarize, chart: the digest ------------------------------------------------


def _classify(
    svc: Services, papers: Sequence[Paper], client: llm_client.LLMClient | None
) -> tuple[dict[str, tuple[str, ...]], dict[str, Any]]:
    """The classification and how it was made: answering models, papers left to the rules."""
    made: dict[str, Any] = {"models": [], "rules": len(papers), "papers": len(papers)}
    if client is None:
        return classify.classify_rules(papers, svc.taxonomy), made
    result = classify.classify_llm(papers, svc.taxonomy, client, svc.settings.llm_batch_size)
    made.update(models=list(result.models), rules=result.by_rules)
    return result.classification, made


def _reports(
    svc: Services,
    grouped: dict[str, tuple[Paper, ...]],
    language: str,
    client: llm_client.LLMClient | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each category's report as JSON, and how they were made (models, extractive slugs)."""
    written = summarize.write_reports(grouped, svc.taxonomy, language, client)
    made = {
        "models": sorted({r.made_by for r in written.values() if r.made_by != "extractive"}),
        "extractive": [slug for slug, r in written.items() if r.made_by == "extractive"],
        "categories": len(written),
    }
    return {slug: report_to_json(r) for slug, r in written.items()}, made


def made_with(content: dict[str, Any], language: str) -> str:
    """The footer's credit: the models that wrote the issue, and what fell back to offline.

    E.g. ``openai/x (offline fallback for: classification of 12 papers, report nlp)``.
    """
    made = content.get("made")
    if not made:
        return str(content.get("made_with", "offline"))
    by_rules = made["classification"]
    reports = made["reports"].get(language, {"models": [], "extractive": []})
    names = list(dict.fromkeys([*reports["models"], *by_rules["models"]]))
    if not names and made["llm"]:
        names = [made["llm"]]
    if not names:
        return "offline"
    notes = []
    rules, extractive = by_rules["rules"], reports["extractive"]
    if rules:
        everything = rules == by_rules.get("papers")
        notes.append("classification" if everything else f"classification of {rules} papers")
    if len(extractive) == 1:
        notes.append(f"report {extractive[0]}")
    elif extractive:
        everything = len(extractive) == reports.get("categories")
        notes.append("all reports" if everything else f"{len(extractive)} reports")
    credit = " + ".join(names)
    return f"{credit} (offline fallback for: {', '.join(notes)})" if notes else credit


def _chart(svc: Services, grouped: dict[str, tuple[Paper, ...]], language: str) -> bytes:
    from newsletter.chart import render_chart

    counts = [
        (svc.taxonomy.get(slug).name(language), len(papers), svc.taxonomy.get(slug).color)
        for slug, papers in grouped.items()
    ]
    return render_chart(counts, texts(language)["chart_title"])


def build_digest(svc: Services, date: dt.date, language: str | None = None) -> Digest | None:
    """The digest of ``date`` in ``language``, computing and storing only missing stages.

    Returns None when nothing was announced on ``date``.
    """
    language = language or svc.settings.language
    if not has_papers_on(svc.engine, date):
        return None
    issue = ensure_issue(svc.engine, date)
    assert issue.id is not None
    content: dict[str, Any] = json.loads(issue.content or "{}")
    after = _window(svc, date, content)
    papers = papers_between(svc.engine, after, date)
    client = llm_client.client_for(svc.settings, svc.engine, date)
    if "classification" not in content:
        classification, made = _classify(svc, papers, client)

        def add_classification(stored: dict[str, Any]) -> None:
            if "classification" in stored:  # another process got there first: keep theirs
                return
            stored["window_after"] = after.isoformat()
            stored["classification"] = {k: list(v) for k, v in classification.items()}
            stored["made"] = {"llm": svc.settings.llm_model, "classification": made, "reports": {}}
            stored["made_with"] = made_with(stored, svc.settings.language)

        # Stored at once: a restart after a crash in the reports keeps the classification.
        content = update_content(
            svc.engine,
            issue.id,
            add_classification,
            status=advance(issue.status, IssueStatus.CLASSIFIED),
            paper_count=len(papers),
        )
        if (theirs := _window(svc, date, content)) != after:  # another process was first
            after = theirs
            papers = papers_between(svc.engine, after, date)
    grouped = classify.group(
        papers, {k: tuple(v) for k, v in content["classification"].items()}, svc.taxonomy
    )
    if language not in content.get("reports", {}) or language not in content.get("charts", {}):
        # Only what is missing is computed: reports cost LLM calls, the chart does not.
        reports, made = (
            _reports(svc, grouped, language, client)
            if language not in content.get("reports", {})
            else ({}, {})
        )
        chart = base64.b64encode(_chart(svc, grouped, language)).decode("ascii")

        def add_language(stored: dict[str, Any]) -> None:
            if language not in stored.setdefault("reports", {}):
                stored["reports"][language] = reports
                if "made" in stored:
                    stored["made"]["reports"][language] = made
                    stored["made_with"] = made_with(stored, svc.settings.language)
            stored.setdefault("charts", {}).setdefault(language, chart)

        content = update_content(
            svc.engine,
            issue.id,
            add_language,
            paper_count=len(papers),
        )
        current = get_issue(svc.engine, date)
        assert current is not None
        update_issue(
            svc.engine,
            issue.id,
            status=advance(current.status, IssueStatus.SUMMARIZED),
            made_with=content["made_with"],
        )
    reports = content["reports"]
    charts = content["charts"]
    sections = tuple(
        CategorySection(slug, members, report_from_json(reports[language][slug]))
        for slug, members in grouped.items()
        if slug in reports[language]
    )
    return Digest(
        date=date,
        language=language,
        sections=sections,
        chart_png=base64.b64decode(charts[language]),
        made_with=made_with(content, language),
        paper_count=len(papers),
        covers_from=first if (first := min(p.announced for p in papers)) < date else None,
    )


#: The most days one daily issue reaches back for announcements that had no issue.
CATCH_UP_DAYS = 7


def window_after(svc: Services, date: dt.date) -> dt.date:
    """The issue of ``date`` carries the papers announced after this day.

    Normally the day before. After an outage it is the last issue that went out (or
    began to), so the papers of the days in between, which never had an issue, are not
    lost; but never more than ``CATCH_UP_DAYS`` back. The first issue ever starts fresh.
    """
    previous = newest_issue_before(svc.engine, date, ("sending", "sent"))
    if previous is None:
        return date - dt.timedelta(days=1)
    return max(previous, date - dt.timedelta(days=CATCH_UP_DAYS))


def issue_window(svc: Services, date: dt.date) -> dt.date:
    """The issue of ``date`` carries papers announced after this day (see ``window_after``)."""
    issue = get_issue(svc.engine, date)
    return _window(svc, date, json.loads(issue.content or "{}") if issue else {})


def _window(svc: Services, date: dt.date, content: dict[str, Any]) -> dt.date:
    """The window an issue was classified with, or a new one for an unclassified issue.

    Issues classified before windows were stored held their own day only.
    """
    if "window_after" in content:
        return dt.date.fromisoformat(content["window_after"])
    if "classification" in content:
        return date - dt.timedelta(days=1)
    return window_after(svc, date)


def build_weekly_digest(svc: Services, date: dt.date, language: str | None = None) -> Digest | None:
    """The weekly digest sent on ``date``: the papers announced in the seven days ending
    on ``date``, in ``language``; None when none were.

    Each day's stored classification is reused (the others are classified now), and
    the week's classification, reports and chart are stored under ``"weekly"`` in the
    issue of ``date``, so a re-run of the date costs nothing.
    """
    language = language or svc.settings.language
    start = weekly.period_start(date)
    days = [start + dt.timedelta(days=n) for n in range(weekly.WEEK)]
    by_id: dict[str, Paper] = {}
    for day in days:
        by_id.update((p.arxiv_id, p) for p in papers_on(svc.engine, day))
    papers = list(by_id.values())
    if not papers:
        return None
    issue = ensure_issue(svc.engine, date)
    assert issue.id is not None
    week: dict[str, Any] = json.loads(issue.content or "{}").get("weekly", {})
    client = llm_client.client_for(svc.settings, svc.engine, date)
    if "classification" not in week:
        known, missing = _stored_classifications(svc, days, by_id)
        classification, made = (
            _classify(svc, missing, client)
            if missing
            else ({}, {"models": [], "rules": 0, "papers": 0})
        )
        known.update((k, list(v)) for k, v in classification.items())

        def add_classification(stored: dict[str, Any]) -> None:
            mine = stored.setdefault("weekly", {})
            if "classification" not in mine:  # another process got there first: keep theirs
                mine["classification"] = known
                mine["made"] = {"llm": svc.settings.llm_model, "classification": made}
                mine["made"]["reports"] = {}

        week = update_content(svc.engine, issue.id, add_classification)["weekly"]
    grouped = classify.group(
        papers, {k: tuple(v) for k, v in week["classification"].items()}, svc.taxonomy
    )
    if language not in week.get("reports", {}) or language not in week.get("charts", {}):
        reports, made = _reports(svc, grouped, language, client)
        chart = base64.b64encode(_chart(svc, grouped, language)).decode("ascii")

        def add_language(stored: dict[str, Any]) -> None:
            mine = stored["weekly"]
            if language not in mine.setdefault("reports", {}):
                mine["reports"][language] = reports
                mine["made"]["reports"][language] = made
            mine.setdefault("charts", {}).setdefault(language, chart)

        week = update_content(svc.engine, issue.id, add_language)["weekly"]
    reports = week["reports"][language]
    return Digest(
        date=date,
        language=language,
        sections=tuple(
            CategorySection(slug, members, report_from_json(reports[slug]))
            for slug, members in grouped.items()
            if slug in reports
        ),
        chart_png=base64.b64decode(week["charts"][language]),
        made_with=made_with(week, language),
        paper_count=len(papers),
        period_start=start,
    )


def _stored_classifications(
    svc: Services, days: Sequence[dt.date], papers: dict[str, Paper]
) -> tuple[dict[str, list[str]], list[Paper]]:
    """The week's papers' categories as their days' issues stored them, and the papers
    no stored classification covers."""
    known: dict[str, list[str]] = {}
    for day in days:
        issue = get_issue(svc.engine, day)
        stored = json.loads(issue.content or "{}").get("classification", {}) if issue else {}
        known.update((k, v) for k, v in stored.items() if k in papers)
    return known, [p for k, p in papers.items() if k not in known]


def render_view(svc: Services, digest: Digest, view: ReaderView) -> RenderedIssue:
    """The rendering for ``view``; with chart_mode "hosted" the chart is the archive's PNG
    (in the digest's language: the archive takes ``?lang=`` for a non-default one)."""
    from urllib.parse import quote

    archive = svc.archive_url(digest.date)
    chart_url = ""
    # The archive serves each day's chart only: a weekly digest keeps its chart inline.
    if svc.settings.chart_mode == "hosted" and digest.period_start is None:
        chart_url = f"{archive}/chart.png"
        if digest.language != svc.settings.language:
            chart_url += f"?lang={quote(digest.language)}"
    return render_issue(digest, view, svc.taxonomy, Links(archive, chart_url=chart_url))


def render_stage(svc: Services, digest: Digest) -> None:
    """Render the whole issue once and store it (status ``rendered``) before any mail goes out.

    A template error then stops the run before the first reader is mailed, and the
    stored page (``content["rendered"][language]``: subject, html, text with the
    link placeholders) is what the archive can serve.
    """
    issue = get_issue(svc.engine, digest.date)
    assert issue is not None and issue.id is not None
    content: dict[str, Any] = json.loads(issue.content or "{}")
    if digest.language not in content.get("rendered", {}):
        full = render_view(svc, digest, ReaderView(digest.slugs, digest.language))
        page = {"subject": full.subject, "html": full.html, "text": full.text}
        update_content(
            svc.engine,
            issue.id,
            lambda stored: stored.setdefault("rendered", {}).setdefault(digest.language, page),
        )
    update_issue(svc.engine, issue.id, status=advance(issue.status, IssueStatus.RENDERED))


# -- send ------------------------------------------------------------------------------------


@dataclass
class SendReport:
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


def _list_headers(links: dict[str, str]) -> dict[str, str]:
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
        if reader.cadence == "daily":  # a weekly reader's digest comes on an announcement day
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

    _mail(svc, issue_id, backend, report, jobs, retry=("deferred",))
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
        )
        if progress:
            progress.start(sum(len(readers) for _, _, readers in todo))
        try:
            with backend:
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
    report.unknown = totals.get("unknown", 0)
    pending = totals.get("sending", 0) + totals.get("deferred", 0)
    if report.stopped:
        report.notes.append(f"stopped on request; the next run mails the rest of {date}")
    elif report.error:
        report.notes.append(report.error)
    elif mark_sent and not pending:
        # Rejected readers are final (their address is suppressed): the issue is done.
        update_issue(svc.engine, issue_id, status="sent", sent_at=utcnow())
    if report.deferred:
        report.notes.append(
            f"{report.deferred} readers failed temporarily; `newsletter send` retries them"
        )
    if report.unknown:
        report.notes.append(
            f"{report.unknown} readers are unknown (a run was interrupted before the "
            "provider answered); see `newsletter deliveries --status unknown`, then "
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
        update_issue(svc.engine, issue.id, status=advance(issue.status, IssueStatus.SENDING))
    retry = ("deferred", "unknown") if resend_unknown else ("deferred",)
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
        if reader.cadence == "weekly":
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
    report.skipped = no_paper + weekly_skipped + _not_mailable(svc.engine)
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


def _not_mailable(engine: Engine) -> int:
    """Readers who said no, whose address is dead, or who paused: skipped by every send."""
    import sqlalchemy as sa

    from newsletter.statuses import SUPPRESSED
    from subscribers.models import Subscriber

    table = Subscriber.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(table.c.status.in_([*SUPPRESSED, "paused"]))
        return int(conn.execute(query).scalar_one())


def _envelope_maker(svc: Services, issue_id: int) -> Callable[[int, str], Envelope]:
    """Each reader's envelope: signed links for the placeholders, List-Unsubscribe, ids."""
    base_url, signer, issue = svc.settings.base_url, svc.signer, str(issue_id)

    def make(subscriber_id: int, email: str) -> Envelope:
        links = reader_links(signer, base_url, subscriber_id)
        return Envelope(
            to=email,
            values=links,
            headers=_list_headers(links),
            tags={"issue_id": issue, "subscriber_id": str(subscriber_id)},
        )

    return make


def run_once(
    svc: Services,
    date: dt.date | None,
    backend: MailBackend,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[CollectReport, SendReport]:
    """Collect, then prepare and send: idempotent per date, one process per date.

    The date's lock (``locks.date_lock``) makes a second scheduler or a cron-driven
    ``run-once`` on the same database skip the date instead of racing for it.

    Without ``date``, an issue whose send was cut off (a crash, a kill) and that a newer
    announcement has since overtaken is finished first, so its remaining readers still get
    it; the newer issue then carries only the papers announced after it.
    """
    collected = collect(svc, date)
    target = resolve_date(svc, date)
    if target is None:
        return collected, send(svc, target, backend, should_stop=should_stop)
    finished: list[str] = []
    if date is None:
        newest_sent = newest_issue_before(svc.engine, target, ("sent",))
        since = target - dt.timedelta(days=CATCH_UP_DAYS)
        if newest_sent is not None:
            since = max(since, newest_sent + dt.timedelta(days=1))
        for day in interrupted_issues(svc.engine, since, target):
            earlier = _send_held(svc, day, backend, should_stop)
            log.info("finished the interrupted issue of %s: %s", day, earlier.line())
            if earlier.stopped:
                return collected, earlier
            finished.append(f"finished the interrupted issue of {day} ({earlier.line()})")
    report = _send_held(svc, target, backend, should_stop)
    report.notes[:0] = finished
    return collected, report


def _send_held(
    svc: Services,
    date: dt.date,
    backend: MailBackend,
    should_stop: Callable[[], bool] | None,
) -> SendReport:
    """``send`` under the date's lock; a report marked ``locked`` when another process has it."""
    from newsletter.locks import date_lock

    with date_lock(svc.engine, date) as held:
        if not held:
            log.info("another process holds the issue of %s; skipping it", date)
            report = SendReport(date, locked=True)
            report.notes.append(f"another process is preparing or sending {date}; skipped")
            return report
        return send(svc, date, backend, should_stop=should_stop)


# -- preview and demo ----------------------------------------------------------------------


def preview(
    svc: Services,
    date: dt.date | None,
    out_dir: Path,
    categories: Sequence[str] | None = None,
    language: str | None = None,
    *,
    collect_if_empty: bool = True,
) -> list[Path]:
    """Write what a reader of these categories and language would get, without sending."""
    from newsletter.delivery.file import write_atomic
    from newsletter.delivery.mime import build_mime

    language = language or svc.settings.language
    wanted = svc.taxonomy.validate(categories) if categories else svc.taxonomy.slugs
    date = resolve_date(svc, date)
    if (date is None or not has_papers_on(svc.engine, date)) and collect_if_empty:
        collect(svc, date)
        date = resolve_date(svc, date)
    if date is None:
        raise NewsletterError("no papers are stored yet; run `newsletter collect` first")
    digest = build_digest(svc, date, language)
    if digest is None:
        raise NewsletterError(f"no papers were announced on {date}; try another --date")
    view = ReaderView(svc.taxonomy.order([s for s in wanted if s in digest.slugs]), language)
    if not view.categories:
        raise RenderError(
            f"none of {', '.join(wanted)} has papers on {date}; that reader gets no e-mail today"
        )
    rendered = render_view(svc, digest, view)
    suffix = f"-{'-'.join(wanted)}" if categories else ""
    stem = f"issue-{date.isoformat()}{suffix}"
    # The .html file sits beside the chart PNG, so a browser shows it without the cid: part.
    for_browser = render_issue(
        digest,
        view,
        svc.taxonomy,
        Links(archive_url=svc.archive_url(date), chart_url=f"{stem}.png"),
    )
    sample_links = {
        "manage_url": f"{svc.settings.base_url}/manage/PREVIEW",
        "unsubscribe_url": f"{svc.settings.base_url}/unsubscribe/PREVIEW",
    }
    html, text = for_browser.personalize(sample_links)
    out_dir.mkdir(parents=True, exist_ok=True)
    envelope = Envelope("reader@example.com", sample_links, _list_headers(sample_links))
    eml = build_mime(
        MessageBatch(rendered, (envelope,)),
        envelope,
        svc.settings.from_email,
        svc.settings.from_name,
    )
    outputs = {
        out_dir / f"{stem}.html": html.encode("utf-8"),
        out_dir / f"{stem}.txt": text.encode("utf-8"),
        out_dir / f"{stem}.png": digest.chart_png,
        out_dir / f"{stem}.eml": eml.as_bytes(),
    }
    for path, data in outputs.items():
        write_atomic(path, data)
    return list(outputs)


@dataclass(frozen=True)
class DemoResult:
    date: dt.date
    files: list[Path]
    report: SendReport


def demo(out_dir: Path, settings: Settings | None = None) -> DemoResult:
    """Every stage on the bundled sample, in a throwaway database; the configured model
    (NEWSLETTER_LLM_MODEL) classifies and writes when one is set, else offline."""
    from newsletter.delivery.memory import MemoryBackend

    workdir = Path(tempfile.mkdtemp(prefix="newsletter-demo-"))
    try:
        base = settings or Settings()
        demo_settings = base.model_copy(
            update={
                "database_url": f"sqlite:///{workdir / 'demo.db'}",
                "mail_backend": "memory",
            }
        )
        svc = Services.build(demo_settings)
        date = load_sample(svc)
        add_active(
            svc.engine,
            svc.taxonomy,
            "reader@example.com",
            None,
            demo_settings.language,
            source="demo",
        )
        files = preview(svc, date, out_dir, collect_if_empty=False)
        backend = MemoryBackend(demo_settings.from_email, demo_settings.from_name)
        report = send(svc, date, backend, dry_run=False)
        if backend.outbox:
            from newsletter.delivery.file import write_atomic

            eml = out_dir / f"issue-{date.isoformat()}.eml"
            write_atomic(eml, backend.outbox[0].as_bytes())
        svc.engine.dispose()
        return DemoResult(date, files, report)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
