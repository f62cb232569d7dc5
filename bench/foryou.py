"""How well "For you" finds a reader's topic: precision@5 on a generated day.

python -m bench.foryou [--papers-per-topic 200] [--readers 3000]
python -m bench.foryou --send [--send-readers 100000] [--sets 20] [--latency 0.3]

The day (``bench.foryou_day``) has ten known topics in six categories; every reader
describes one topic in words its titles never use, by free text, liked papers, or
both, and picks two categories (their topic's and another). Precision@5 is the share
of a reader's five picks that are of their topic (a missing pick counts as a miss),
averaged over readers. Target from the issue: >= 0.8 offline. With
NEWSLETTER_EMBEDDING_MODEL set (and NEWSLETTER_LLM_API_BASE/_KEY as for the LLM), the
same day is ranked with embeddings too and that figure printed beside it.
``--send`` measures a whole send with "For you" blocks instead (``bench.foryou_send``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.foryou_day import TOPICS, Reader, day, readers

TARGET = 0.8
BATCH = 1000


def interests_of(people: Sequence[Reader]) -> dict[int, Any]:
    from subscribers.interests import Interests, LikedPaper, digest_of

    out: dict[int, Any] = {}
    for n, person in enumerate(people):
        liked = tuple(LikedPaper(t, a) for t, a in person.liked)
        out[n] = Interests(person.text, liked, digest_of(person.text, liked))
    return out


def allowed_of(people: Sequence[Reader]) -> dict[int, set[str]]:
    slugs = sorted({t.slug for t in TOPICS.values()})
    out: dict[int, set[str]] = {}
    for n, person in enumerate(people):
        own = TOPICS[person.topic].slug
        other = slugs[(slugs.index(own) + 1 + n) % len(slugs)]
        out[n] = {own, other}
    return out


def precision(
    picks: Mapping[int, Sequence[Any]], people: Sequence[Reader], topic_of: Mapping[str, str]
) -> dict[str, float]:
    """Mean precision@5 overall and per kind of reader (text, library, both)."""
    groups: dict[str, list[float]] = {"all": [], "text": [], "library": [], "both": []}
    for n, person in enumerate(people):
        hits = sum(topic_of[p.paper_id] == person.topic for p in picks.get(n, [])[:5])
        kind = "both" if person.text and person.liked else "text" if person.text else "library"
        groups["all"].append(hits / 5)
        groups[kind].append(hits / 5)
    return {k: sum(v) / len(v) for k, v in groups.items() if v}


def rank_all(
    day_: Any, interests: dict[int, Any], allowed: dict[int, set[str]], vectors: Any
) -> dict[int, Any]:
    ids = sorted(interests)
    picks: dict[int, Any] = {}
    for start in range(0, len(ids), BATCH):
        batch = {i: interests[i] for i in ids[start : start + BATCH]}
        picks.update(day_.rank(batch, allowed, vectors=vectors))
    return picks


def embedded(papers: Sequence[Any], interests: Mapping[int, Any]) -> Any:
    """Vectors of every text through the configured embedding model (None: not configured)."""
    import numpy as np

    from newsletter.foryou import paper_text, reader_texts
    from newsletter.foryou_vectors import connection
    from newsletter.settings import load_settings

    settings = load_settings()
    if not settings.embedding_model:
        return None
    from newsletter.llm import embed

    wanted = [paper_text(p) for p in papers]
    wanted += [t for i in interests.values() for t in reader_texts(i)]
    texts = list(dict.fromkeys(wanted))
    vectors: dict[str, Any] = {}
    size = settings.embedding_batch_size
    for start in range(0, len(texts), size):
        batch = texts[start : start + size]
        answer = embed(
            settings.embedding_model,
            batch,
            timeout=settings.llm_timeout,
            connection=connection(settings),
        )
        vectors.update(zip(batch, np.asarray(answer.vectors, dtype=np.float32), strict=True))
    return vectors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers-per-topic", type=int, default=200)
    parser.add_argument("--readers", type=int, default=3000)
    parser.add_argument(
        "--send", action="store_true", help="the send at scale instead (bench.foryou_send)"
    )
    parser.add_argument("--send-readers", type=int, default=100_000)
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument(
        "--without-interests", action="store_true", help="--send with nobody's interests"
    )
    args = parser.parse_args(argv)
    if args.send:
        from bench.foryou_send import run

        some = not args.without_interests
        if not run(args.send_readers, args.sets, args.latency, args.papers_per_topic, some):
            raise SystemExit(1)
        return

    from newsletter.foryou import Day

    papers, categories, topic_of = day(args.papers_per_topic)
    people = readers(args.readers)
    interests, allowed = interests_of(people), allowed_of(people)
    print(
        f"bench.foryou: {len(papers):,} papers in {len(TOPICS)} topics, {len(people):,} readers "
        "(a third text, a third liked papers, a third both), two categories each"
    )
    start = time.perf_counter()
    offline = Day(papers, categories)
    built = time.perf_counter() - start
    start = time.perf_counter()
    picks = rank_all(offline, interests, allowed, None)
    ranked = time.perf_counter() - start
    figures = precision(picks, people, topic_of)
    verdict = "ok" if figures["all"] >= TARGET else "MISSED"
    print(
        f"offline (BM25)   precision@5 {figures['all']:.3f} (text {figures['text']:.3f}, "
        f"library {figures['library']:.3f}, both {figures['both']:.3f}); target >= {TARGET}: "
        f"{verdict}"
    )
    print(
        f"offline (BM25)   day matrix built in {built:.2f} s; {len(people):,} readers ranked "
        f"in {ranked:.2f} s ({len(people) / ranked:,.0f} readers/s, batches of {BATCH})"
    )
    vectors = embedded(papers, interests)
    if vectors is None:
        print("embeddings       not measured: NEWSLETTER_EMBEDDING_MODEL is not set")
    else:
        print(f"embeddings       {len(vectors):,} texts embedded")
        dense = Day(papers, categories, vectors)
        figures = precision(rank_all(dense, interests, allowed, vectors), people, topic_of)
        print(
            f"embeddings       precision@5 {figures['all']:.3f} (text {figures['text']:.3f}, "
            f"library {figures['library']:.3f}, both {figures['both']:.3f})"
        )
    if verdict != "ok":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
