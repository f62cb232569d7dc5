"""Mail backends behind one contract (see ``base.MailBackend``), chosen by name in settings.

NEWSLETTER_MAIL_BACKEND names a built-in backend (``file``, ``memory``, ``smtp``,
``sendgrid``) or, as Django's ``EMAIL_BACKEND`` allows, any ``MailBackend`` subclass
by its import path ``package.module:Class``, so a new provider needs no edit here.
Either way the class is imported only then, and built with ``Class.from_settings``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from newsletter.errors import ConfigurationError

if TYPE_CHECKING:
    from newsletter.delivery.base import MailBackend
    from newsletter.settings import Settings


#: The built-in backends' names and the classes they stand for.
BUILTIN: dict[str, str] = {
    "file": "newsletter.delivery.file:FileBackend",
    "memory": "newsletter.delivery.memory:MemoryBackend",
    "smtp": "newsletter.delivery.smtp:SMTPBackend",
    "sendgrid": "newsletter.delivery.sendgrid:SendGridBackend",
}


def get_backend(settings: Settings) -> MailBackend:
    """The backend named by NEWSLETTER_MAIL_BACKEND, built from settings."""
    name = settings.mail_backend
    settings.require_safe_secret()
    path = BUILTIN.get(name, name)
    if ":" not in path:
        raise ConfigurationError(
            f"unknown NEWSLETTER_MAIL_BACKEND {name!r}; use {', '.join(BUILTIN)} "
            "or package.module:Class"
        )
    return backend_class(path).from_settings(settings)


def backend_class(path: str) -> type[MailBackend]:
    """The ``MailBackend`` subclass named ``package.module:Class``.

    Raises ``ConfigurationError`` naming the path and the cause when the module does
    not import, has no such attribute, or the attribute is not a ``MailBackend``
    subclass (the contract: ``send``, and ``open``/``close`` if it needs them).
    """
    from newsletter.delivery.base import MailBackend

    module_name, _, class_name = path.partition(":")
    where = f"NEWSLETTER_MAIL_BACKEND={path}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{where}: cannot import module {module_name!r} ({exc}); "
            "check the spelling and that the package is installed"
        ) from exc
    found = getattr(module, class_name, None)
    if found is None:
        raise ConfigurationError(f"{where}: module {module_name!r} has no {class_name!r}")
    if not (isinstance(found, type) and issubclass(found, MailBackend)):
        raise ConfigurationError(
            f"{where}: {class_name!r} is not a subclass of "
            "newsletter.delivery.base.MailBackend; a mail backend must implement its "
            "contract (send, and open/close if it holds connections)"
        )
    if getattr(found, "__abstractmethods__", None):
        missing = ", ".join(sorted(found.__abstractmethods__))
        raise ConfigurationError(f"{where}: {class_name!r} does not implement {missing}")
    return found
