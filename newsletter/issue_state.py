"""An issue's stored content, typed: the one place that reads and writes it.

Each stage of an issue stores its output in the issue row's ``content`` (JSON), so a
re-run continues where it stopped. This module is the schema of that document and its
only (de)serialiser; the defaults below are how rows written by older versions read:

- no ``window_after``: the issue was classified before windows were stored and held its
  own day only (``IssueContent.window``);
- no ``made`` (provenance): the credit is the ``made_with`` string stored beside it, else
  ``offline`` (``made_with``);
- a report without ``made_by``: an extractive one (``CategoryReport``'s default).

Shape of the document (keys as stored)::

    window_after   "2024-11-21"                  papers announced after this day
    classification {arxiv_id: [slug, ...]}
    made           {llm, classification: {...}, reports: {language: {...}}}
    reports        {language: {slug: CategoryReport}}
    charts         {language: base64 PNG}
    rendered       {language: {subject, html, text}}
    weekly         {classification, made, reports, charts}   the weekly digest of the date

Unknown keys are kept (``extra="allow"``), so a row written by a newer version keeps
what it stored when an older replica rewrites it.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from newsletter.i18n import texts
from newsletter.models import CategoryReport

#: ``made_by`` of a report that quotes the abstracts instead of a model's writing.
EXTRACTIVE = "extractive"
#: The credit of an issue no model wrote.
OFFLINE = "offline"


class _Stored(BaseModel):
    model_config = ConfigDict(extra="allow")


class QualificationNote(_Stored):
    """A model's score on the calibration set beside the keyword rules' (newsletter.llm_quality)."""

    model: str
    model_right: int
    rules_right: int
    total: int


class ClassificationProvenance(_Stored):
    """How the papers were sorted into categories: by which models, and how many by rules."""

    #: Papers classified in this step.
    papers: int = 0
    #: The models whose answers were used.
    models: list[str] = Field(default_factory=list)
    #: Papers the keyword rules sorted (no model configured, or its answer was unusable).
    rules: int = 0
    #: Which papers the rules sorted, when known (None: only the count was recorded), so a
    #: later run can ask a model again for just these.
    rules_ids: list[str] | None = None
    #: Set when the configured model did worse than the rules on the calibration set, so
    #: the rules sorted every paper.
    unqualified: QualificationNote | None = None

    @property
    def by_model(self) -> int:
        """Papers a model sorted."""
        return self.papers - self.rules


class ReportsProvenance(_Stored):
    """How one language's reports were written."""

    #: Reports written (one per category with papers).
    categories: int = 0
    #: The models that wrote reports.
    models: list[str] = Field(default_factory=list)
    #: Categories whose report quotes the abstracts (offline, or the model failed).
    extractive: list[str] = Field(default_factory=list)

    @property
    def by_model(self) -> int:
        """Reports a model wrote."""
        return self.categories - len(self.extractive)

    @classmethod
    def of(cls, reports: Mapping[str, CategoryReport]) -> ReportsProvenance:
        """What ``reports`` (slug -> report) say about who wrote them."""
        return cls(
            categories=len(reports),
            models=sorted({r.made_by for r in reports.values() if r.made_by != EXTRACTIVE}),
            extractive=[slug for slug, r in reports.items() if r.made_by == EXTRACTIVE],
        )


class Provenance(_Stored):
    """Who made a digest: the configured model, the classification, each language's reports."""

    #: The model configured when the digest was classified ("" = none, offline).
    llm: str = ""
    classification: ClassificationProvenance = Field(default_factory=ClassificationProvenance)
    reports: dict[str, ReportsProvenance] = Field(default_factory=dict)

    def credit(self, language: str) -> str:
        """The footer's credit: the models that wrote the digest, and what fell back.

        E.g. ``openai/x (offline fallback for: classification of 12 papers, report nlp)``.
        """
        sorted_by = self.classification
        reports = self.reports.get(language, ReportsProvenance())
        names = list(dict.fromkeys([*reports.models, *sorted_by.models]))
        if not names and self.llm:
            names = [self.llm]
        if not names:
            return OFFLINE
        notes = []
        if rules := sorted_by.rules:
            everything = rules == sorted_by.papers
            notes.append("classification" if everything else f"classification of {rules} papers")
        extractive = reports.extractive
        if len(extractive) == 1:
            notes.append(f"report {extractive[0]}")
        elif extractive:
            everything = len(extractive) == reports.categories
            notes.append("all reports" if everything else f"{len(extractive)} reports")
        credit = " + ".join(names)
        return f"{credit} (offline fallback for: {', '.join(notes)})" if notes else credit

    def statement(self, language: str) -> str:
        """What the model did, in full and in ``language``; offline mode when it did nothing.

        E.g. "24 of 24 papers sorted and 10 of 12 reports written by m; 2 reports quote
        the abstracts (cybersecurity, physics)". Never cut: the footer shows all of it.
        """
        t = texts(language)
        sorted_by = self.classification
        reports = self.reports.get(language, ReportsProvenance())
        names = list(dict.fromkeys([*reports.models, *sorted_by.models])) or [self.llm]
        parts = []
        if sorted_by.models and sorted_by.by_model:
            parts.append(t["made_sorted"].format(done=sorted_by.by_model, total=sorted_by.papers))
        if reports.by_model:
            parts.append(t["made_written"].format(done=reports.by_model, total=reports.categories))
        notes = []
        if sorted_by.rules and parts:
            notes.append(t["made_rules"].format(count=sorted_by.rules))
        if q := sorted_by.unqualified:
            notes.append(t["made_unqualified"].format(**q.model_dump()))
        if reports.extractive and parts:
            slugs = ", ".join(reports.extractive)
            notes.append(t["made_quoted"].format(count=len(reports.extractive), slugs=slugs))
        if not parts:  # the model did nothing: offline mode, and why when known
            return " ".join([t["made_offline"], *(f"({n})" for n in notes)])
        model = " + ".join(n.split("/", 1)[-1] for n in names if n)
        lead = t["made_by"].format(parts=t["made_join"].join(parts), model=model)
        return "; ".join([lead, *notes]) + "."

    def counts(self) -> dict[str, object]:
        """The counts of ``newsletter llm usage --json``'s ``provenance`` key."""
        sorted_by = self.classification
        return {
            "model": self.llm,
            "classification": {"model": sorted_by.by_model, "rules": sorted_by.rules},
            "qualification": sorted_by.unqualified.model_dump() if sorted_by.unqualified else None,
            "reports": {
                language: {"model": r.by_model, "offline": len(r.extractive)}
                for language, r in self.reports.items()
            },
        }


class Rendering(_Stored):
    """A whole issue rendered once (all categories), with the link placeholders unfilled."""

    subject: str
    html: str
    text: str


class DigestState(_Stored):
    """The stored stages of one digest (the daily issue, or the weekly digest of its date)."""

    #: arxiv_id -> the categories it was sorted into; None until classified.
    classification: dict[str, tuple[str, ...]] | None = None
    made: Provenance | None = None
    #: language -> slug -> report.
    reports: dict[str, dict[str, CategoryReport]] = Field(default_factory=dict)
    #: language -> the chart PNG, base64.
    charts: dict[str, str] = Field(default_factory=dict)
    #: The credit as older versions stored it, read only when ``made`` is missing.
    made_with: str | None = None

    def chart_png(self, language: str) -> bytes:
        return base64.b64decode(self.charts[language])

    def set_chart(self, language: str, png: bytes) -> None:
        """Store ``png`` unless a chart in ``language`` is already stored (first one wins)."""
        self.charts.setdefault(language, base64.b64encode(png).decode("ascii"))

    def has_language(self, language: str) -> bool:
        """Whether reports and chart in ``language`` are stored."""
        return language in self.reports and language in self.charts


class IssueContent(DigestState):
    """Everything stored for one issue (see the module docstring for the shape)."""

    #: The issue carries the papers announced after this day, up to its date.
    window_after: dt.date | None = None
    #: language -> the whole issue rendered (the archive can serve it).
    rendered: dict[str, Rendering] = Field(default_factory=dict)
    weekly: DigestState | None = None

    @classmethod
    def load(cls, raw: str | None) -> IssueContent:
        """The content stored as ``raw`` JSON (empty or None: nothing stored yet)."""
        return cls.model_validate_json(raw or "{}")

    def dump(self) -> str:
        """The JSON to store; absent stages are left out, as older versions wrote them."""
        return self.model_dump_json(exclude_none=True)

    def window(self, date: dt.date) -> dt.date | None:
        """The window the issue of ``date`` was classified with; None when not classified.

        Issues classified before windows were stored held their own day only.
        """
        if self.window_after is not None:
            return self.window_after
        if self.classification is not None:
            return date - dt.timedelta(days=1)
        return None

    def weekly_state(self) -> DigestState:
        """The weekly digest's stages, created empty when none are stored yet."""
        if self.weekly is None:
            self.weekly = DigestState()
        return self.weekly


def made_with(state: DigestState, language: str) -> str:
    """The credit the footer of ``state``'s digest in ``language`` shows (legacy rows too)."""
    if state.made is None:
        return state.made_with or OFFLINE
    return state.made.credit(language)


def rules_provenance(
    papers: Sequence[str], models: Sequence[str], rules: int
) -> ClassificationProvenance:
    """The provenance of classifying ``papers`` (ids) when ``rules`` of them fell to the rules.

    Which papers did is known when none or all did; in between only the count is.
    """
    ids: list[str] | None = None
    if rules == 0:
        ids = []
    elif rules == len(papers):
        ids = list(papers)
    return ClassificationProvenance(
        papers=len(papers), models=list(models), rules=rules, rules_ids=ids
    )
