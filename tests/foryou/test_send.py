"""A send with "For you": each reader's block in their mail through every backend, the
invitation for readers without interests, hostile interests inert, and the full
rendering still made once per (category set, language)."""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

from newsletter.app import Services
from newsletter.sending import send
from subscribers.interests import LikedPaper, set_interests
from tests.delivery.conftest import SAMPLE_DATE, add_readers
from tests.delivery.test_contract import Harness
from tests.delivery.test_send import sendgrid_backend
from tests.fakes.sendgrid_double import SendGridDouble

MANIPULATION = "Sim-to-Real Reinforcement Learning for Dexterous Manipulation with Tactile Rewards"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def readers(svc: Services) -> dict[str, int]:
    """Four readers of every category: with text, without interests, with interests that
    match nothing today, with hostile interests."""
    every = (svc.taxonomy.slugs,)
    ids = add_readers(svc, 4, every)
    set_interests(svc.engine, ids[0], text="tactile sensing for dexterous robot hands")
    set_interests(svc.engine, ids[2], text="sourdough zymurgy")
    set_interests(
        svc.engine,
        ids[3],
        text='<script>alert(1)</script> "tactile" {{ manage_url }} NLPHFORYOUHTML0123abcd',
        papers=[
            LikedPaper(
                '<img src=x onerror="alert(1)"> {{ for_you_text }}',
                "dexterous manipulation tactile rewards sim-to-real",
            )
        ],
    )
    return {"text": ids[0], "none": ids[1], "nothing": ids[2], "hostile": ids[3]}


def test_every_backend_fills_each_readers_own_block(
    delivery_services: Services, harness: Harness
) -> None:
    svc = delivery_services
    ids = readers(svc)
    report = send(svc, SAMPLE_DATE, harness.backend)
    assert report.sent == 4 and report.ok
    assert (report.for_you_ranked, report.for_you_blocks) == (3, 2)
    got = {int(g.to.removeprefix("reader").split("@")[0]): g for g in harness.received()}
    assert len(got) == 4
    mine = got[0]
    assert "For you" in mine.html and "For you" in mine.text
    head = mine.html.index("For you")
    assert head < mine.html.index("Today at a glance")  # at the top of the mail
    assert mine.html.index(MANIPULATION, head) < mine.html.index("Today at a glance")
    assert "Matches:" in mine.html and "Matches:" in mine.text
    assert " ".join(mine.text.split()).index(MANIPULATION) < mine.text.index("In this issue")
    assert "NLPH" not in mine.html and "NLPH" not in mine.text
    # No interests: the one-line invitation to their own manage page, no block.
    invited = got[1]
    for body in (invited.html, invited.text):
        token = re.search(r"/manage/([^\"#\s]+)#interests", body)
        assert token and svc.signer.unsign(token.group(1), "manage") == ids["none"]
    assert "For you" not in invited.html and "tell us your interests" in invited.text
    # Interests that match nothing today: a line saying so, no block.
    none = "None of today's papers matched your interests."
    assert escape(none) in got[2].html and none in got[2].text
    assert "For you" not in got[2].html


def test_hostile_interests_are_inert_in_html_and_text(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    readers(svc)
    send(svc, SAMPLE_DATE, sendgrid_backend(sendgrid))
    hostile = next(d for d in sendgrid.delivered if d.to == "reader3@example.com")
    assert "Close to your paper:" in hostile.html
    tags = Tags()
    tags.feed(hostile.html)
    assert "script" not in tags.tags and '<img src=x onerror="alert(1)">' not in hostile.html
    # The liked paper's title is shown as text, the template-looking part left as written.
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; {{ for_you_text }}" in hostile.html
    assert '<img src=x onerror="alert(1)"> {{ for_you_text }}' in hostile.text
    # The reader's own text reaches the mail only as matched words, never as markup, and a
    # placeholder-looking word is substituted by nobody.
    for body in (hostile.html, hostile.text):
        assert "alert(1)</script>" not in body and "NLPH" not in body


def test_one_full_render_per_category_set_and_language(
    delivery_services: Services, sendgrid: SendGridDouble
) -> None:
    svc = delivery_services
    sets = (("nlp",), ("llm", "reasoning"))
    english = add_readers(svc, 40, sets)
    korean = add_readers(svc, 40, sets, language="ko", start=100)
    for sid in english[::2] + korean[::3]:
        set_interests(svc.engine, sid, text="language models reasoning retrieval")
    report = send(svc, SAMPLE_DATE, sendgrid_backend(sendgrid))
    assert report.sent == 80 and report.ok
    assert report.groups == 4 and report.renders == 4  # (2 sets) x (2 languages)
    assert len(sendgrid.seen) == 4  # one request per rendering: blocks travel as substitutions
    assert report.for_you_ranked == 20 + 14
    korean_mail = next(d for d in sendgrid.delivered if d.to == "reader100@example.com")
    assert "나를 위한 논문" in korean_mail.html


def test_preview_of_a_subscriber_shows_their_block(delivery_services: Services, tmp_path) -> None:
    from newsletter.preview import preview

    svc = delivery_services
    ids = readers(svc)
    files = preview(
        svc,
        SAMPLE_DATE,
        tmp_path,
        svc.taxonomy.slugs,
        "en",
        collect_if_empty=False,
        subscriber_id=ids["text"],
    )
    html = next(p for p in files if p.suffix == ".html").read_text("utf-8")
    text = next(p for p in files if p.suffix == ".txt").read_text("utf-8")
    assert "For you" in html and MANIPULATION in html[: html.index("Today at a glance")]
    assert "For you" in text
    plain = preview(svc, SAMPLE_DATE, tmp_path / "plain", None, "en", collect_if_empty=False)
    html = next(p for p in plain if p.suffix == ".html").read_text("utf-8")
    assert "tell us your interests" in html and "For you" not in html
