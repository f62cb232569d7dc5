"""A small known day and readers for the For-you tests: three topics, two papers each."""

from __future__ import annotations

import datetime as dt

from newsletter.models import Paper
from subscribers.interests import Interests, LikedPaper, digest_of

DATE = dt.date(2024, 11, 22)


def paper(n: int, title: str, abstract: str, slug: str) -> tuple[Paper, str]:
    arxiv_id = f"2411.{n:05d}"
    authors = ("Ada Lovelace", "Alan Turing") if n % 2 else ("Grace Hopper",)
    return Paper(arxiv_id, title, abstract, authors, DATE, abs_url=""), slug


ROWS = [
    paper(
        1,
        "Folding proteins with score models",
        "Diffusion over residue coordinates predicts protein structure.",
        "bio",
    ),
    paper(
        2,
        "Generative chemistry at scale",
        "A diffusion model designs protein binders and small molecules.",
        "bio",
    ),
    paper(
        3,
        "Learning to grasp",
        "A robot arm learns dexterous grasping from human demonstrations.",
        "robotics",
    ),
    paper(
        4,
        "Legged locomotion in the wild",
        "Quadruped robots walk over rough terrain with reinforcement learning.",
        "robotics",
    ),
    paper(
        5,
        "Tokenizers revisited",
        "Byte pair encoding and vocabulary size for multilingual language models.",
        "nlp",
    ),
    paper(
        6,
        "Long context evaluation",
        "Benchmarks for retrieval in long documents by language models.",
        "nlp",
    ),
]
PAPERS = [p for p, _ in ROWS]
CATEGORIES = {p.arxiv_id: [slug] for p, slug in ROWS}


def interests(text: str = "", papers: tuple[LikedPaper, ...] = ()) -> Interests:
    return Interests(text, papers, digest_of(text, papers))
