"""Synthetic but realistic inputs for benchmarks: a day of N arXiv papers, N readers."""

from __future__ import annotations

import datetime as dt
import random

from newsletter.models import Paper

_TOPICS = [
    ("cs.CL", "language model", "We study large language models for retrieval and translation."),
    ("cs.CV", "image segmentation", "We segment images and video with a vision transformer."),
    ("cs.CR", "adversarial attack", "We show a backdoor attack and a defence for privacy."),
    ("cs.LG", "neural network", "We analyse sparse mixture of experts and scaling laws."),
    ("cs.RO", "reinforcement learning", "A robot policy learns from reward in simulation."),
    ("cs.AI", "reasoning", "Chain-of-thought reasoning with tree search solves math problems."),
    ("stat.ML", "generalization", "We bound the generalization error of neural networks."),
    ("cs.CY", "fairness", "We audit fairness and bias of deployed models for policy."),
]


def papers(count: int, date: dt.date = dt.date(2024, 11, 22), seed: int = 7) -> list[Paper]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        cls, topic, sentence = rng.choice(_TOPICS)
        arxiv_id = f"2411.{20000 + i:05d}"
        out.append(
            Paper(
                arxiv_id=arxiv_id,
                title=f"A {rng.choice(['fast', 'robust', 'open'])} study of {topic}, number {i}",
                abstract=f"{sentence} Our method improves accuracy by {rng.randint(1, 40)}%. "
                + " ".join(
                    rng.choice(["data", "model", "results", "benchmark"]) for _ in range(60)
                ),
                authors=tuple(f"Author {i}-{k}" for k in range(rng.randint(1, 6))),
                announced=date,
                primary_class=cls,
                classes=(cls, rng.choice(_TOPICS)[0]),
                abs_url=f"https://arxiv.org/abs/{arxiv_id}",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
                source="bench",
            )
        )
    return out
