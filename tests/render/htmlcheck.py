"""Reading rendered e-mails back with the standard library's HTML parser.

Tests never grep the HTML for markup: they parse it, so an injected tag or
attribute shows up as an element, and escaped text shows up as text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Parsed:
    elements: list[Element] = field(default_factory=list)
    text: str = ""
    comments: list[str] = field(default_factory=list)

    def find(self, tag: str, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.elements
            if e.tag == tag and all(e.attrs.get(k) == v for k, v in attrs.items())
        ]

    def shape(self) -> Counter[tuple[str, tuple[str, ...]]]:
        """Each element as (tag, its attribute names): the layout, regardless of text."""
        return Counter((e.tag, tuple(sorted(e.attrs))) for e in self.elements)

    @property
    def section_ids(self) -> list[str]:
        return [e.attrs["id"] for e in self.find("h2") if "id" in e.attrs]

    @property
    def toc_anchors(self) -> list[str]:
        return [
            e.attrs["href"][1:] for e in self.find("a") if e.attrs.get("href", "").startswith("#")
        ]

    def hrefs(self) -> list[str]:
        return [e.attrs["href"] for e in self.find("a") if "href" in e.attrs]

    def preheader(self) -> str:
        """The text of the first hidden block in the body: what inboxes show after the subject."""
        for e in self.elements:
            style = e.attrs.get("style", "").replace(" ", "")
            if e.tag == "div" and "display:none" in style:
                return e.text
        return ""


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parsed = Parsed()
        self._open: list[Element] = []
        self._text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.parsed.elements.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parsed.elements.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return
        self.errors.append(f"stray </{tag}>")

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        for element in self._open:
            element.text += data

    def handle_comment(self, data: str) -> None:
        self.parsed.comments.append(data)


def parse(html: str) -> Parsed:
    """Parse ``html``; fails on end tags that close nothing (a sign of broken layout)."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    assert not collector.errors, collector.errors[:5]
    collector.parsed.text = "".join(collector._text)
    return collector.parsed


def visible_text(html: str) -> str:
    """All text with whitespace collapsed (what a reader could see, plus hidden preheader)."""
    return re.sub(r"\s+", " ", parse(html).text)
