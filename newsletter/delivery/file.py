"""Writes one .eml per message into a directory: the default, and the operator's preview."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.delivery.base import MailBackend, MessageBatch
from newsletter.delivery.mime import build_mime
from newsletter.errors import DeliveryError
from newsletter.models import SendResult
from newsletter.statuses import SendOutcome

if TYPE_CHECKING:
    from newsletter.settings import Settings


class FileBackend(MailBackend):
    def __init__(self, directory: Path, from_email: str, from_name: str = "") -> None:
        super().__init__(from_email, from_name)
        self.directory = Path(directory)

    @classmethod
    def from_settings(cls, settings: Settings) -> FileBackend:
        return cls(settings.outbox_dir, settings.from_email, settings.from_name)

    def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(f"cannot create the outbox {self.directory}: {exc}") from exc

    def send(self, batch: MessageBatch) -> list[SendResult]:
        self.open()
        results = []
        for envelope in batch.recipients:
            msg = build_mime(batch, envelope, self.from_email, self.from_name)
            message_id = str(msg["Message-ID"])
            digest = hashlib.sha256(message_id.encode()).hexdigest()[:16]
            write_atomic(self.directory / f"{digest}.eml", msg.as_bytes())
            results.append(SendResult(envelope.to, SendOutcome.SENT, message_id=message_id))
        return results


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
