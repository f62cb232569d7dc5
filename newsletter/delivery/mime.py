"""Build the MIME message shared by the file and SMTP backends.

multipart/alternative( text/plain, multipart/related( text/html, image/png ) ) so
that the chart shows inline by Content-ID without a "load images" click.

Headers filters look for: ``Date`` in UTC as ``+0000`` (``-0000`` means "zone
unknown", RFC 5322), ``List-Id`` (RFC 2919: a newsletter is a list; Gmail groups and
filters by it), ``Message-ID`` on the sender's domain, and the reader's one-click
unsubscribe headers from the envelope.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import re
from email.message import EmailMessage

from newsletter.delivery.addresses import has_utf8_local_part, wire_address
from newsletter.delivery.base import Envelope, MessageBatch, personalize
from newsletter.mailtext import transfer_encoding


def build_mime(
    batch: MessageBatch, envelope: Envelope, from_email: str, from_name: str
) -> EmailMessage:
    html, text = personalize(batch, envelope)
    to, sender = wire_address(envelope.to), wire_address(from_email)
    # A local part without an ASCII form is written as UTF-8 (RFC 6532), for SMTPUTF8 servers.
    utf8 = has_utf8_local_part(to) or has_utf8_local_part(sender)
    msg = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    msg["From"] = email.utils.formataddr((from_name, sender)) if from_name else sender
    msg["To"] = to
    msg["Subject"] = batch.rendered.subject
    msg["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    domain = sender.rsplit("@", 1)[-1] or "localhost"
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    msg["List-Id"] = list_id(from_name, from_email)
    for name, value in envelope.headers.items():
        msg[name] = value
    msg.set_content(text, subtype="plain", charset="utf-8", cte=transfer_encoding(text))
    # The encoding the renderer's Gmail-clipping guard counted (newsletter.mailtext).
    msg.add_alternative(html, subtype="html", charset="utf-8", cte=transfer_encoding(html))
    if batch.rendered.images:
        html_part = next(part for part in msg.iter_parts() if part.get_content_subtype() == "html")
        assert isinstance(html_part, EmailMessage)
        for image in batch.rendered.images:
            html_part.add_related(
                image.data,
                maintype="image",
                subtype=image.mime_subtype,
                cid=f"<{image.content_id}>",
                filename=image.filename,
                disposition="inline",
            )
    return msg


def list_id(from_name: str, from_email: str) -> str:
    """The List-Id header (RFC 2919): ``Daily AI Insights <daily-ai-insights.example.org>``.

    The id is the newsletter's name as a label under the sender's (ASCII) domain, so it
    stays the same across issues and differs between newsletters on one domain.
    """
    domain = wire_address(from_email).rpartition("@")[2] or "localhost"
    label = re.sub(r"[^a-z0-9]+", "-", from_name.lower()).strip("-")[:60] or "newsletter"
    phrase = f'"{from_name}" ' if from_name.isascii() and from_name else ""
    return f"{phrase}<{label}.{domain}>"
