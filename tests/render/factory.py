"""Hand-made digests for render tests: no database, no feed, no model.

``digest(...)`` builds a Digest from literal papers and reports so each test says
exactly what goes in. ``big_digest`` makes a realistic day of many papers with
LLM-style Korean reports (markdown, citations) for the size limit.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from newsletter.categories import Taxonomy, load_taxonomy
from newsletter.models import (
    CategoryReport,
    CategorySection,
    Digest,
    NotablePaper,
    Paper,
    ReaderView,
)
from newsletter.render import Links

DATE = dt.date(2024, 11, 22)
BASE_URL = "https://news.example.org"
ARCHIVE_URL = f"{BASE_URL}/issues/{DATE.isoformat()}"
LINKS = Links(archive_url=ARCHIVE_URL)


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@lru_cache(maxsize=1)
def tiny_png() -> bytes:
    """A real 4x2 PNG, so MIME and browser tests handle an actual image."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 2), "#4c78a8").save(out, format="PNG")
    return out.getvalue()


def paper(
    n: int,
    *,
    title: str | None = None,
    authors: Sequence[str] = ("Ana Ruiz", "Bo Chen", "Chidi Okafor"),
    announce_type: str = "new",
    abs_url: str | None = None,
) -> Paper:
    arxiv_id = f"2411.{10000 + n:05d}"
    return Paper(
        arxiv_id=arxiv_id,
        title=title if title is not None else f"Paper number {n} on sparse attention",
        abstract=f"We study topic {n}. It improves accuracy by {n % 40 + 1}%.",
        authors=tuple(authors),
        announced=DATE,
        primary_class="cs.LG",
        announce_type=announce_type,
        abs_url=abs_url if abs_url is not None else f"https://arxiv.org/abs/{arxiv_id}",
    )


def report(
    slug: str,
    papers: Sequence[Paper],
    *,
    themes: Sequence[str] = ("sparse attention", "long context"),
    keywords: Sequence[str] = ("attention", "kv cache"),
    findings: Sequence[str] | None = None,
    notable_line: str = "A new way to cache keys.",
    conclusion: str = "Attention keeps getting cheaper.",
    language: str = "en",
) -> CategoryReport:
    return CategoryReport(
        slug=slug,
        language=language,
        themes=tuple(themes),
        keywords=tuple(keywords),
        findings=tuple(findings if findings is not None else ["Halves the cache."]),
        notable=tuple(NotablePaper(p.arxiv_id, notable_line) for p in papers[:3]),
        conclusion=conclusion,
        covered=len(papers),
        total=len(papers),
    )


def section(slug: str, papers: Sequence[Paper], **report_fields: Any) -> CategorySection:
    """A section of ``papers``; ``report_fields`` are ``report``'s keyword arguments."""
    return CategorySection(slug, tuple(papers), report(slug, papers, **report_fields))


def digest(
    sections: Sequence[CategorySection], *, language: str = "en", made_with: str = "offline"
) -> Digest:
    ids = {p.arxiv_id for s in sections for p in s.papers}
    return Digest(
        date=DATE,
        language=language,
        sections=tuple(sections),
        chart_png=tiny_png(),
        made_with=made_with,
        paper_count=len(ids),
    )


def simple_digest(slugs: Sequence[str] = ("nlp", "computer-vision", "llm")) -> Digest:
    """One small section per slug, three papers each (distinct ids)."""
    sections = [
        section(slug, [paper(10 * i + k) for k in range(3)]) for i, slug in enumerate(slugs)
    ]
    return digest(sections)


def view(*slugs: str, language: str = "en") -> ReaderView:
    return ReaderView(taxonomy().order(slugs), language)


_WORDS = [
    "희소",
    "어텐션",
    "긴",
    "문맥",
    "추론",
    "효율",
    "양자화",
    "증류",
    "정렬",
    "안전성",
    "멀티모달",
    "에이전트",
    "검색",
    "증강",
    "생성",
    "벤치마크",
    "데이터셋",
    "로봇",
    "제어",
    "강화",
    "학습",
    "보상",
    "모델",
    "평가",
    "확장",
    "법칙",
    "메모리",
    "캐시",
]
_TITLE_WORDS = [
    "Scalable",
    "Sparse",
    "Attention",
    "for",
    "Long-Context",
    "Language",
    "Models",
    "with",
    "Retrieval",
    "Augmented",
    "Generation",
    "Benchmarks",
    "Efficient",
    "Quantization",
    "Distillation",
    "Alignment",
    "Safety",
    "Multimodal",
    "Agents",
    "Reinforcement",
    "Learning",
    "from",
    "Human",
    "Feedback",
    "Robust",
    "Evaluation",
]


def _korean_sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)) + "."


def big_digest(total: int = 300, seed: int = 3) -> Digest:
    """A heavy day: ``total`` papers over every category (some in two), long Korean LLM reports."""
    rng = random.Random(seed)
    slugs = taxonomy().slugs
    papers = [
        paper(
            n,
            title=" ".join(rng.choice(_TITLE_WORDS) for _ in range(rng.randint(8, 16))),
            authors=[f"Author{n} Lastname{k}" for k in range(rng.randint(1, 9))],
            announce_type=rng.choice(["new", "new", "new", "cross", "replace"]),
        )
        for n in range(total)
    ]
    members: dict[str, list[Paper]] = {slug: [] for slug in slugs}
    for n, p in enumerate(papers):
        members[slugs[n % len(slugs)]].append(p)
        if n % 4 == 0:
            members[rng.choice(slugs)].append(p)
    sections = []
    for slug, ps in members.items():
        ps = list(dict.fromkeys(ps))
        sections.append(
            CategorySection(
                slug,
                tuple(ps),
                CategoryReport(
                    slug=slug,
                    language="ko",
                    themes=tuple(_korean_sentence(rng, 3) for _ in range(6)),
                    keywords=tuple(rng.choice(_WORDS) for _ in range(8)),
                    findings=tuple(
                        f"**{rng.choice(_WORDS)}**: {_korean_sentence(rng, 22)} [{p.arxiv_id}]"
                        for p in ps[:5]
                    ),
                    notable=tuple(
                        NotablePaper(p.arxiv_id, _korean_sentence(rng, 20)) for p in ps[:5]
                    ),
                    conclusion=" ".join(_korean_sentence(rng, 18) for _ in range(4)),
                    covered=min(len(ps), 40),
                    total=len(ps),
                ),
            )
        )
    return digest(sections, language="ko", made_with="openai/gpt-4o-mini")
