"""Whether a line a model wrote is a paper's title or abstract copied.

A report's notable lines, and the last rung's notes, must say in the model's own words
what is new; a small model often hands back the title or a sentence of the abstract.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from newsletter.models import Paper

#: Share of a line found word for word in its paper's abstract that makes it a copy.
COPY_SHARE = 0.8
_ARXIV_ID = re.compile(r"(?:arXiv:)?((?:\d{4}\.\d{4,5})|(?:[a-z][a-z.\-]*/\d{7}))(?:v\d+)?", re.I)


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", _ARXIV_ID.sub(" ", text).lower()).split())


def copied_from(line: str, source: str, share: float = COPY_SHARE) -> bool:
    """True when ``share`` of ``line`` stands word for word in ``source``."""
    mine, theirs = _normal(line), _normal(source)
    if not mine or not theirs:
        return False
    match = SequenceMatcher(None, mine, theirs, autojunk=False).find_longest_match(
        0, len(mine), 0, len(theirs)
    )
    return match.size >= share * len(mine)


def copies(line: str, paper: Paper) -> bool:
    """True when ``line`` is the paper's title or a stretch of its abstract, near word for word."""
    mine = _normal(line)
    if len(mine) < 20:
        return False
    title = _normal(paper.title)
    if SequenceMatcher(None, mine, title, autojunk=False).ratio() >= 0.85:
        return True
    return copied_from(line, paper.abstract)
