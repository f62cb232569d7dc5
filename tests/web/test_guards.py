"""Bounded and UTF-8 bodies, security headers, error pages, health check, log redaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi.testclient import TestClient

from newsletter.app import Services
from newsletter.categories import load_taxonomy
from newsletter.db import make_engine
from newsletter.delivery.memory import MemoryBackend
from newsletter.settings import load_settings
from subscribers.http_guard import MAX_BODY_BYTES, MAX_FORM_BYTES
from subscribers.server import RedactTokens
from subscribers.tokens import Signer
from subscribers.web_app import create_app
from tests.web.conftest import Web, title_of

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _form_body(web: Web, email: bytes) -> bytes:
    return b"csrf_token=" + web.csrf().encode() + b"&categories=nlp&language=en&email=" + email


def test_very_long_form_is_413_and_stores_nothing(web: Web) -> None:
    body = _form_body(web, b"a" * MAX_FORM_BYTES + b"@example.com")
    response = web.client.post("/subscribe", content=body, headers=FORM)
    assert response.status_code == 413
    assert title_of(response) == "요청이 너무 큽니다"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert web.count() == 0 and web.backend.outbox == []


def test_long_body_without_a_length_is_cut_off_too(web: Web) -> None:
    def chunks() -> Iterator[bytes]:
        yield _form_body(web, b"x@example.com&pad=")
        for _ in range(64):
            yield b"p" * 1024

    response = web.client.post("/subscribe", content=chunks(), headers=FORM)
    assert response.status_code == 413
    assert web.count() == 0


def test_other_bodies_have_a_larger_but_finite_limit(web: Web) -> None:
    big = web.client.post(
        "/subscribe",
        content=b"{" + b" " * MAX_BODY_BYTES + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert big.status_code == 413


NOT_UTF8 = [
    b"caf\xe9@example.com",  # Latin-1
    b"caf%E9@example.com",  # Latin-1, percent-encoded
    b"%FF%FE@example.com",
    "café@example.com".encode(),  # UTF-8 but not percent-encoded, as no browser sends
]


def test_non_utf8_form_is_400_and_stores_nothing(web: Web) -> None:
    for email in NOT_UTF8:
        response = web.client.post("/subscribe", content=_form_body(web, email), headers=FORM)
        assert response.status_code == 400, email
        assert title_of(response) == "읽을 수 없는 요청입니다"
    assert web.count() == 0 and web.backend.outbox == []


def test_utf8_form_passes_the_guard(web: Web) -> None:
    # A UTF-8 domain (a UTF-8 local part also needs a server with SMTPUTF8: test_subscribe).
    body = _form_body(web, b"reader@caf%C3%A9.example") + b"&name=%ED%95%9C"
    response = web.client.post("/subscribe", content=body, headers=FORM)
    assert response.status_code == 200
    assert web.reader("reader@café.example") is not None


def test_security_headers_on_every_page(page_web: Web) -> None:
    for response in (page_web.client.get("/"), page_web.client.get("/no/such/page")):
        headers = response.headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]  # none at all
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
    assert "<script" not in page_web.client.get("/").text


def test_stylesheet_is_served_and_cacheable(page_web: Web) -> None:
    css = page_web.client.get("/static/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "public, max-age=3600"


def test_unknown_page_and_wrong_method_are_html_pages(page_web: Web) -> None:
    missing = page_web.client.get("/no/such/page?lang=en")
    assert missing.status_code == 404 and title_of(missing) == "Page not found"
    wrong = page_web.client.put("/subscribe")
    assert wrong.status_code == 405 and "text/html" in wrong.headers["content-type"]


def test_healthz(web: Web) -> None:
    response = web.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["database"] == "ok"


def test_healthz_reports_an_unreachable_database() -> None:
    settings = load_settings(database_url="postgresql://postgres@127.0.0.1:1/none", feeds=[])
    down = Services(
        settings,
        make_engine("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"),
        load_taxonomy(),
        Signer(settings.secret_key),
    )
    client = TestClient(create_app(down, MemoryBackend()))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error" and response.json()["database"] != "ok"


def test_access_log_lines_lose_their_tokens() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/unsubscribe/MQ.abc.def?x=1", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /unsubscribe/[token]?x=1 HTTP/1.1" 200'


def test_links_and_redirects_stay_on_the_site(page_web: Web) -> None:
    """As found: ``GET //evil.example/`` linked to ``//evil.example/?lang=ko``, and
    ``/issues/`` redirected to whatever Host the request named."""
    missing = page_web.client.get("http://testserver//evil.example/")
    assert missing.status_code == 404
    assert "//evil.example" not in missing.text
    assert 'href="/evil.example/?lang=' in missing.text
    moved = page_web.client.get(
        "/issues/?lang=en", headers={"Host": "evil.example"}, follow_redirects=False
    )
    assert moved.status_code in (301, 307, 308)
    assert moved.headers["location"] == "/issues?lang=en"


def test_405_names_the_allowed_methods_and_head_works_where_get_does(page_web: Web) -> None:
    def allowed(path: str) -> set[str]:
        wrong = page_web.client.put(path)
        assert wrong.status_code == 405 and "text/html" in wrong.headers["content-type"]
        return set(wrong.headers["allow"].replace(" ", "").split(","))

    assert allowed("/subscribe") == {"POST"}
    # GET and POST are two routes at one path: Allow names both, not the first one found.
    assert allowed("/manage/some-token") == {"GET", "HEAD", "POST"}
    for path in ("/", "/healthz", "/issues", "/feed.xml", "/static/web.css"):
        get, head = page_web.client.get(path), page_web.client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
