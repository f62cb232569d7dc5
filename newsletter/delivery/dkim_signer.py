"""DKIM signatures for mail the SMTP backend sends (dkimpy), as bulk senders now need.

Gmail and Yahoo require bulk mail to be DKIM-signed with a domain aligned with the
From address (DMARC). A relay may sign for us; when it does not, set
NEWSLETTER_DKIM_DOMAIN, NEWSLETTER_DKIM_SELECTOR and NEWSLETTER_DKIM_KEY_FILE (a PEM
private key whose public half is published at ``<selector>._domainkey.<domain>``).
SendGrid signs its own mail (domain authentication in its console), so this is
the SMTP backend's only.

The signature covers the headers a filter or a one-click unsubscribe relies on
(RFC 8058 asks that List-Unsubscribe and List-Unsubscribe-Post be signed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.errors import ConfigurationError

if TYPE_CHECKING:
    from newsletter.settings import Settings

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


@dataclass(frozen=True)
class DkimSigner:
    domain: str
    selector: str
    private_key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """The signer NEWSLETTER_DKIM_* describe; None when none is set; all three or none."""
        values = {
            "NEWSLETTER_DKIM_DOMAIN": settings.dkim_domain,
            "NEWSLETTER_DKIM_SELECTOR": settings.dkim_selector,
            "NEWSLETTER_DKIM_KEY_FILE": str(settings.dkim_key_file or ""),
        }
        if not any(values.values()):
            return None
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise ConfigurationError(
                f"DKIM signing needs {', '.join(missing)} as well (or unset every "
                "NEWSLETTER_DKIM_* setting to send unsigned)"
            )
        assert settings.dkim_key_file is not None
        try:
            key = settings.dkim_key_file.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read NEWSLETTER_DKIM_KEY_FILE {settings.dkim_key_file}: {exc.strerror}"
            ) from exc
        signer = cls(settings.dkim_domain, settings.dkim_selector, key)
        signer.sign(b"From: check@example.org\r\nSubject: check\r\n\r\ncheck\r\n")
        return signer

    def sign(self, message: bytes) -> bytes:
        """``message`` (CRLF lines) with its DKIM-Signature header in front."""
        import dkim

        try:
            signature = dkim.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.private_key,
                include_headers=list(SIGNED_HEADERS),
            )
        except (dkim.DKIMException, ValueError, UnicodeEncodeError) as exc:
            raise ConfigurationError(
                f"DKIM signing failed ({exc}); NEWSLETTER_DKIM_KEY_FILE must be a PEM RSA "
                "private key, NEWSLETTER_DKIM_DOMAIN and _SELECTOR ASCII names"
            ) from exc
        return bytes(signature) + message
