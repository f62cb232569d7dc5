"""The rendered issue as a real MIME message, parsed back from its bytes."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from newsletter.delivery.base import Envelope, MessageBatch
from newsletter.delivery.mime import build_mime
from newsletter.models import RenderedIssue
from newsletter.render import Links, render_issue
from subscribers.tokens import Signer, reader_links
from tests.render.factory import ARCHIVE_URL, BASE_URL, LINKS, simple_digest, taxonomy, view
from tests.render.htmlcheck import parse

SIGNER = Signer("test-secret-key-for-render-tests")


def _message(rendered: RenderedIssue, subscriber_id: int = 42) -> EmailMessage:
    links = reader_links(SIGNER, BASE_URL, subscriber_id)
    envelope = Envelope("reader@example.com", links, {})
    built = build_mime(MessageBatch(rendered, (envelope,)), envelope, "news@example.org", "News")
    parsed = email.message_from_bytes(
        built.as_bytes(), _class=EmailMessage, policy=email.policy.default
    )
    assert isinstance(parsed, EmailMessage)
    return parsed


def _body(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def test_chart_part_content_id_matches_the_cid_reference() -> None:
    rendered = render_issue(simple_digest(), view("nlp", "llm"), taxonomy(), LINKS)
    msg = _message(rendered)
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = msg.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image_part = related.iter_parts()
    assert html_part.get_content_type() == "text/html"
    assert image_part.get_content_type() == "image/png"
    assert image_part.get_content_disposition() == "inline"
    content_id = image_part["Content-ID"].strip()
    assert content_id.startswith("<") and content_id.endswith(">")
    sources = [i.attrs["src"] for i in parse(str(html_part.get_content())).find("img")]
    assert sources == [f"cid:{content_id[1:-1]}"]
    assert image_part.get_content() == simple_digest().chart_png


def test_hosted_chart_message_has_no_image_part() -> None:
    url = f"{ARCHIVE_URL}/chart.png"
    rendered = render_issue(
        simple_digest(), view("nlp"), taxonomy(), Links(ARCHIVE_URL, chart_url=url)
    )
    msg = _message(rendered)
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    assert [i.attrs["src"] for i in parse(_body(msg, "html")).find("img")] == [url]


def test_message_has_preheader_signed_links_and_only_the_chosen_categories() -> None:
    rendered = render_issue(
        simple_digest(("nlp", "computer-vision", "llm")), view("llm", "nlp"), taxonomy(), LINKS
    )
    msg = _message(rendered, subscriber_id=7)
    html, text = _body(msg, "html"), _body(msg, "plain")
    doc = parse(html)
    assert doc.preheader().startswith("6 new papers today.")
    hrefs = doc.hrefs()
    manage = next(h for h in hrefs if h.startswith(f"{BASE_URL}/manage/"))
    unsubscribe = next(h for h in hrefs if h.startswith(f"{BASE_URL}/unsubscribe/"))
    assert SIGNER.unsign(manage.rsplit("/", 1)[1], "manage") == 7
    assert SIGNER.unsign(unsubscribe.rsplit("/", 1)[1], "unsubscribe") == 7
    assert unsubscribe in text
    assert doc.section_ids == ["nlp", "llm"]
    assert "Computer Vision" not in html and "Computer Vision" not in text
    assert msg["Subject"] == "Daily AI Insights 2024-11-22: 6 new papers"
