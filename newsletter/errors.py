"""Every error the newsletter raises on purpose, so callers can catch one root.

The tree::

    NewsletterError                 anything we raise deliberately; message says what to do
    ├── ConfigurationError          a setting is missing, malformed or unsafe (exit code 2)
    │   └── UnknownCategoryError    a category slug that is not in the taxonomy
    ├── InvalidInputError           a user-supplied value is malformed (bad date, bad address)
    │   └── InterestsError          a reader's interests are too long, too many or unreadable
    ├── DatabaseError               the database cannot be reached or is in a bad state
    ├── SourceError                 one feed could not be fetched or parsed (URL + reason)
    ├── LLMError                    the model failed for good after retries and fallbacks
    │   ├── LLMTimeout              no token within the timeout: the caller shrinks the work
    │   ├── LLMInvalid              answers that cannot be used, even after a repair turn
    │   └── LLMUnavailable          every model is down for the run (outage, key, name)
    ├── RenderError                 the e-mail could not be rendered
    ├── DeliveryError               a mail backend failed; carries status, body and recipients
    │   └── FailureBudgetExceeded   too many permanent failures in one batch; the run stops
    └── TokenError                  a signed link is tampered, expired or meant for another use
"""

from __future__ import annotations

from collections.abc import Sequence


class NewsletterError(Exception):
    """Root of every deliberate error; ``str(err)`` is a one-line message for the user."""

    exit_code = 1


class ConfigurationError(NewsletterError):
    exit_code = 2


class UnknownCategoryError(ConfigurationError):
    def __init__(self, unknown: Sequence[str], known: Sequence[str]) -> None:
        self.unknown = tuple(unknown)
        super().__init__(
            f"unknown category {', '.join(repr(s) for s in unknown)}; "
            f"choose from: {', '.join(known)} (see `newsletter categories`)"
        )


class InvalidInputError(NewsletterError):
    exit_code = 2


class InterestsError(InvalidInputError):
    """Interests that cannot be stored (text too long, too many papers, a malformed file);
    nothing was changed."""


class DatabaseError(NewsletterError):
    exit_code = 2


class SourceError(NewsletterError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class LLMError(NewsletterError):
    pass


class LLMTimeout(LLMError):
    """The model sent no token in time; smaller work (fewer papers) may still succeed."""


class LLMInvalid(LLMError):
    """The model answered, but not usably (wrong shape, cut off at its cap, failed a check)."""


class LLMUnavailable(LLMError):
    """No model can be asked in this run (down, bad credentials, unknown name)."""


class RenderError(NewsletterError):
    pass


class DeliveryError(NewsletterError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        recipients: Sequence[str] = (),
        permanent: bool = False,
    ) -> None:
        self.status = status
        self.body = body
        self.recipients = tuple(recipients)
        self.permanent = permanent
        super().__init__(message)


class FailureBudgetExceeded(DeliveryError):
    pass


class TokenError(NewsletterError):
    exit_code = 2


def one_line(exc: BaseException | None) -> str:
    """An error's message on one line of at most 500 characters, for logs and run records.

    A SQLAlchemy statement error (it has ``statement`` and ``orig``) is told by the
    driver's own message: its ``str`` carries the SQL and its parameters, which hold
    readers' addresses and do not belong in a log line.
    """
    if exc is None:
        return "unknown error"
    orig = getattr(exc, "orig", None)
    if orig is not None and hasattr(exc, "statement"):
        exc = orig
    return " ".join(str(exc).split())[:500]


def database_error(exc: BaseException) -> DatabaseError | None:
    """``exc`` as a one-line DatabaseError when it is a driver error SQLAlchemy raised.

    Asked of an error no handler caught (the database went away mid-run); None for
    anything else. SQLAlchemy is looked up, not imported: if it was never loaded, the
    error cannot be one of its own.
    """
    import sys

    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.DBAPIError):
        return None
    reason = one_line(exc)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return DatabaseError(
            f"the database went away ({reason}); run the command again once it is back: "
            "what was recorded stays, and readers whose mail could not be recorded are "
            "marked unknown, not mailed twice"
        )
    return DatabaseError(f"database error: {reason}")
