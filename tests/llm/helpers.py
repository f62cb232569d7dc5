"""Small builders shared by the LLM tests."""

from __future__ import annotations

import datetime as dt

from newsletter.models import Paper

DAY = dt.date(2024, 11, 22)


def paper(arxiv_id: str, title: str, abstract: str = "", cls: str = "cs.CL") -> Paper:
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract or f"We study {title.lower()}. It improves accuracy by 12%.",
        authors=("Ada Lovelace",),
        announced=DAY,
        primary_class=cls,
        classes=(cls,),
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
    )


def day_of(count: int) -> list[Paper]:
    """``count`` generated papers announced on DAY (the bench's generator)."""
    from bench.generate import papers

    return papers(count, DAY)
