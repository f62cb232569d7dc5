"""The subscribe form: double opt-in, no enumeration, bad input, CSRF, rate limits."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from newsletter.app import Services
from newsletter.delivery.base import MailBackend, MessageBatch
from newsletter.errors import ConfigurationError, DeliveryError
from newsletter.models import SendResult
from subscribers import readers, recipients
from subscribers.csrf import COOKIE
from subscribers.web_app import create_app
from tests.web.conftest import Web, html_of, link_path, make_web, text_of, title_of


def test_form_lists_every_category_with_emoji_and_description(page_web: Web) -> None:
    page = page_web.client.get("/")
    assert page.status_code == 200
    assert '<html lang="ko">' in page.text  # the newsletter's default language
    for category in page_web.svc.taxonomy.categories:
        assert f'value="{category.slug}"' in page.text
        assert category.emoji in page.text and category.name("ko") in page.text
        assert category.description in page.text
    assert 'name="language"' in page.text and 'type="email"' in page.text


def test_language_by_query_then_accept_language(page_web: Web) -> None:
    assert '<html lang="en">' in page_web.client.get("/?lang=en").text
    hinted = page_web.client.get("/", headers={"Accept-Language": "en-US,en;q=0.9,ko;q=0.5"})
    assert '<html lang="en">' in hinted.text and "Subscribe" in hinted.text
    chosen = page_web.client.get("/?lang=ko", headers={"Accept-Language": "en"})
    assert '<html lang="ko">' in chosen.text
    unknown = page_web.client.get("/?lang=xx", headers={"Accept-Language": "fr, de;q=0.5"})
    assert unknown.status_code == 200 and '<html lang="ko">' in unknown.text


def test_new_address_gets_one_confirmation_mail_and_stays_pending(web: Web) -> None:
    response = web.subscribe(" New.Reader@Example.COM ", ["nlp", "llm"], "en")
    assert response.status_code == 200 and title_of(response) == "Check your inbox"
    reader = web.reader("new.reader@example.com")
    assert reader is not None and reader.status == "pending"
    assert reader.categories == ("nlp", "llm") and reader.language == "en"
    [mail] = web.backend.outbox
    assert mail["To"] == "new.reader@example.com"
    assert mail["Subject"] == "Confirm your Daily AI Insights subscription"
    path = link_path(mail, "confirm")
    assert path in html_of(mail)
    assert "Natural Language Processing" in text_of(mail)
    assert list(recipients.active_recipients(web.svc.engine)) == []  # nobody is mailed issues yet


def test_confirmation_mail_is_in_the_chosen_language(web: Web) -> None:
    web.subscribe("ko@example.com", ["nlp"], "ko")
    [mail] = web.backend.outbox
    assert mail["Subject"] == "Daily AI Insights 구독을 확인해 주세요"
    assert "자연어 처리" in text_of(mail)


def test_same_address_in_other_case_and_spaces_is_one_reader(web: Web) -> None:
    web.subscribe("Case@Example.com", ["nlp"])
    web.subscribe("  case@EXAMPLE.com  ", ["llm"])
    assert web.count() == 1
    first, second = web.backend.outbox
    # Both mails of the one outstanding request confirm it (the second choices win).
    assert web.confirm(link_path(first, "confirm")).status_code == 200
    reader = web.reader("CASE@example.com")
    assert reader is not None and reader.status == "active" and reader.categories == ("llm",)
    assert web.confirm(link_path(second, "confirm")).status_code == 400  # already used


def test_answer_is_identical_whatever_the_address_state(web: Web) -> None:
    """No enumeration: new, pending, active, paused and unsubscribed look the same."""
    active = web.subscribe_and_confirm("active@example.com")
    paused = web.subscribe_and_confirm("paused@example.com")
    readers.pause(web.svc.engine, paused.id)
    gone = web.subscribe_and_confirm("gone@example.com")
    readers.unsubscribe(web.svc.engine, gone.id)
    web.subscribe("pending@example.com")
    answers = [
        web.subscribe(email)
        for email in (
            "brand-new@example.com",
            "pending@example.com",
            "active@example.com",
            "paused@example.com",
            "gone@example.com",
        )
    ]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert len({tuple(sorted(a.headers.keys())) for a in answers}) == 1
    assert active.id  # an active reader's choices were not touched by the stranger's form
    reader = web.reader("active@example.com")
    assert reader is not None and reader.categories == ("nlp",)


def test_active_address_gets_its_manage_link_not_a_confirmation(web: Web) -> None:
    reader = web.subscribe_and_confirm("me@example.com", ["nlp", "llm"])
    web.subscribe("ME@example.com", ["physics"], "ko")
    mail = web.backend.outbox[-1]
    assert mail["Subject"] == "Your Daily AI Insights subscription"  # the reader's language
    path = link_path(mail, "manage")
    assert web.svc.signer.unsign(path.rsplit("/", 1)[1], "manage") == reader.id
    after = web.reader("me@example.com")
    assert after is not None and after.categories == ("nlp", "llm") and after.status == "active"


def test_unsubscribed_address_needs_a_new_confirmation(web: Web) -> None:
    reader = web.subscribe_and_confirm("back@example.com", ["nlp"])
    readers.unsubscribe(web.svc.engine, reader.id)
    web.subscribe("back@example.com", ["llm"])
    again = web.reader("back@example.com")
    assert again is not None and again.status == "unsubscribed"  # not mailed until confirmed
    assert web.confirm(link_path(web.backend.outbox[-1], "confirm")).status_code == 200
    again = web.reader("back@example.com")
    assert again is not None and again.status == "active" and again.categories == ("llm",)
    kinds = [(e.kind, e.detail, e.source) for e in readers.events(web.svc.engine, reader.id)]
    assert ("status", "unsubscribed->active", "web") in kinds


INVALID_ADDRESSES = [
    ("not-an-address", "Please enter a valid e-mail address"),
    ("", "Please enter a valid e-mail address"),
    ("two@@example.com", "Please enter a valid e-mail address"),
    ("a" * 400 + "@example.com", "That address is too long"),
]


def test_invalid_address_is_a_form_error_and_nothing_is_stored(web: Web) -> None:
    for email, message in INVALID_ADDRESSES:
        response = web.subscribe(email, ["nlp", "llm"])
        assert response.status_code == 400, email
        assert message in response.text, email
        assert 'value="llm" checked' in response.text.replace("\n", "")  # choices are kept
    assert web.count() == 0 and web.backend.outbox == []


def test_unknown_category_is_named_and_nothing_is_stored(web: Web) -> None:
    response = web.subscribe("x@example.com", ["nlp", "astrology"])
    assert response.status_code == 400
    assert "Unknown category: astrology" in response.text
    assert web.count() == 0 and web.backend.outbox == []


def test_no_category_or_unknown_language_is_a_form_error(web: Web) -> None:
    none = web.subscribe("x@example.com", [])
    assert none.status_code == 400 and "Choose at least one category" in none.text
    bad_language = web.subscribe("x@example.com", ["nlp"], language="xx")
    assert bad_language.status_code == 400
    assert "지원하지 않는 언어입니다" in bad_language.text  # the page falls back to the default
    assert web.count() == 0 and web.backend.outbox == []


def test_form_without_csrf_token_is_refused(web: Web) -> None:
    web.client.get("/")  # the browser has the cookie, but the form has no field
    data = {"email": "x@example.com", "categories": ["nlp"], "language": "en"}
    missing = web.client.post("/subscribe", data=data)
    assert missing.status_code == 403
    assert "양식이 만료되었습니다" in missing.text
    wrong = web.client.post("/subscribe", data={**data, "csrf_token": "forged"})
    assert wrong.status_code == 403
    assert web.count() == 0 and web.backend.outbox == []


def test_token_from_another_browser_or_no_cookie_is_refused(web: Web) -> None:
    token = web.csrf()
    web.client.cookies.clear()
    data = {"csrf_token": token, "email": "x@example.com", "categories": ["nlp"], "language": "en"}
    assert web.client.post("/subscribe", data=data).status_code == 403
    other = make_web(web.svc)
    other.client.get("/")
    assert other.client.post("/subscribe", data=data).status_code == 403
    assert web.count() == 0


def test_cross_site_posts_are_refused_even_with_a_valid_token(web: Web) -> None:
    data = {"email": "x@example.com", "categories": ["nlp"], "language": "en"}
    cross = web.client.post(
        "/subscribe",
        data={**data, "csrf_token": web.csrf()},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    foreign = web.client.post(
        "/subscribe",
        data={**data, "csrf_token": web.csrf()},
        headers={"Origin": "https://evil.example"},
    )
    own = web.client.post(
        "/subscribe",
        data={**data, "csrf_token": web.csrf()},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    )
    # What a browser sends for this site's own form under Referrer-Policy: no-referrer.
    null = web.client.post(
        "/subscribe",
        data={**data, "email": "y@example.com", "csrf_token": web.csrf()},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert (cross.status_code, foreign.status_code) == (403, 403)
    assert (own.status_code, null.status_code) == (200, 200)
    assert web.count() == 2


def test_csrf_cookie_is_httponly_and_samesite(page_web: Web) -> None:
    header = page_web.client.get("/").headers["set-cookie"]
    assert header.startswith(f"{COOKIE}=")
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header


def test_hundred_requests_from_one_ip_in_a_minute(web: Web) -> None:
    token = web.csrf()
    statuses = []
    for n in range(100):
        response = web.client.post(
            "/subscribe",
            data={
                "csrf_token": token,
                "email": f"reader{n}@example.com",
                "categories": ["nlp"],
                "language": "en",
            },
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429] * 90
    assert "Too many requests" in response.text or "요청이 너무 많습니다" in response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert web.count() == 10 and len(web.backend.outbox) == 10
    # Another client of the same app is not affected by this one's limit.
    other = Web(web.svc, web.backend, TestClient(web.client.app, client=("203.0.113.9", 4000)))
    assert other.subscribe("someone@example.com").status_code == 200
    assert len(web.backend.outbox) == 11


def test_one_address_gets_at_most_three_mails_an_hour(web: Web) -> None:
    answers = [web.subscribe(e) for e in ("v@example.com", "V@example.com", " v@example.com")]
    answers += [web.subscribe("v@EXAMPLE.com") for _ in range(2)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1  # the limit is not visible either
    assert len(web.backend.outbox) == 3


def test_rate_limits_come_from_settings(services: Services) -> None:
    web = make_web(services, subscribe_rate_ip="2/minute", subscribe_rate_address="1/hour")
    assert web.subscribe("a@example.com").status_code == 200
    assert web.subscribe("a@example.com").status_code == 200
    assert web.subscribe("b@example.com").status_code == 429
    assert len(web.backend.outbox) == 1
    bad = services.settings.model_copy(update={"subscribe_rate_ip": "lots"})
    with pytest.raises(ConfigurationError, match="NEWSLETTER_SUBSCRIBE_RATE_IP='lots'"):
        create_app(type(services)(bad, services.engine, services.taxonomy, services.signer))


class _RefusingBackend(MailBackend):
    """A provider that is down: every send raises."""

    def send(self, batch: MessageBatch) -> list[SendResult]:
        raise DeliveryError("provider down", status=503, recipients=[batch.recipients[0].to])


def test_a_failed_mail_is_logged_without_the_address(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(create_app(services, _RefusingBackend("newsletter@localhost")))
    token = client.get("/")
    found = token.text.split('name="csrf_token" value="')[1].split('"')[0]
    with caplog.at_level(logging.DEBUG, logger="subscribers"):
        response = client.post(
            "/subscribe",
            data={
                "csrf_token": found,
                "email": "hidden@example.com",
                "categories": ["nlp"],
                "language": "en",
            },
        )
    assert response.status_code == 200 and title_of(response) == "Check your inbox"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "confirm mail to subscriber" in errors[0].getMessage()
    assert all(
        "hidden@example.com" not in r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO
    )


def test_no_address_in_logs_at_info(web: Web, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        reader = web.subscribe_and_confirm("secret.reader@example.com")
        web.subscribe("secret.reader@example.com")
        web.client.post(web.unsubscribe_path(reader.id))
        web.subscribe("bad address@example.com")
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert any("subscriber" in m for m in messages)
    assert not any("secret.reader" in m or "bad address" in m for m in messages)


def test_international_domain_is_accepted_and_mailed_idna_encoded(web: Web) -> None:
    """As found: the confirm mail's header read ``To: user@=?utf-8?q?b=C3=BCcher?=.example``."""
    assert web.subscribe("user@bücher.example").status_code == 200
    assert web.reader("user@bücher.example") is not None
    (mail,) = web.backend.outbox
    head = mail.as_bytes().split(b"\n\n")[0]
    assert b"To: user@xn--bcher-kva.example" in head and b"=?utf-8?" not in head


def test_utf8_local_part_is_refused_unless_the_server_takes_smtputf8(web: Web) -> None:
    refused = web.subscribe("jörg@example.com")
    assert refused.status_code == 400 and "before the @" in refused.text
    assert web.reader("jörg@example.com") is None and web.backend.outbox == []
    web.backend.utf8_local_parts = True
    assert web.subscribe("jörg@example.com").status_code == 200
    assert web.reader("jörg@example.com") is not None
