"""Author lists as publishers write them, turned into one clean name per author.

arXiv's RSS puts every author in one ``<dc:creator>``, separated by commas and
"and", with affiliations in parentheses after a name, sometimes nested
(``A. Bee (Dept. of X (Y Lab), Univ. Z, Chennai, India), C. Dee``). A comma
inside parentheses separates parts of an affiliation, not authors, so the
splitter tracks nesting and drops what is parenthesised. The old RSS 1.0 format
wraps each name in an HTML link; Atom has one ``<author>`` per author.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from newsletter.sources.base import MAX_AUTHOR, cap, fold

_SIMPLE_SPLIT = re.compile(r"\s*[,;]\s*(?:and\s+)?|\s+and\s+")
_TAGS = re.compile(r"<[^>]*>")
_AND = re.compile(r"\s+and\s+")
_ET_AL = re.compile(r"(?:^|\s+)et\.?\s+al\.?$", re.I)
_NOT_NAMES = frozenset(("and", "others"))
_OPEN = "(["
_CLOSE = ")]"


def clean_name(raw: Any) -> str:
    """One author's name: markup, entities and parenthesised affiliations removed."""
    text = fold(raw)
    if "<" in text or "&" in text:
        text = fold(html.unescape(_TAGS.sub(" ", text)))
    if "(" in text or "[" in text:
        # A bracket left unclosed (a feed that cut an affiliation short) ends the name.
        text = fold(_drop_bracketed(text)).split("(")[0].split("[")[0]
    text = _ET_AL.sub("", text.strip(" ,;"))
    return cap(text, MAX_AUTHOR)[0] if text.lower() not in _NOT_NAMES else ""


def _matched(text: str) -> set[int]:
    """Positions of brackets that have a partner; a stray one is kept as text."""
    stack: list[int] = []
    matched: set[int] = set()
    for index, char in enumerate(text):
        if char in _OPEN:
            stack.append(index)
        elif char in _CLOSE and stack and _OPEN.index(text[stack[-1]]) == _CLOSE.index(char):
            matched.update((stack.pop(), index))
    return matched


def _drop_bracketed(text: str) -> str:
    """``text`` without its (balanced, possibly nested) bracketed parts."""
    matched = _matched(text)
    depth = 0
    kept: list[str] = []
    for index, char in enumerate(text):
        if index in matched:
            depth += 1 if char in _OPEN else -1
            kept.append(" ")
        elif depth == 0:
            kept.append(char)
    return "".join(kept)


def split_authors(raw: Any) -> tuple[str, ...]:
    """A comma/"and"-separated author string as a tuple of names (affiliations dropped)."""
    text = fold(raw)
    plain = True
    if "<" in text or "&" in text:
        text = fold(html.unescape(_TAGS.sub(" ", text)))
        plain = False
    if "(" in text or "[" in text:
        text = _drop_bracketed(text)
        plain = False
    parts = _SIMPLE_SPLIT.split(text)
    # Not deduplicated: two authors may share a name.
    if plain and " al" not in text and "others" not in text:
        # The common case (a plain list), kept cheap: a 2,000-item feed has 10,000 names.
        return tuple(p if len(p) <= MAX_AUTHOR else cap(p, MAX_AUTHOR)[0] for p in parts if p)
    names = (clean_name(part) for part in parts)
    return tuple(name for name in names if name)


def names_of(authors: Iterable[Any]) -> tuple[str, ...]:
    """Names from feedparser's ``authors`` list (one dict per Atom ``<author>``).

    An element whose name is itself a list ("A and B", or several commas, as some
    RSS feeds write it into one author) is split; "Doe, Jane" stays one name.
    """
    found: list[str] = []
    for author in authors:
        name = author.get("name") if isinstance(author, dict) else author
        text = fold(name)
        if _AND.search(text) or text.count(",") > 1:
            found.extend(split_authors(text))
        elif cleaned := clean_name(text):
            found.append(cleaned)
    return tuple(found)


def entry_authors(entry: Any, atom: bool = False) -> tuple[str, ...]:
    """A feedparser entry's authors: every Atom ``<author>``, or RSS creators split.

    feedparser's ``author`` holds only the first Atom author; ``authors`` holds them
    all. An RSS item usually has one ``<dc:creator>`` listing everyone.
    """
    authors = entry.get("authors") or []
    if atom or len(authors) > 1:
        return names_of(authors)
    return split_authors(entry.get("author", ""))
