"""The two mails the web app sends: the confirmation link and the manage link.

They are small MJML templates compiled like the issue (``html_build.compile_mjml``)
and sent through the same ``MailBackend`` as a one-recipient ``MessageBatch``.
"""

from __future__ import annotations

from typing import Literal

from newsletter.categories import Taxonomy
from newsletter.delivery.base import Envelope, MessageBatch
from newsletter.html_build import compile_mjml
from newsletter.models import RenderedIssue
from newsletter.render import mail_templates
from subscribers.web_texts import web_texts

MailKind = Literal["confirm", "manage"]


def render_link_mail(
    kind: MailKind,
    url: str,
    categories: tuple[str, ...],
    language: str,
    taxonomy: Taxonomy,
) -> RenderedIssue:
    """The subject, HTML and text of a confirm or manage mail in ``language``."""
    t = web_texts(language)
    context = {
        "language": language,
        "site": t["site"],
        "subject": t[f"mail_{kind}_subject"],
        "intro": t[f"mail_{kind}_intro"],
        "button": t[f"mail_{kind}_button"],
        "ignore": t[f"mail_{kind}_ignore"],
        "url": url,
        "categories": [
            f"{taxonomy.get(slug).emoji} {taxonomy.get(slug).name(language)}"
            for slug in (categories if kind == "confirm" else ())
        ],
    }
    html = compile_mjml(mail_templates("web").get_template("mail_link.mjml.j2").render(context))
    text = mail_templates("web").get_template("mail_link.txt.j2").render(context)
    return RenderedIssue(str(context["subject"]), html, text, ())


def link_batch(rendered: RenderedIssue, to: str, kind: MailKind) -> MessageBatch:
    """One mail to one address; tagged so provider events can tell it from an issue."""
    return MessageBatch(rendered, (Envelope(to=to, tags={"mail": kind}),))
