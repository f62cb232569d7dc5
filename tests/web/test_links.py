"""Confirm, manage and unsubscribe links: what each does, and every bad token."""

from __future__ import annotations

import dataclasses
import datetime as dt

import httpx2
import time_machine
from itsdangerous import URLSafeTimedSerializer
from sqlmodel import Session

from newsletter.app import Services
from subscribers import readers, recipients
from subscribers.models import Subscriber
from subscribers.tokens import Signer
from subscribers.web_texts import web_texts
from tests.web.conftest import Web, link_path, make_web, title_of

#: Error pages for a link are in the default language (ko): a bad link names no reader.
KO = web_texts("ko")
INVALID = KO["token_title"]


def _pending(web: Web, email: str = "p@example.com") -> tuple[int, str]:
    """A pending reader and the path of their confirm link."""
    web.subscribe(email, ["nlp", "llm"], "en")
    reader = web.reader(email)
    assert reader is not None and reader.status == "pending"
    return reader.id, link_path(web.backend.outbox[-1], "confirm")


def _bad_tokens(web: Web, good: str, subscriber_id: int) -> dict[str, str]:
    """Tampered, truncated and wrong-purpose versions of ``good`` (a token, not a path)."""
    payload, stamp, signature = good.split(".")
    other_payload = web.svc.signer.sign(subscriber_id + 1, "manage").split(".")[0]
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    return {
        "tampered-signature": f"{payload}.{stamp}.{flipped}",
        "tampered-payload": f"{other_payload}.{stamp}.{signature}",
        "truncated": good[: len(good) // 2],
        "garbage": "not-a-token",
        "wrong-purpose": web.svc.signer.sign(subscriber_id, "unsubscribe"),
        "foreign-key": Signer("another-secret").sign(subscriber_id, "manage"),
    }


# -- confirm ------------------------------------------------------------------------------


def test_confirm_get_shows_a_button_and_changes_nothing(web: Web) -> None:
    _, path = _pending(web)
    page = web.client.get(path)
    assert page.status_code == 200 and title_of(page) == "Confirm your subscription"
    assert "Natural Language Processing" in page.text and 'method="post"' in page.text
    web.client.get(path)
    reader = web.reader("p@example.com")
    assert reader is not None and reader.status == "pending"


def test_confirm_post_activates_and_records_the_source(web: Web) -> None:
    subscriber_id, path = _pending(web)
    response = web.confirm(path)
    assert response.status_code == 200 and title_of(response) == "You&#39;re subscribed"
    assert "/manage/" in response.text
    reader = web.reader("p@example.com")
    assert reader is not None and reader.status == "active"
    trail = [(e.kind, e.detail, e.source) for e in readers.events(web.svc.engine, subscriber_id)]
    assert trail[0] == ("status", "new->pending", "web")
    assert ("status", "pending->active", "web") in trail
    again = web.confirm(path)
    assert again.status_code == 400 and title_of(again) == KO["used_title"]
    assert len(readers.events(web.svc.engine, subscriber_id)) == len(trail)


def test_confirm_without_csrf_changes_nothing(web: Web) -> None:
    _, path = _pending(web)
    web.client.get(path)
    assert web.client.post(path, data={}).status_code == 403
    reader = web.reader("p@example.com")
    assert reader is not None and reader.status == "pending"


def test_bad_confirm_tokens_change_nothing_and_reveal_nothing(web: Web) -> None:
    subscriber_id, path = _pending(web)
    for kind, bad in _bad_tokens(web, path.rsplit("/", 1)[1], subscriber_id).items():
        shown = web.client.get(f"/confirm/{bad}")
        pressed = web.client.post(f"/confirm/{bad}", data={"csrf_token": web.csrf()})
        for response in (shown, pressed):
            assert response.status_code == 400 and title_of(response) == INVALID, kind
            assert "p@example.com" not in response.text
    reader = web.reader("p@example.com")
    assert reader is not None and reader.status == "pending"


def test_expired_confirm_link(web: Web) -> None:
    web.subscribe("late@example.com")
    reader = web.reader("late@example.com")
    assert reader is not None
    nonce = _nonce(web, reader.id)
    with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(days=8), tick=False):
        old = web.svc.signer.sign(reader.id, "confirm", nonce)
    with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(days=6), tick=False):
        recent = web.svc.signer.sign(reader.id, "confirm", nonce)
    expired = web.client.post(f"/confirm/{old}", data={"csrf_token": web.csrf()})
    assert expired.status_code == 400 and title_of(expired) == KO["expired_title"]
    assert "late@example.com" not in expired.text
    assert web.client.get(f"/confirm/{old}").status_code == 400
    after = web.reader("late@example.com")
    assert after is not None and after.status == "pending"
    assert web.confirm(f"/confirm/{recent}").status_code == 200  # 6 days old still works


def _nonce(web: Web, subscriber_id: int) -> str:
    with Session(web.svc.engine) as session:
        row = session.get(Subscriber, subscriber_id)
        assert row is not None
        return row.confirm_nonce


def test_old_confirm_link_cannot_revive_an_unsubscribed_reader(web: Web) -> None:
    subscriber_id, path = _pending(web)
    assert web.confirm(path).status_code == 200
    assert web.client.post(web.unsubscribe_path(subscriber_id)).status_code == 200
    replay = web.confirm(path)
    assert replay.status_code == 400
    reader = web.reader("p@example.com")
    assert reader is not None and reader.status == "unsubscribed"
    # A new request makes a new link; the old one still does not work.
    web.subscribe("p@example.com")
    assert web.confirm(path).status_code == 400
    assert web.confirm(link_path(web.backend.outbox[-1], "confirm")).status_code == 200


def test_links_survive_secret_key_rotation(services: Services) -> None:
    old = make_web(services)
    subscriber_id, confirm = _pending(old)
    manage = old.manage_path(subscriber_id)
    rotated = dataclasses.replace(
        services,
        signer=Signer("a-brand-new-secret", [services.settings.secret_key]),
        settings=services.settings.model_copy(
            update={
                "secret_key": "a-brand-new-secret",
                "old_secret_keys": [services.settings.secret_key],
            }
        ),
    )
    new = make_web(rotated)
    assert new.confirm(confirm).status_code == 200
    assert new.client.get(manage).status_code == 200
    dropped = make_web(
        dataclasses.replace(rotated, signer=Signer("a-brand-new-secret")),
    )
    assert dropped.client.get(manage).status_code == 400


def test_signing_by_hand_makes_the_tokens_itsdangerous_makes() -> None:
    """A send signs two links per reader, so ``Signer.sign`` signs an id itself: byte for
    byte what itsdangerous's serializer makes (an id it would compress included), and
    every token verifies."""
    signer = Signer("the-new-key", ["an-old-key"])
    ids = (1, 42, 99_999, 1_000_000, 2**40, 1_111_111_111_111_111_111, 2**63 - 1)
    with time_machine.travel(dt.datetime(2026, 11, 20, 8, 0, 0, tzinfo=dt.UTC), tick=False):
        for purpose in ("manage", "unsubscribe", "confirm"):
            keys = ["an-old-key", "the-new-key"]
            serializer = URLSafeTimedSerializer(keys, salt=f"newsletter.{purpose}")
            for subscriber_id in ids:
                token = signer.sign(subscriber_id, purpose)
                assert token == serializer.dumps(subscriber_id)
                assert signer.unsign(token, purpose) == subscriber_id


# -- manage -------------------------------------------------------------------------------


def test_manage_page_shows_the_choices_and_changes_nothing(web: Web) -> None:
    reader = web.subscribe_and_confirm("m@example.com", ["nlp", "llm"], "en")
    page = web.client.get(web.manage_path(reader.id))
    assert page.status_code == 200 and title_of(page) == "Your subscription"
    flat = page.text.replace("\n", "")
    assert "m@example.com" in flat
    assert 'value="nlp" checked' in flat and 'value="llm" checked' in flat
    assert 'value="physics">' in flat
    assert '<option value="en" selected>' in flat
    assert web.reader("m@example.com") == reader


def _manage(web: Web, subscriber_id: int, **data: object) -> httpx2.Response:
    path = web.manage_path(subscriber_id)
    return web.client.post(path, data={"csrf_token": web.csrf(), **data})


def test_manage_saves_categories_and_language(web: Web) -> None:
    reader = web.subscribe_and_confirm("m@example.com", ["nlp", "llm"], "en")
    response = _manage(web, reader.id, action="save", categories=["physics", "nlp"], language="ko")
    assert response.status_code == 200
    assert "변경 사항을 저장했습니다" in response.text
    after = web.reader("m@example.com")
    assert after is not None and after.categories == ("nlp", "physics") and after.language == "ko"
    trail = readers.events(web.svc.engine, reader.id)
    assert trail[-1].kind == "preferences" and trail[-1].source == "web"
    assert "categories: nlp,llm -> nlp,physics" in trail[-1].detail
    assert "language: en -> ko" in trail[-1].detail


MANAGE_BAD_INPUT: list[tuple[dict[str, object], str]] = [
    ({"action": "save", "categories": [], "language": "en"}, "Choose at least one category"),
    (
        {"action": "save", "categories": ["nlp", "horoscopes"], "language": "en"},
        "Unknown category: horoscopes",
    ),
    ({"action": "save", "categories": ["nlp"], "language": "klingon"}, "Unknown language"),
    ({"action": "delete-everything"}, "Unknown action"),
]


def test_manage_bad_input_changes_nothing(web: Web) -> None:
    reader = web.subscribe_and_confirm("m@example.com", ["llm"], "en")
    before = readers.events(web.svc.engine, reader.id)
    for data, message in MANAGE_BAD_INPUT:
        response = _manage(web, reader.id, **data)
        assert response.status_code == 400 and message in response.text, message
    assert web.reader("m@example.com") == reader
    assert readers.events(web.svc.engine, reader.id) == before


def test_pause_and_resume(web: Web) -> None:
    reader = web.subscribe_and_confirm("m@example.com")
    paused = _manage(web, reader.id, action="pause")
    assert "Deliveries are paused" in paused.text
    assert 'value="resume"' in paused.text
    assert (web.reader("m@example.com") or reader).status == "paused"
    assert list(recipients.active_recipients(web.svc.engine)) == []
    _manage(web, reader.id, action="resume")
    assert (web.reader("m@example.com") or reader).status == "active"
    details = [e.detail for e in readers.events(web.svc.engine, reader.id) if e.kind == "status"]
    assert details[-2:] == ["active->paused", "paused->active"]


def test_unsubscribe_from_the_manage_page(web: Web) -> None:
    reader = web.subscribe_and_confirm("m@example.com")
    response = _manage(web, reader.id, action="unsubscribe")
    assert response.status_code == 200
    assert title_of(response) == "You&#39;re unsubscribed"
    assert (web.reader("m@example.com") or reader).status == "unsubscribed"


def test_manage_without_csrf_changes_nothing(web: Web) -> None:
    reader = web.subscribe_and_confirm("m@example.com", ["llm"])
    path = web.manage_path(reader.id)
    for data in ({"action": "unsubscribe"}, {"action": "save", "categories": ["nlp"]}):
        assert web.client.post(path, data=data).status_code == 403
    assert web.reader("m@example.com") == reader


def test_bad_manage_tokens_change_nothing_and_reveal_nothing(web: Web) -> None:
    reader = web.subscribe_and_confirm("m@example.com", ["llm"])
    good = web.manage_path(reader.id).rsplit("/", 1)[1]
    for kind, bad in _bad_tokens(web, good, reader.id).items():
        shown = web.client.get(f"/manage/{bad}")
        posted = web.client.post(
            f"/manage/{bad}", data={"csrf_token": web.csrf(), "action": "unsubscribe"}
        )
        for response in (shown, posted):
            assert response.status_code == 400 and title_of(response) == INVALID, kind
            assert "m@example.com" not in response.text
    assert web.reader("m@example.com") == reader


def test_a_token_for_an_id_that_does_not_exist_looks_like_any_bad_link(web: Web) -> None:
    page = web.client.get(web.manage_path(4242))
    assert page.status_code == 400 and title_of(page) == INVALID
    assert web.client.post(web.unsubscribe_path(4242)).status_code == 400


def test_manage_page_of_an_unsubscribed_reader_offers_to_subscribe_again(web: Web) -> None:
    reader = web.subscribe_and_confirm("m@example.com", ["llm"])
    readers.unsubscribe(web.svc.engine, reader.id)
    page = web.client.get(web.manage_path(reader.id))
    assert page.status_code == 200 and "This address is not subscribed" in page.text
    assert 'name="action"' not in page.text
    resume = _manage(web, reader.id, action="resume")
    save = _manage(web, reader.id, action="save", categories=["nlp"], language="en")
    assert resume.status_code == save.status_code == 409
    after = web.reader("m@example.com")
    assert after is not None and after.status == "unsubscribed" and after.categories == ("llm",)


# -- unsubscribe --------------------------------------------------------------------------


def test_unsubscribe_get_is_a_one_button_page(web: Web) -> None:
    reader = web.subscribe_and_confirm("leave@example.com")
    page = web.client.get(web.unsubscribe_path(reader.id))
    assert page.status_code == 200 and title_of(page) == "Unsubscribe"
    assert page.text.count("<button") == 1 and "l***@example.com" in page.text
    assert "csrf_token" not in page.text
    assert (web.reader("leave@example.com") or reader).status == "active"


def test_one_click_post_works_without_cookies_or_csrf(web: Web) -> None:
    reader = web.subscribe_and_confirm("leave@example.com")
    path = web.unsubscribe_path(reader.id)
    provider = make_web(web.svc).client  # a mail provider: no cookie, never saw a page
    response = provider.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 200 and title_of(response) == "You&#39;re unsubscribed"
    assert "set-cookie" not in response.headers
    assert (web.reader("leave@example.com") or reader).status == "unsubscribed"
    last = readers.events(web.svc.engine, reader.id)[-1]
    assert (last.kind, last.detail, last.source) == ("status", "active->unsubscribed", "one-click")
    again = provider.post(path, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
    assert again.status_code == 200
    assert readers.events(web.svc.engine, reader.id)[-1] == last  # idempotent, no new event


def test_one_click_post_as_multipart(web: Web) -> None:
    reader = web.subscribe_and_confirm("leave@example.com")
    response = make_web(web.svc).client.post(
        web.unsubscribe_path(reader.id),
        files={"List-Unsubscribe": (None, "One-Click")},
        follow_redirects=False,
    )
    assert response.status_code == 200
    assert readers.events(web.svc.engine, reader.id)[-1].source == "one-click"


def test_button_post_is_recorded_as_web(web: Web) -> None:
    reader = web.subscribe_and_confirm("leave@example.com")
    assert web.client.post(web.unsubscribe_path(reader.id)).status_code == 200
    assert readers.events(web.svc.engine, reader.id)[-1].source == "web"


def test_bad_unsubscribe_tokens_change_nothing(web: Web) -> None:
    reader = web.subscribe_and_confirm("stay@example.com")
    good = web.unsubscribe_path(reader.id).rsplit("/", 1)[1]
    tokens = _bad_tokens(web, good, reader.id)
    # For an unsubscribe link the wrong purpose is a manage token.
    tokens["wrong-purpose"] = web.svc.signer.sign(reader.id, "manage")
    for kind, bad in tokens.items():
        for response in (
            web.client.get(f"/unsubscribe/{bad}"),
            web.client.post(f"/unsubscribe/{bad}", data={"List-Unsubscribe": "One-Click"}),
        ):
            assert response.status_code == 400 and title_of(response) == INVALID, kind
            assert "stay@example.com" not in response.text
    assert web.reader("stay@example.com") == reader


def test_unsubscribe_link_of_a_gone_reader_shows_the_done_page(web: Web) -> None:
    reader = web.subscribe_and_confirm("gone@example.com")
    readers.unsubscribe(web.svc.engine, reader.id)
    page = web.client.get(web.unsubscribe_path(reader.id))
    assert page.status_code == 200 and title_of(page) == "You&#39;re unsubscribed"


def test_signed_links_with_ids_beyond_64_bits_answer_400(web: Web) -> None:
    """As found: a validly signed link carrying an oversized id answered 500."""
    signer = web.svc.signer
    for subscriber_id in (2**63, 2**64, 10**30, 0, -1):
        manage = signer.sign(subscriber_id, "manage")
        unsubscribe = signer.sign(subscriber_id, "unsubscribe")
        confirm = signer.sign(subscriber_id, "confirm", "nonce")
        for response in (
            web.client.get(f"/manage/{manage}"),
            web.client.get(f"/unsubscribe/{unsubscribe}"),
            web.client.post(f"/unsubscribe/{unsubscribe}"),
            web.client.post(f"/unsubscribe/{unsubscribe}", data={"List-Unsubscribe": "One-Click"}),
            web.client.get(f"/confirm/{confirm}"),
        ):
            assert response.status_code == 400, (subscriber_id, response.request.url)
