"""The "For you" block: what it shows, in both languages, and nothing hostile gets through."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from newsletter.categories import load_taxonomy
from newsletter.foryou import Pick, rank_day
from newsletter.foryou_block import BUDGET, invitation, nothing_today, render_block
from subscribers.interests import LikedPaper
from tests.foryou.day import CATEGORIES, PAPERS, interests

MANAGE = "https://news.example.org/manage/tok1"
HOSTILE = '<script>alert(1)</script> "quoted" {{ manage_url }} NLPHMANAGEURL0123abcd &amp;'


class Tags(HTMLParser):
    """Every start tag and attribute of a fragment, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    tags.close()
    return tags


def pick(**changes: object) -> Pick:
    values: dict[str, object] = {
        "paper_id": "2411.00001",
        "title": "Folding proteins",
        "url": "https://arxiv.org/abs/2411.00001",
        "byline": "Ada Lovelace et al.",
        "category": "nlp",
        "reason": "matches: protein",
        "terms": ("protein",),
    }
    values.update(changes)
    return Pick(**values)  # type: ignore[arg-type]


def test_the_block_shows_each_pick_linked_with_byline_category_and_why():
    taxonomy = load_taxonomy(None)
    picks = rank_day(
        PAPERS,
        {k: ["nlp"] for k in CATEGORIES},
        {1: interests("protein diffusion", (LikedPaper("Grasping robots", "robot arm"),))},
        allowed=None,
    )[1]
    block = render_block(picks, taxonomy, "en", MANAGE)
    assert block is not None and block.picks == tuple(picks)
    tags = parsed(block.html)
    links = [a["href"] for tag, a in tags.tags if tag == "a"]
    assert [p.url for p in picks] == links[1:]
    assert links[0] == f"{MANAGE}#interests"
    shown = "".join(tags.text)
    assert "For you" in shown and "Tune your interests" in shown
    nlp = taxonomy.get("nlp").name("en")
    for p in picks:
        assert p.title in shown and f"{p.byline} · {taxonomy.get('nlp').emoji} {nlp}" in shown
        assert p.title in block.text and p.url in block.text.split()
    assert "Matches: protein, diffusion" in shown or "Matches: diffusion, protein" in shown
    assert "Close to your paper: Grasping robots" in shown
    assert "Close to your paper: Grasping robots" in block.text
    assert all(len(line) <= 78 or "://" in line for line in block.text.splitlines())
    # Every style is inline: the shell's premailer never sees the fragment.
    assert all("style" in attrs for tag, attrs in tags.tags if tag in ("a", "li", "h2"))


def test_korean_labels():
    block = render_block([pick(near="단백질 접힘")], load_taxonomy(None), "ko", MANAGE)
    assert block is not None
    assert "나를 위한 논문" in block.html and "내 논문과 비슷함: 단백질 접힘" in block.html
    assert "관심사 조정" in block.text


def test_no_picks_no_block_and_the_lines_instead():
    assert render_block([], load_taxonomy(None), "en", MANAGE) is None
    html, text = invitation("en", MANAGE)
    assert f'href="{MANAGE}#interests"' in html and "tell us your interests" in html
    assert f"{MANAGE}#interests" in text.split()
    html, text = nothing_today("ko", MANAGE)
    assert "오늘은 관심사와 맞는 논문이 없습니다." in html and "관심사 조정" in text


@pytest.mark.parametrize("language", ["en", "ko"])
def test_hostile_titles_and_interests_are_text_never_markup(language: str):
    picks = [
        pick(title=HOSTILE, byline=HOSTILE, near=HOSTILE, url='https://x.example/"><script>'),
        pick(paper_id="2411.00002", title="Plain", terms=("script", "quoted"), url="javascript:x"),
    ]
    block = render_block(picks, load_taxonomy(None), language, MANAGE)
    assert block is not None
    tags = parsed(block.html)
    assert "script" not in {tag for tag, _ in tags.tags}
    assert all(not k.startswith("on") for _, attrs in tags.tags for k in attrs)
    hrefs = [a["href"] for tag, a in tags.tags if tag == "a"]
    assert "javascript:x" not in hrefs
    assert 'https://x.example/"><script>' in hrefs  # one attribute, escaped, not a tag
    shown = "".join(tags.text)
    assert HOSTILE in shown  # parsed back exactly as written: even "&amp;" stays text
    # The text twin carries the words as written (wrapped); nothing in it is a placeholder
    # of this rendering (those are made with a fresh random nonce) or a template.
    assert HOSTILE in " ".join(block.text.split()) and "javascript:x" not in block.text


def test_the_block_fits_sendgrids_substitution_limit():
    long = "Ж" * 400  # a non-ASCII character is six bytes as SendGrid counts it
    picks = [pick(paper_id=f"2411.0000{n}", title=long, near=long, byline=long) for n in range(5)]
    block = render_block(picks, load_taxonomy(None), "ko", MANAGE)
    assert block is not None and 1 <= len(block.picks) < 5
    assert len(json.dumps(block.html)) + len(json.dumps(block.text)) <= BUDGET
