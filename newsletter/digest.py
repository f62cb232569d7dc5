"""Digests: papers classified, summarized per category, charted and rendered, each stage
stored once on the issue row.

One builder serves both digests of a date. A ``_Scope`` says what differs: which papers
(the daily issue's window, or the seven days of the weekly digest), where their stages
are stored (the issue's content, or its ``weekly`` part) and how a missing
classification is made (the weekly one reuses what each day's issue stored). Stages
already stored are read, not recomputed, so a re-run of a date repeats no work and a
restart after a crash keeps what was done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from newsletter import classify, llm_client, summarize, weekly
from newsletter.app import Services
from newsletter.collecting import window_after
from newsletter.i18n import texts
from newsletter.issue_state import (
    EXTRACTIVE,
    ClassificationProvenance,
    DigestState,
    IssueContent,
    Provenance,
    QualificationNote,
    Rendering,
    ReportsProvenance,
    made_with,
    rules_provenance,
)
from newsletter.issues import advance_stage, ensure_issue, get_issue, update_content
from newsletter.models import (
    CategoryReport,
    CategorySection,
    Digest,
    Paper,
    ReaderView,
    RenderedIssue,
)
from newsletter.papers import has_papers_on, papers_between, papers_on
from newsletter.render import Links, render_issue
from newsletter.statuses import IssueStatus, advance

Classification = dict[str, tuple[str, ...]]
Grouped = dict[str, tuple[Paper, ...]]


@dataclass
class _Scope:
    """What one digest covers and where its stages are stored."""

    date: dt.date
    papers: list[Paper]
    #: Makes the classification when none is stored yet.
    classify: Callable[[], tuple[Classification, ClassificationProvenance]]
    weekly: bool = False
    #: The daily issue's window, stored with its classification.
    window_after: dt.date | None = None
    #: Other columns written with the classification (the daily issue's status and count).
    classified_values: dict[str, object] = field(default_factory=dict)

    def part(self, content: IssueContent) -> DigestState:
        return content.weekly_state() if self.weekly else content


def classify_papers(
    svc: Services, papers: Sequence[Paper], client: llm_client.LLMClient | None
) -> tuple[Classification, ClassificationProvenance]:
    """The classification, and how it was made: answering models, papers left to the rules."""
    ids = [p.arxiv_id for p in papers]
    if client is None:
        return classify.classify_rules(papers, svc.taxonomy), rules_provenance(ids, (), len(ids))
    result = classify.classify_llm(papers, svc.taxonomy, client, svc.settings.llm_batch_size)
    made = rules_provenance(ids, result.models, result.by_rules)
    q = result.qualification
    if q is not None and not q.qualified:
        made.unqualified = QualificationNote(
            model=q.model, model_right=q.model_right, rules_right=q.rules_right, total=q.total
        )
    return result.classification, made


def _chart(svc: Services, grouped: Grouped, language: str) -> bytes:
    from newsletter.chart import render_chart

    counts = [
        (svc.taxonomy.get(slug).name(language), len(papers), svc.taxonomy.get(slug).color)
        for slug, papers in grouped.items()
    ]
    return render_chart(counts, texts(language)["chart_title"])


def _grouped(svc: Services, scope: _Scope, state: DigestState) -> Grouped:
    assert state.classification is not None
    return classify.group(scope.papers, state.classification, svc.taxonomy)


def _store_classification(
    svc: Services, issue_id: int, scope: _Scope, content: IssueContent
) -> IssueContent:
    """Classify the scope's papers and store the result at once, unless it is stored."""
    if scope.part(content).classification is not None:
        return content
    classification, made = scope.classify()
    provenance = Provenance(llm=svc.settings.llm_model, classification=made)

    def add(stored: IssueContent) -> IssueContent | None:
        mine = scope.part(stored)
        if mine.classification is not None:  # another process got there first: keep theirs
            return None
        mine.classification = classification
        mine.made = provenance
        if scope.window_after is not None:
            stored.window_after = scope.window_after
        return stored

    # Stored at once: a restart after a crash in the reports keeps the classification.
    return update_content(svc.engine, issue_id, add, **scope.classified_values)


def _store_language(
    svc: Services,
    issue_id: int,
    scope: _Scope,
    content: IssueContent,
    language: str,
    client: llm_client.LLMClient | None,
) -> IssueContent:
    """Write the reports and the chart in ``language``: only what is missing (reports
    cost LLM calls, the chart does not)."""
    state = scope.part(content)
    grouped = _grouped(svc, scope, state)
    written = None
    if language not in state.reports:
        written = summarize.write_reports(grouped, svc.taxonomy, language, client)
    chart = _chart(svc, grouped, language)

    def add(stored: IssueContent) -> IssueContent:
        mine = scope.part(stored)
        if written is not None and language not in mine.reports:
            mine.reports[language] = written
            if mine.made is not None:
                mine.made.reports[language] = ReportsProvenance.of(written)
        mine.set_chart(language, chart)
        return stored

    values = {} if scope.weekly else {"paper_count": len(scope.papers)}
    return update_content(svc.engine, issue_id, add, **values)


def _digest(svc: Services, scope: _Scope, content: IssueContent, language: str) -> Digest:
    state = scope.part(content)
    reports = state.reports[language]
    covers_from = None
    if not scope.weekly and (first := min(p.announced for p in scope.papers)) < scope.date:
        covers_from = first
    return Digest(
        date=scope.date,
        language=language,
        sections=tuple(
            CategorySection(slug, members, reports[slug])
            for slug, members in _grouped(svc, scope, state).items()
            if slug in reports
        ),
        chart_png=state.chart_png(language),
        made_with=made_with(state, language),
        made_note=_made_note(state, language),
        paper_count=len(scope.papers),
        period_start=weekly.period_start(scope.date) if scope.weekly else None,
        covers_from=covers_from,
    )


def _made_note(state: DigestState, language: str) -> str:
    """The footer's full statement; offline mode when no model did anything."""
    if state.made is None or not state.made.llm:
        return ""
    return state.made.statement(language)


def _daily_scope(
    svc: Services, date: dt.date, after: dt.date, client: llm_client.LLMClient | None, status: str
) -> _Scope:
    papers = papers_between(svc.engine, after, date)
    return _Scope(
        date,
        papers,
        lambda: classify_papers(svc, papers, client),
        window_after=after,
        classified_values={
            "status": advance(status, IssueStatus.CLASSIFIED),
            "paper_count": len(papers),
        },
    )


def build_digest(svc: Services, date: dt.date, language: str | None = None) -> Digest | None:
    """The digest of ``date`` in ``language``, computing and storing only missing stages.

    Returns None when nothing was announced on ``date``.
    """
    language = language or svc.settings.language
    if not has_papers_on(svc.engine, date):
        return None
    issue = ensure_issue(svc.engine, date)
    assert issue.id is not None
    content = IssueContent.load(issue.content)
    client = llm_client.client_for(svc.settings, svc.engine, date)
    after = content.window(date) or window_after(svc, date)
    scope = _daily_scope(svc, date, after, client, issue.status)
    content = _store_classification(svc, issue.id, scope, content)
    theirs = content.window(date)
    if theirs is not None and theirs != after:  # another process classified first
        scope = _daily_scope(svc, date, theirs, client, issue.status)
    if client is not None and issue.status in NOT_SENT:
        content = _retry_fallbacks(svc, issue.id, scope, content, client)
    if not content.has_language(language):
        content = _store_language(svc, issue.id, scope, content, language, client)
        credit = made_with(content, svc.settings.language)
        advance_stage(svc.engine, issue.id, IssueStatus.SUMMARIZED, made_with=credit)
    return _digest(svc, scope, content, language)


#: Stages of an issue no reader has seen: its fallbacks may still be replaced.
NOT_SENT = (
    IssueStatus.COLLECTED,
    IssueStatus.CLASSIFIED,
    IssueStatus.SUMMARIZED,
    IssueStatus.RENDERED,
)


def _retry_fallbacks(
    svc: Services,
    issue_id: int,
    scope: _Scope,
    content: IssueContent,
    client: llm_client.LLMClient,
) -> IssueContent:
    """Ask the model again for the parts of an unsent issue that fell back (rules or
    extractive reports), and store what it now answers; successful answers come from
    the cache, so only the fallen-back parts cost calls."""
    made = content.made
    if made is None or content.classification is None or not made.llm:
        return content
    sorted_by = made.classification
    classification, redone = content.classification, None
    if sorted_by.rules and sorted_by.unqualified is None:
        fresh, provenance = classify_papers(svc, scope.papers, client)
        if provenance.rules < sorted_by.rules:
            classification, redone = fresh, provenance
    reports: dict[str, dict[str, CategoryReport]] = {}
    if redone is None:
        grouped = _grouped(svc, scope, content)
        for language, written in content.reports.items():
            missing = {s: grouped[s] for s, r in written.items() if r.made_by == EXTRACTIVE}
            if missing:
                again = summarize.write_reports(missing, svc.taxonomy, language, client)
                better = {s: r for s, r in again.items() if r.made_by != EXTRACTIVE}
                if better:
                    reports[language] = {**written, **better}
    if redone is None and not reports:
        return content

    def change(stored: IssueContent) -> IssueContent:
        if stored.made is None:
            return stored
        if redone is not None:  # a new grouping: every language's reports are redone
            stored.classification = classification
            stored.made.classification = redone
            stored.made.reports, stored.reports, stored.charts = {}, {}, {}
            stored.rendered = {}
        for language, written in reports.items():
            stored.reports[language] = written
            stored.made.reports[language] = ReportsProvenance.of(written)
            stored.rendered.pop(language, None)
        return stored

    stored = update_content(svc.engine, issue_id, change)
    if redone is None:
        credit = made_with(stored, svc.settings.language)
        advance_stage(svc.engine, issue_id, IssueStatus.SUMMARIZED, made_with=credit)
    return stored


def build_weekly_digest(svc: Services, date: dt.date, language: str | None = None) -> Digest | None:
    """The weekly digest sent on ``date``: the papers announced in the seven days ending
    on ``date``, in ``language``; None when none were.

    Each day's stored classification is reused (the others are classified now), and
    the week's classification, reports and chart are stored under ``weekly`` in the
    issue of ``date``, so a re-run of the date costs nothing.
    """
    language = language or svc.settings.language
    start = weekly.period_start(date)
    days = [start + dt.timedelta(days=n) for n in range(weekly.WEEK)]
    by_id: dict[str, Paper] = {}
    for day in days:
        by_id.update((p.arxiv_id, p) for p in papers_on(svc.engine, day))
    if not by_id:
        return None
    issue = ensure_issue(svc.engine, date)
    assert issue.id is not None
    client = llm_client.client_for(svc.settings, svc.engine, date)

    def week_classification() -> tuple[Classification, ClassificationProvenance]:
        known, missing = _stored_classifications(svc, days, by_id)
        if not missing:
            return known, ClassificationProvenance()
        classification, made = classify_papers(svc, missing, client)
        return {**known, **classification}, made

    scope = _Scope(date, list(by_id.values()), week_classification, weekly=True)
    content = _store_classification(svc, issue.id, scope, IssueContent.load(issue.content))
    if not scope.part(content).has_language(language):
        content = _store_language(svc, issue.id, scope, content, language, client)
    return _digest(svc, scope, content, language)


def _stored_classifications(
    svc: Services, days: Sequence[dt.date], papers: dict[str, Paper]
) -> tuple[Classification, list[Paper]]:
    """The week's papers' categories as their days' issues stored them, and the papers
    no stored classification covers."""
    known: Classification = {}
    for day in days:
        issue = get_issue(svc.engine, day)
        stored = IssueContent.load(issue.content).classification if issue else None
        known.update((k, v) for k, v in (stored or {}).items() if k in papers)
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
    stored page (``IssueContent.rendered[language]``: subject, html, text with the
    link placeholders) is what the archive can serve.
    """
    issue = get_issue(svc.engine, digest.date)
    assert issue is not None and issue.id is not None
    language = digest.language
    if language not in IssueContent.load(issue.content).rendered:
        full = render_view(svc, digest, ReaderView(digest.slugs, language))
        page = Rendering(subject=full.subject, html=full.html, text=full.text)

        def add(stored: IssueContent) -> IssueContent:
            stored.rendered.setdefault(language, page)
            return stored

        update_content(svc.engine, issue.id, add)
    advance_stage(svc.engine, issue.id, IssueStatus.RENDERED)
