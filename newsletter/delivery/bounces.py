"""Bounce reports for the SMTP backend: delivery status notifications (RFC 3464).

With SMTP nobody calls a webhook: the bounces come back as mail. An operator feeds
them to ``newsletter bounces import FILE``, where FILE is an mbox, a Maildir, a
directory of message files, or one message. A recipient whose DSN says
``Action: failed`` with a permanent ``5.x.x`` status becomes ``bounced`` (through
``subscribers.readers.set_status``, source ``import``) and the delivery that carried
the returned Message-ID is marked failed. Delays and ``4.x.x`` (temporary) reports
change nothing; neither does a message that is not a DSN.
"""

from __future__ import annotations

import email
import email.policy
import logging
import mailbox
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from sqlalchemy.engine import Engine

from newsletter.delivery import ledger
from newsletter.errors import InvalidInputError
from newsletter.statuses import SUPPRESSED, SubscriberStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bounce:
    """One recipient line of a DSN."""

    recipient: str
    action: str
    status: str
    diagnostic: str = ""
    message_id: str = ""  # of the message that bounced, when the DSN returns its headers

    @property
    def permanent(self) -> bool:
        return self.action == "failed" and self.status.startswith("5")


@dataclass
class BounceReport:
    messages: int = 0
    bounced: int = 0  # readers now bounced
    already: int = 0  # already unsubscribed, bounced or complained
    temporary: int = 0  # delays and 4.x.x: nothing changed
    unknown: int = 0  # addresses that are not our readers
    not_dsn: int = 0  # messages that are not delivery status notifications
    addresses: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"bounced: {self.bounced}, already suppressed: {self.already}, "
            f"temporary: {self.temporary}, unknown addresses: {self.unknown}, "
            f"not a DSN: {self.not_dsn} (of {self.messages} messages)"
        )


def _parse(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def read_messages(path: Path) -> Iterator[Message]:
    """Every message in an mbox, a Maildir, a directory of files, or one message file."""
    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            box = mailbox.Maildir(path, factory=None, create=False)
            for key in sorted(box.keys()):
                yield _parse(box.get_bytes(key))
            return
        for item in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
            yield _parse(item.read_bytes())
        return
    with path.open("rb") as handle:
        is_mbox = handle.read(5) == b"From "
    if not is_mbox:
        yield _parse(path.read_bytes())
        return
    mbox = mailbox.mbox(path, factory=None, create=False)
    try:
        for key in mbox.iterkeys():
            yield _parse(mbox.get_bytes(key))
    finally:
        mbox.close()


def _address(value: str) -> str:
    """``rfc822; a@b`` -> ``a@b``."""
    kind, _, address = value.partition(";")
    return (address if address else kind).strip().strip("<>")


def parse_dsn(message: Message) -> list[Bounce] | None:
    """The per-recipient reports of a DSN, or None when ``message`` is not one."""
    if message.get_content_type() != "multipart/report":
        return None
    status_part = None
    original_id = ""
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            status_part = part
        elif ctype in ("message/rfc822", "text/rfc822-headers") and not original_id:
            original_id = _original_message_id(part)
    if status_part is None:
        return None
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        return None
    bounces = []
    for block in blocks[1:]:  # the first block is about the whole message
        if not isinstance(block, Message):
            continue
        recipient = _address(
            str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        )
        if not recipient:
            continue
        bounces.append(
            Bounce(
                recipient=recipient,
                action=str(block.get("Action", "")).strip().lower(),
                status=str(block.get("Status", "")).strip(),
                diagnostic=str(block.get("Diagnostic-Code", "")).strip(),
                message_id=original_id,
            )
        )
    return bounces


def _original_message_id(part: Message) -> str:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return str(inner[0].get("Message-ID", "")).strip()
        return ""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    headers = email.message_from_bytes(payload, policy=email.policy.compat32)
    return str(headers.get("Message-ID", "")).strip()


def import_bounces(engine: Engine, path: Path) -> BounceReport:
    """Apply every permanent bounce found under ``path``; see the module docstring."""
    from subscribers import readers

    if not path.exists():
        raise InvalidInputError(f"{path} does not exist; give an mbox, a Maildir or a directory")
    report = BounceReport()
    try:
        messages = list(read_messages(path))
    except (OSError, mailbox.Error) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}; nothing was imported") from exc
    for message in messages:
        report.messages += 1
        bounces = parse_dsn(message)
        if bounces is None:
            report.not_dsn += 1
            continue
        for bounce in bounces:
            if not bounce.permanent:
                report.temporary += 1
                continue
            try:
                info = readers.get_by_email(engine, bounce.recipient)
            except InvalidInputError:
                info = None
            if info is None:
                report.unknown += 1
                continue
            reason = f"bounced: {bounce.status} {bounce.diagnostic}".strip()
            ledger.fail_by_message_id(engine, bounce.message_id, reason)
            if info.status in SUPPRESSED:
                report.already += 1
                continue
            readers.set_status(engine, info.id, SubscriberStatus.BOUNCED, "import")
            report.bounced += 1
            report.addresses.append(info.email)
    log.info("bounce import: %s", report.line())
    return report
