"""Hostile feed and model text: it must stay text, never markup, and never break the layout.

Each hostile string goes everywhere paper or model text can go (title, authors,
every report part, the model name). The rendering is parsed and compared with a
rendering of harmless text of the same length: the same elements with the same
attributes must come out, and the hostile string must be readable as text.
"""

from __future__ import annotations

import re

import pytest

from newsletter.categories import Category, Taxonomy
from newsletter.models import CategoryReport, CategorySection, Digest, NotablePaper
from newsletter.render import render_issue
from tests.render.factory import LINKS, digest, paper, taxonomy, view
from tests.render.htmlcheck import parse, visible_text

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "img-onerror": '<img src=x onerror="alert(1)">',
    "mjml-close": "</mj-text></mj-column></mj-section><mj-raw><b>x</b></mj-raw>",
    "jinja": "{{ 7*7 }} {% if true %}yes{% endif %} {# hidden #}",
    "percent": "100% of %s and %(name)s and {0} {name}",
    "emoji": "🤖🧠 Robots 👩‍🔬 learn 🇰🇷",
    "rtl": "מודל שפה גדול נموذج لغوي \u202eevil override\u202c after",
    "long-word": "A" * 10_000,
    "crlf": "Line one\r\nLine two\rLine three\r\n\r\nNext",
    "llm-html": (
        '<div style="position:fixed;top:0">Click</div><a href="javascript:alert(1)">x</a>'
        "<style>body{display:none}</style><iframe src=//evil></iframe>"
    ),
    "attribute-break": '" onmouseover="alert(1)" x="',
    "entities": "&lt;b&gt;bold&lt;/b&gt; &amp;amp; &#60;script&#62;",
    "markdown-tricks": "[click](javascript:alert(1)) ![pixel](https://track.example/p.png)",
}


def _digest(text: str) -> Digest:
    papers = [
        paper(1, title=text, authors=(text, "Bo Chen")),
        paper(2, title=f"Second {text}", authors=(text,)),
    ]
    report = CategoryReport(
        slug="nlp",
        language="en",
        themes=(text,),
        keywords=(text, "kv cache"),
        findings=(text, f"{text} [2411.10001]"),
        notable=tuple(NotablePaper(p.arxiv_id, text) for p in papers),
        conclusion=text,
        covered=2,
        total=2,
    )
    return digest([CategorySection("nlp", tuple(papers), report)], made_with=text)


def _harmless(text: str) -> str:
    """Same length and line structure, nothing but letters."""
    return re.sub(r"\S", "b", text)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_stays_text(name: str) -> None:
    text = HOSTILE[name]
    rendered = render_issue(_digest(text), view("nlp"), taxonomy(), LINKS)
    reference = render_issue(_digest(_harmless(text)), view("nlp"), taxonomy(), LINKS)
    doc = parse(rendered.html)
    assert doc.shape() == parse(reference.html).shape()
    assert not doc.find("script") and not doc.find("iframe")
    assert len(doc.find("img")) == 1  # the chart, nothing else
    for element in doc.elements:
        assert not [a for a in element.attrs if a.startswith("on")], element
    for href in doc.hrefs():
        assert href.startswith(("https://", "#", "NLPH")), href
    assert "\u202e" not in rendered.html and "\u202e" not in rendered.text
    assert "\r" not in rendered.text


@pytest.mark.parametrize(
    "name",
    ["script", "img-onerror", "mjml-close", "jinja", "percent", "attribute-break", "llm-html"],
)
def test_hostile_markup_is_readable_as_text(name: str) -> None:
    text = HOSTILE[name]
    rendered = render_issue(_digest(text), view("nlp"), taxonomy(), LINKS)
    assert text in visible_text(rendered.html)
    # The text twin wraps long lines at 78 characters: compare the words.
    assert " ".join(text.split()) in " ".join(rendered.text.split())


def test_entities_are_shown_as_written_in_titles() -> None:
    rendered = render_issue(_digest(HOSTILE["entities"]), view("nlp"), taxonomy(), LINKS)
    assert "&lt;b&gt;bold&lt;/b&gt;" in visible_text(rendered.html)
    assert all(e.text != "bold" for e in parse(rendered.html).find("b"))


def test_long_words_are_capped_in_titles_and_wrap_elsewhere() -> None:
    rendered = render_issue(_digest(HOSTILE["long-word"]), view("nlp"), taxonomy(), LINKS)
    doc = parse(rendered.html)
    title_links = [e.text for e in doc.find("a", **{"class": "st"})]
    assert title_links and all(len(t) <= 300 for t in title_links)
    text_cells = [  # every mj-text cell (the contents table's cells have no align)
        e for e in doc.find("td") if "tx" in e.attrs.get("class", "").split() and "align" in e.attrs
    ]
    assert text_cells
    assert all("word-break:break-word" in e.attrs["style"].replace(" ", "") for e in text_cells)
    assert ".pg td div { word-break: keep-all; overflow-wrap: anywhere; }" in rendered.html


def test_crlf_never_splits_a_title_line_in_the_text_part() -> None:
    rendered = render_issue(_digest(HOSTILE["crlf"]), view("nlp"), taxonomy(), LINKS)
    assert "  [1] Line one Line two Line three Next\n" in rendered.text


def test_hostile_taxonomy_values_cannot_style_or_inject() -> None:
    hostile = Category(
        slug="nlp",
        emoji="<b>!</b>",
        names={"en": "<i>Names</i> & co"},
        description="",
        arxiv_classes=(),
        keywords=(),
        color="red;position:fixed;background:url(https://evil/x)",
    )
    tax = Taxonomy((hostile, *[c for c in taxonomy().categories if c.slug != "nlp"]))
    rendered = render_issue(_digest("plain"), view("nlp"), tax, LINKS)
    doc = parse(rendered.html)
    assert not doc.find("i") and "<i>Names</i> & co" in visible_text(rendered.html)
    styles = " ".join(e.attrs.get("style", "") for e in doc.elements)
    assert "evil" not in styles and "position:fixed" not in styles
    assert "#888888" in styles
