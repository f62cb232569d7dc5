"""Untrusted text -> values that are safe to put into the e-mail templates.

Titles and authors come from feeds, report text from an LLM; neither is trusted.
Feed text is cleaned (control and bidi-override characters removed, whitespace
collapsed, length capped) and then escaped by Jinja's autoescape. Report text is
markdown, so it goes through markdown-it-py with raw HTML disabled: any tag a model
writes becomes visible text, never markup. Images and links are disabled too: a
model's answer (which papers' abstracts can steer) never adds remote content, a
tracking pixel or a link; the only links in a report are the citations that
``newsletter.render`` adds for papers of the section.

A ``Rich`` value renders as that HTML in the .mjml.j2 template (Jinja calls
``__html__``) and as its cleaned source text in the plain-text template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

#: C0/C1 controls except tab and newline, and the bidi embeddings, overrides and
#: isolates that could flip the direction of text after a title (U+202A-E, U+2066-9).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_HTTP_URL = re.compile(r"^https?://", re.IGNORECASE)
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
#: Block tokens that get dir="auto", so right-to-left text lays out on its own.
_DIRECTIONAL = frozenset(
    ("paragraph_open", "bullet_list_open", "ordered_list_open", "heading_open", "blockquote_open")
)


def clean_block(text: str) -> str:
    """Multi-line text with LF line ends and no control or bidi-override characters."""
    return _CONTROLS.sub("", _LINE_BREAKS.sub("\n", text))


def clean_line(text: str, limit: int | None = None) -> str:
    """One line: cleaned, whitespace collapsed, cut to ``limit`` characters with an ellipsis."""
    line = " ".join(clean_block(text).split())
    if limit is not None and len(line) > limit:
        return line[: limit - 1].rstrip() + "…"
    return line


def safe_url(url: str) -> str:
    """``url`` when it is an absolute http(s) link, else an empty string (no link)."""
    url = clean_line(url)
    return url if _HTTP_URL.match(url) else ""


def safe_colour(value: str, default: str = "#888888") -> str:
    """A #rgb/#rrggbb colour from the taxonomy file, or ``default``: it lands in a style."""
    return value if _HEX_COLOUR.match(value) else default


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable(["image", "link", "autolink"])
    return md


@dataclass(frozen=True)
class Rich:
    """Report text as both safe HTML (``__html__``) and cleaned source text (``str``)."""

    text: str
    html: str

    def __html__(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.text


def markdown_inline(text: str) -> Rich:
    """One line of a list (a theme, a finding): inline markdown only.

    Block syntax stays literal, so a line that starts with "1." or "#" is not
    turned into a list or a heading inside a list item.
    """
    line = clean_line(text)
    return Rich(line, _parser().renderInline(line))


def markdown_block(text: str) -> Rich:
    """A paragraph or more (the conclusion): lists and emphasis kept, headings demoted to h4."""
    source = clean_block(text).strip()
    md = _parser()
    tokens = md.parse(source)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = "h4"
        if token.type in _DIRECTIONAL:
            token.attrSet("dir", "auto")
    return Rich(source, md.renderer.render(tokens, md.options, {}))
