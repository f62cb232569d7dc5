"""A generated day with known topics, and readers who each describe one of them.

Each topic has title words and abstract words. Titles use only the title words; a
reader's interests use only abstract words that no title of that topic uses (the
issue's "in words that differ from the titles'"), in sentences padded with the words
people write around topics ("I follow work on ..."). Abstracts also carry filler every
paper shares and a word or two of another topic, and topics in one category share
words (two kinds of diffusion, two kinds of agents), so a lexical match has to weigh
terms, not just find one.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from newsletter.models import Paper

DATE = dt.date(2024, 11, 22)


@dataclass(frozen=True)
class Topic:
    slug: str  # its category
    title: tuple[str, ...]
    abstract: tuple[str, ...]
    #: The arXiv class its papers are announced in (the send benchmark's rules sort by it).
    arxiv: str = ""
    #: Words a reader may use that no paper of the day contains (they match nothing).
    unseen: tuple[str, ...] = ()


TOPICS: dict[str, Topic] = {
    "protein": Topic(
        "ai-for-science",
        ("protein", "folding", "structure", "prediction", "biology"),
        ("residue", "amino", "acid", "backbone", "conformation", "binding", "enzyme", "sequence"),
        "physics.comp-ph",
        ("biochemistry", "proteomics", "biophysics"),
    ),
    "weather": Topic(
        "ai-for-science",
        ("weather", "forecasting", "climate", "global", "atmosphere"),
        ("precipitation", "reanalysis", "cyclone", "temperature", "ensemble", "meteorological"),
        "physics.data-an",
        ("meteorology", "nowcasting", "hydrology"),
    ),
    "image-gen": Topic(
        "computer-vision",
        ("image", "synthesis", "generation", "visual", "editing"),
        ("denoising", "latent", "pixel", "text-to-image", "sampler", "guidance", "diffusion"),
        "cs.CV",
        ("artwork", "photorealism", "creative"),
    ),
    "detection": Topic(
        "computer-vision",
        ("object", "detection", "segmentation", "scene", "open-vocabulary"),
        ("bounding", "boxes", "instance", "mask", "lidar", "anchors", "pedestrian"),
        "eess.IV",
        ("perception", "surveillance", "localisation"),
    ),
    "grasping": Topic(
        "robotics",
        ("robot", "manipulation", "grasping", "dexterous", "hands"),
        ("gripper", "tactile", "teleoperation", "demonstrations", "pick", "place", "contact"),
        "cs.RO",
        ("grippers", "handling", "warehouse"),
    ),
    "locomotion": Topic(
        "robotics",
        ("legged", "locomotion", "quadruped", "terrain", "walking"),
        ("gait", "sim-to-real", "torque", "actuator", "stairs", "policy", "balance"),
        "cs.MA",
        ("animals", "biped", "hiking"),
    ),
    "tokenizer": Topic(
        "nlp",
        ("tokenization", "vocabulary", "multilingual", "subword", "text"),
        ("byte", "pair", "encoding", "morphology", "script", "compression", "languages"),
        "cs.CL",
        ("linguistics", "unicode", "scripts"),
    ),
    "agents": Topic(
        "llm",
        ("agents", "tool", "planning", "autonomous", "workflows"),
        ("api", "calls", "browser", "web", "function", "calling", "trajectory", "policy"),
        "cs.LO",
        ("automation", "assistants", "orchestration"),
    ),
    "alignment": Topic(
        "llm",
        ("alignment", "preference", "feedback", "reward", "safety"),
        ("human", "raters", "rlhf", "dpo", "pairwise", "comparisons", "harmless", "helpful"),
        "cs.CY",
        ("ethics", "values", "annotators"),
    ),
    "privacy": Topic(
        "security",
        ("privacy", "attack", "membership", "inference", "leakage"),
        ("differential", "epsilon", "noise", "federated", "clients", "gradient", "memorization"),
        "cs.CR",
        ("confidentiality", "anonymity", "gdpr"),
    ),
}
_FILLER_TEXT = (
    "we propose a novel method and show that it outperforms strong baselines on several "
    "benchmarks while using fewer resources experiments demonstrate consistent improvements "
    "code and models are released the approach is simple general and scales to large "
    "settings analysis reveals when it helps and when it fails"
)
FILLER = tuple(_FILLER_TEXT.split())
#: Sentences around a reader's words, with the generic words every abstract has too.
AROUND = [
    "I follow work on {a} and {b}, especially {c} methods that scale.",
    "Interested in {a}, {b} and anything about {c}; new benchmarks welcome.",
    "My research: {a} with {b}; I read papers on {c} and large models.",
    "Send me papers about {a}, {b}, or {c}, simple approaches that improve results.",
]


def _abstract(rng: random.Random, topic: Topic) -> str:
    others = [t for t in TOPICS.values() if t is not topic]
    siblings = [t for t in others if t.slug == topic.slug]
    words = rng.sample(topic.abstract, 3) + rng.sample(topic.title, 2)
    # Words of other topics: as many as of its own, half of them from its category.
    for _ in range(3):
        pool = siblings if siblings and rng.random() < 0.5 else others
        words.append(rng.choice(rng.choice(pool).abstract))
    words += rng.sample(FILLER, 18)
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def day(
    papers_per_topic: int = 200, seed: int = 7
) -> tuple[list[Paper], dict[str, list[str]], dict[str, str]]:
    """(papers, paper id -> categories, paper id -> topic) of one generated day."""
    rng = random.Random(seed)
    papers: list[Paper] = []
    categories: dict[str, list[str]] = {}
    topic_of: dict[str, str] = {}
    n = 0
    for name, topic in TOPICS.items():
        for _ in range(papers_per_topic):
            n += 1
            arxiv_id = f"2411.{n:05d}"
            title = " ".join(rng.sample(topic.title, 3)).capitalize()
            authors = (f"Author {n}", "Second Author") if n % 3 else (f"Author {n}",)
            papers.append(
                Paper(
                    arxiv_id,
                    title,
                    _abstract(rng, topic),
                    authors,
                    DATE,
                    primary_class=topic.arxiv,
                    classes=(topic.arxiv,),
                    abs_url=f"https://arxiv.org/abs/{arxiv_id}",
                )
            )
            categories[arxiv_id] = [topic.slug]
            topic_of[arxiv_id] = name
    rng.shuffle(papers)
    return papers, categories, topic_of


@dataclass(frozen=True)
class Reader:
    topic: str
    text: str
    liked: tuple[tuple[str, str], ...]  # (title, abstract)


def readers(count: int, seed: int = 11) -> list[Reader]:
    """``count`` readers, one topic each: a third write text, a third bring liked papers
    (titled in the topic's abstract words, unlike the day's titles), a third both."""
    rng = random.Random(seed)
    names = list(TOPICS)
    out: list[Reader] = []
    for n in range(count):
        name = names[n % len(names)]
        topic = TOPICS[name]
        spoken = [w for w in topic.abstract if w not in topic.title]
        a, b = rng.sample(spoken, 2)
        c = rng.choice(topic.unseen)
        text = rng.choice(AROUND).format(a=a, b=b, c=c) if n % 3 != 1 else ""
        liked: tuple[tuple[str, str], ...] = ()
        if n % 3 != 0:
            liked = tuple(
                (
                    " ".join([*rng.sample(spoken, 2), rng.choice(topic.unseen)]).capitalize(),
                    " ".join(rng.sample(spoken, 3) + rng.sample(FILLER, 12)),
                )
                for _ in range(rng.randint(1, 4))
            )
        out.append(Reader(name, text, liked))
    return out
