"""A reader's interests: stored, kept part by part, bounded, hashed, read in bulk, erased."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from newsletter.app import Services
from newsletter.errors import InterestsError, InvalidInputError
from subscribers import readers
from subscribers.interests import (
    INTERESTS,
    MAX_PAPERS,
    MAX_TEXT,
    Interests,
    LikedPaper,
    clear_interests,
    digest_of,
    get_interests,
    interests_for,
    set_interests,
)
from subscribers.signup import purge_unconfirmed, request_subscription


def reader(services: Services, email: str = "r@example.com") -> int:
    return readers.add_active(services.engine, services.taxonomy, email, ["nlp"], "en").id


def test_set_and_get_keep_each_part_until_it_is_given(services: Services) -> None:
    rid = reader(services)
    assert get_interests(services.engine, rid) is None
    got = set_interests(services.engine, rid, text="  diffusion models\r\nfor proteins  ")
    assert got.text == "diffusion models\nfor proteins" and got.papers == ()
    papers = [LikedPaper("Attention  Is\nAll You Need", "We propose the Transformer.")]
    both = set_interests(services.engine, rid, papers=papers)
    assert both.text == got.text  # text=None kept the text
    assert both.papers == (LikedPaper("Attention Is All You Need", "We propose the Transformer."),)
    assert get_interests(services.engine, rid) == both
    only_papers = set_interests(services.engine, rid, text="")
    assert only_papers.text == "" and only_papers.papers == both.papers
    assert not only_papers.is_empty()


def test_the_digest_changes_exactly_when_the_interests_do(services: Services) -> None:
    rid = reader(services)
    first = set_interests(services.engine, rid, text="graph neural networks")
    again = set_interests(services.engine, rid, text=" graph neural networks\n")
    assert again.digest == first.digest == digest_of("graph neural networks", ())
    changed = set_interests(services.engine, rid, text="graph neural networks, chemistry")
    assert changed.digest != first.digest and len(changed.digest) == 64
    kinds = [e.kind for e in readers.events(services.engine, rid)]
    assert kinds.count("interests") == 2  # the unchanged repeat is not recorded


def test_too_long_text_and_too_many_papers_change_nothing(services: Services) -> None:
    rid = reader(services)
    kept = set_interests(services.engine, rid, text="robotics", papers=[LikedPaper("A")])
    with pytest.raises(InterestsError, match="1,001 characters; shorten it to 1,000") as exc:
        set_interests(services.engine, rid, text="x" * (MAX_TEXT + 1), papers=[])
    assert isinstance(exc.value, InvalidInputError)
    too_many = [LikedPaper(f"Paper {n}") for n in range(MAX_PAPERS + 1)]
    with pytest.raises(InterestsError, match="501 liked papers is too many; keep 500"):
        set_interests(services.engine, rid, text="", papers=too_many)
    assert get_interests(services.engine, rid) == kept
    exactly = set_interests(services.engine, rid, text="y" * MAX_TEXT, papers=too_many[:-1])
    assert len(exactly.text) == MAX_TEXT and len(exactly.papers) == MAX_PAPERS


def test_papers_are_cleaned_deduplicated_and_bounded(services: Services) -> None:
    rid = reader(services)
    got = set_interests(
        services.engine,
        rid,
        papers=[
            LikedPaper("Deep\x00 Learning", "a" * 9000),
            LikedPaper("deep   learning", "the published version"),
            LikedPaper("   ", "no title"),
            LikedPaper("한국어 논문", ""),
        ],
    )
    assert [p.title for p in got.papers] == ["Deep Learning", "한국어 논문"]
    assert len(got.papers[0].abstract) == 5000


def test_empty_interests_are_cleared_and_clear_is_idempotent(services: Services) -> None:
    rid = reader(services)
    set_interests(services.engine, rid, text="speech", papers=[LikedPaper("Whisper")])
    emptied = set_interests(services.engine, rid, text="", papers=[])
    assert emptied.is_empty() and get_interests(services.engine, rid) is None
    set_interests(services.engine, rid, text="speech")
    clear_interests(services.engine, rid)
    clear_interests(services.engine, rid)
    assert get_interests(services.engine, rid) is None
    details = [e.detail for e in readers.events(services.engine, rid) if e.kind == "interests"]
    assert details == [
        "text 6 characters, 1 papers",
        "cleared",
        "text 6 characters, 0 papers",
        "cleared",
    ]
    assert not any("speech" in d or "Whisper" in d for d in details)  # sizes only


def test_an_unknown_reader_is_a_clear_error(services: Services) -> None:
    with pytest.raises(InterestsError, match="no reader with id 999"):
        set_interests(services.engine, 999, text="vision")
    clear_interests(services.engine, 999)


def test_interests_for_many_readers_returns_only_those_with_some(services: Services) -> None:
    ids = [reader(services, f"r{n}@example.com") for n in range(4)]
    set_interests(services.engine, ids[0], text="vision")
    set_interests(services.engine, ids[2], papers=[LikedPaper("NeRF", "radiance fields")])
    wanted = {ids[0]: "vision", ids[2]: ""}
    got = interests_for(services.engine, ids)
    assert {k: v.text for k, v in got.items()} == wanted
    assert got[ids[2]].papers == (LikedPaper("NeRF", "radiance fields"),)
    assert interests_for(services.engine, []) == {}
    # A day's send asks for more ids than an IN list should hold: one read of the table.
    many = [*ids, *range(10_000, 12_000)]
    assert interests_for(services.engine, many) == got
    assert interests_for(services.engine, [ids[0], *range(10_000, 12_000)]).keys() == {ids[0]}


def test_interests_go_with_the_reader(services: Services) -> None:
    req = request_subscription(services.engine, services.taxonomy, "new@example.com", ["nlp"], "en")
    set_interests(services.engine, req.subscriber_id, text="private words")
    with services.engine.begin() as conn:  # the sign-up is now old enough to purge
        conn.execute(
            sa.text("UPDATE subscribers SET created_at = :t"),
            {"t": dt.datetime.now(dt.UTC) - dt.timedelta(days=30)},
        )
    assert purge_unconfirmed(services.engine, dt.timedelta(days=7)) == 1
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(INTERESTS)).scalar() == 0


def test_as_json_holds_the_readers_data() -> None:
    got = Interests("t", (LikedPaper("A", "b"),), "d").as_json()
    assert got == {"text": "t", "papers": [{"title": "A", "abstract": "b"}], "digest": "d"}


@pytest.mark.parametrize("leave", ["remove", "unsubscribe", "bounced", "complained"])
def test_a_reader_who_leaves_loses_their_interests(services: Services, leave: str) -> None:
    rid = reader(services)
    set_interests(services.engine, rid, text="private words", papers=[LikedPaper("Mine")])
    if leave == "remove":
        readers.unsubscribe_address(services.engine, "r@example.com", source="cli")
    elif leave == "unsubscribe":
        readers.unsubscribe(services.engine, rid, source="one-click")
    else:
        readers.set_status(services.engine, rid, leave, "webhook")
    assert get_interests(services.engine, rid) is None
    with pytest.raises(InterestsError, match="no interests are kept for a reader who gets no mail"):
        set_interests(services.engine, rid, text="again")
    paused = reader(services, "p@example.com")
    set_interests(services.engine, paused, text="kept while paused")
    readers.pause(services.engine, paused)
    assert get_interests(services.engine, paused) is not None
