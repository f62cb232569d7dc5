"""``newsletter rebuild``: redo a date's classification or reports on purpose.

A fallback is asked again by any later build of an issue not yet sent; a rebuild
is for a deliberate change (a new model, a new prompt, a fixed category file). It
clears the stored stages and builds them anew through the one digest builder, so
the answers already given still come from the cache.
"""

from __future__ import annotations

import datetime as dt

from newsletter.app import Services
from newsletter.digest import NOT_SENT, build_digest, render_stage
from newsletter.errors import InvalidInputError
from newsletter.issue_state import IssueContent
from newsletter.issues import get_issue, update_content
from newsletter.models import Digest


def rebuild(
    svc: Services,
    date: dt.date,
    part: str = "classification",
    language: str | None = None,
    archive_only: bool = False,
) -> list[Digest]:
    """Redo ``part`` ("classification": everything; "reports") of the issue of ``date`` on
    purpose, in ``language`` or every stored language, and store the rendered pages again.

    Answers already given come from the cache (a new model or prompt asks anew). An
    issue already mailed is refused unless ``archive_only``: then only its web version
    changes, never what readers got.
    """
    issue = get_issue(svc.engine, date)
    if issue is None or issue.id is None:
        raise InvalidInputError(f"no issue for {date}; run `newsletter preview --date {date}`")
    if issue.status not in NOT_SENT and not archive_only:
        raise InvalidInputError(
            f"the issue of {date} was already mailed ({issue.status}); add --archive-only to "
            "rebuild only its web version"
        )
    stored = IssueContent.load(issue.content)
    languages = [language] if language else sorted(stored.reports) or [svc.settings.language]

    def clear(content: IssueContent) -> IssueContent:
        if part == "classification":
            content.classification, content.made = None, None
            content.reports, content.charts, content.rendered = {}, {}, {}
            return content
        for code in languages:
            content.reports.pop(code, None)
            content.rendered.pop(code, None)
            if content.made is not None:
                content.made.reports.pop(code, None)
        return content

    update_content(svc.engine, issue.id, clear)
    digests = []
    for code in languages:
        digest = build_digest(svc, date, code)
        if digest is not None:
            render_stage(svc, digest)
            digests.append(digest)
    return digests
