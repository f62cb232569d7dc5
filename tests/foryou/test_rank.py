"""Ranking a small known day: right papers, right order, reasons, scope, nothing forced."""

from __future__ import annotations

import numpy as np

from newsletter.foryou import Day, rank_day
from subscribers.interests import LikedPaper
from tests.foryou.day import CATEGORIES, PAPERS, interests


def ids(picks):
    return [p.paper_id for p in picks]


def test_text_interests_rank_their_topic_first_with_the_matched_words():
    readers = {
        1: interests("Protein structure prediction with diffusion"),
        2: interests("robots that walk and grasp objects"),
    }
    picks = rank_day(PAPERS, CATEGORIES, readers, allowed=None)
    assert set(ids(picks[1])[:2]) == {"2411.00001", "2411.00002"}
    assert set(ids(picks[2])[:2]) == {"2411.00003", "2411.00004"}
    first = picks[1][0]
    assert first.category == "bio"
    # The reader's own words, as they wrote them (not stems), most weighty first.
    assert set(first.terms) <= {"protein", "structure", "prediction", "diffusion"}
    assert "prediction" in picks[1][0].terms or "prediction" in picks[1][1].terms  # "predicts"
    assert first.reason == "matches: " + ", ".join(first.terms)
    assert first.url == f"https://arxiv.org/abs/{first.paper_id}"
    assert picks[1][0].score >= picks[1][-1].score


def test_bylines_and_at_most_k_picks():
    picks = rank_day(
        PAPERS,
        CATEGORIES,
        {1: interests("models learning language robots protein")},
        allowed=None,
        k=3,
    )[1]
    assert len(picks) == 3
    bylines = {p.paper_id: p.byline for p in picks}
    for paper in PAPERS:
        if paper.arxiv_id in bylines:
            expected = "Ada Lovelace et al." if len(paper.authors) > 1 else "Grace Hopper"
            assert bylines[paper.arxiv_id] == expected


def test_only_the_chosen_categories_unless_scope_is_all():
    readers = {1: interests("protein diffusion language models")}
    chosen = rank_day(PAPERS, CATEGORIES, readers, allowed={1: {"nlp"}})[1]
    assert chosen and all(p.category == "nlp" for p in chosen)
    everything = rank_day(PAPERS, CATEGORIES, readers, allowed=None)[1]
    assert {p.category for p in everything} >= {"bio", "nlp"}


def test_nothing_above_zero_means_no_picks():
    readers = {1: interests("quantum chromodynamics lattice gauge"), 2: interests("")}
    picks = rank_day(PAPERS, CATEGORIES, readers, allowed=None)
    assert picks == {1: [], 2: []}
    # Papers match, but none in the reader's categories.
    picks = rank_day(PAPERS, CATEGORIES, {3: interests("protein")}, allowed={3: {"nlp"}})
    assert picks == {3: []}


def test_a_liked_paper_drives_the_reason():
    liked = (
        LikedPaper("Dexterous manipulation from demonstrations", "A robot arm grasping objects."),
        LikedPaper("Byte pair encoding", "Tokenization of text."),
    )
    picks = rank_day(PAPERS, CATEGORIES, {1: interests("", liked)}, allowed=None)[1]
    first = picks[0]
    assert first.paper_id == "2411.00003"
    assert first.near == "Dexterous manipulation from demonstrations"
    assert first.reason == "close to your paper: Dexterous manipulation from demonstrations"
    assert first.terms == ()
    tokenizer = next(p for p in picks if p.paper_id == "2411.00005")
    assert tokenizer.near == "Byte pair encoding"


def test_text_and_library_both_count():
    liked = (LikedPaper("Quadruped locomotion", "Legged robots walking on rough terrain."),)
    picks = rank_day(
        PAPERS, CATEGORIES, {1: interests("multilingual tokenizers", liked)}, allowed=None
    )[1]
    assert set(ids(picks)[:2]) == {"2411.00004", "2411.00005"}
    reasons = {p.paper_id: p for p in picks}
    assert reasons["2411.00004"].near == "Quadruped locomotion"
    assert reasons["2411.00005"].terms and not reasons["2411.00005"].near


def test_one_day_many_batches_same_answer():
    readers = {i: interests(t) for i, t in enumerate(["protein", "robot", "language models"])}
    day = Day(PAPERS, CATEGORIES)
    together = day.rank(readers)
    apart = {i: day.rank({i: readers[i]})[i] for i in readers}
    assert together == apart


def test_embeddings_rank_by_cosine():
    """Vectors stand in for a model: each topic is one axis; readers near one axis."""
    axis = {"bio": 0, "robotics": 1, "nlp": 2}
    vectors = {}
    for paper in PAPERS:
        v = np.zeros(3, dtype=np.float32)
        v[axis[CATEGORIES[paper.arxiv_id][0]]] = 1.0
        v[(axis[CATEGORIES[paper.arxiv_id][0]] + 1) % 3] = 0.1 * int(paper.arxiv_id[-1])
        from newsletter.foryou import paper_text

        vectors[paper_text(paper)] = v
    # Words that share nothing with the papers: only the vectors can place them.
    vectors["wet lab biology"] = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    liked = LikedPaper("Manipulators", "")
    vectors["Manipulators"] = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    readers = {1: interests("wet lab biology"), 2: interests("", (liked,))}
    picks = Day(PAPERS, CATEGORIES, vectors).rank(readers, vectors=vectors)
    assert set(ids(picks[1])[:2]) == {"2411.00001", "2411.00002"}
    assert picks[1][0].reason == "close to your interests"
    assert set(ids(picks[2])[:2]) == {"2411.00003", "2411.00004"}
    assert picks[2][0].near == "Manipulators"
