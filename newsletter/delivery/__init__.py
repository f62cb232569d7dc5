"""Mail backends behind one contract (see ``base.MailBackend``), chosen by name in settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.errors import ConfigurationError

if TYPE_CHECKING:
    from newsletter.delivery.base import MailBackend
    from newsletter.settings import Settings


def get_backend(settings: Settings) -> MailBackend:
    """The backend named by NEWSLETTER_MAIL_BACKEND, built from settings."""
    name = settings.mail_backend
    settings.require_safe_secret()
    if name == "file":
        from newsletter.delivery.file import FileBackend

        return FileBackend(settings.outbox_dir, settings.from_email, settings.from_name)
    if name == "memory":
        from newsletter.delivery.memory import MemoryBackend

        return MemoryBackend(settings.from_email, settings.from_name)
    if name == "smtp":
        from newsletter.delivery.smtp import SMTPBackend

        return SMTPBackend.from_settings(settings)
    if name == "sendgrid":
        from newsletter.delivery.sendgrid import SendGridBackend

        return SendGridBackend.from_settings(settings)
    raise ConfigurationError(f"unknown NEWSLETTER_MAIL_BACKEND {name!r}")
