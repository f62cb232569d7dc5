"""Every stored status, outcome and choice as a named enum, in one place.

StrEnum members compare equal to their strings and are stored as them, so rows written
before these enums existed read back unchanged. The word ``sent`` means three things
(an issue sent, a delivery sent, a run that sent): each has its own enum so the type
says which.
"""

from __future__ import annotations

from enum import StrEnum


class IssueStatus(StrEnum):
    """An issue's stage, in order; a re-run never moves it backwards (see ``advance``)."""

    COLLECTED = "collected"
    CLASSIFIED = "classified"
    SUMMARIZED = "summarized"
    RENDERED = "rendered"
    SENDING = "sending"
    SENT = "sent"
    #: A date arXiv announced with no papers (weekend, holiday): never public.
    EMPTY = "empty"


#: The stages an issue moves through, in order (``empty`` is not a stage).
ISSUE_STAGES: tuple[IssueStatus, ...] = (
    IssueStatus.COLLECTED,
    IssueStatus.CLASSIFIED,
    IssueStatus.SUMMARIZED,
    IssueStatus.RENDERED,
    IssueStatus.SENDING,
    IssueStatus.SENT,
)

#: From "summarized" on, an issue has its reports and may be shown in the archive.
PUBLIC_STAGES: tuple[IssueStatus, ...] = ISSUE_STAGES[ISSUE_STAGES.index(IssueStatus.SUMMARIZED) :]


def advance(current: str, new: IssueStatus) -> IssueStatus:
    """``new`` when it is a later stage than ``current``, else ``current``."""
    if current in ISSUE_STAGES and ISSUE_STAGES.index(IssueStatus(current)) >= ISSUE_STAGES.index(
        new
    ):
        return IssueStatus(current)
    return new


class DeliveryStatus(StrEnum):
    """One reader's delivery of one issue in the ledger."""

    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEFERRED = "deferred"
    UNKNOWN = "unknown"


class SendOutcome(StrEnum):
    """What a mail backend knows about one recipient after a send."""

    SENT = "sent"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    UNKNOWN = "unknown"


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


#: Statuses that neither the operator (CLI add, import) nor a webhook may revive: the reader
#: said no, or the address is dead. Only the reader can, by subscribing again and confirming.
SUPPRESSED: tuple[SubscriberStatus, ...] = (
    SubscriberStatus.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED,
    SubscriberStatus.COMPLAINED,
)


class Cadence(StrEnum):
    """How often a reader is mailed: every issue, or one weekly digest on their weekday."""

    DAILY = "daily"
    WEEKLY = "weekly"


class RunOutcome(StrEnum):
    """How one attempt of the daily job ended."""

    RUNNING = "running"
    SENT = "sent"
    NOTHING = "nothing"
    SKIPPED = "skipped"
    FAILED = "failed"
    STOPPED = "stopped"


#: Outcomes after which the scheduled time counts as handled (no catch-up needed).
#: Not ``skipped``: a replica skips a date that another holds, and that holder may die
#: before it finishes; its restart must still catch the date up.
RUN_COMPLETED: tuple[RunOutcome, ...] = (RunOutcome.SENT, RunOutcome.NOTHING)
