"""The manage page's block: the latest classified issue ranked for one reader, read only."""

from __future__ import annotations

from newsletter.app import Services
from newsletter.foryou_today import block_for
from subscribers.interests import set_interests
from tests.delivery.conftest import add_readers
from tests.foryou.test_send import MANIPULATION


def test_a_readers_block_of_the_latest_issue(delivery_services: Services) -> None:
    svc = delivery_services
    every, nlp_only, none = add_readers(svc, 3, (svc.taxonomy.slugs, ("nlp",), ("nlp",)))
    for sid in (every, nlp_only):
        set_interests(svc.engine, sid, text="tactile sensing for dexterous robot hands")
    block = block_for(svc.engine, svc.settings, every)
    assert block is not None and block.picks[0].title == MANIPULATION
    assert MANIPULATION in block.html and MANIPULATION in " ".join(block.text.split())
    assert 'href="#interests"' in block.html  # the manage page's own form
    # Only their categories: the robotics paper is not among an NLP reader's picks...
    narrow = block_for(svc.engine, svc.settings, nlp_only)
    assert narrow is None or all(p.title != MANIPULATION for p in narrow.picks)
    # ...unless the operator widened the scope.
    wide = svc.settings.model_copy(update={"for_you_scope": "all"})
    widened = block_for(svc.engine, wide, nlp_only)
    assert widened is not None and widened.picks[0].title == MANIPULATION
    assert block_for(svc.engine, svc.settings, none) is None  # no interests, no block
    assert block_for(svc.engine, svc.settings, 10_000) is None  # no such reader


def test_no_classified_issue_no_block(services: Services) -> None:
    (sid,) = add_readers(services, 1, (services.taxonomy.slugs,))
    set_interests(services.engine, sid, text="tactile sensing")
    assert block_for(services.engine, services.settings, sid) is None
