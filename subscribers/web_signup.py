"""Signing up: the subscribe form, the confirmation link, and the mail each one sends.

``POST /subscribe`` answers the same page whatever the address's state, so the form
cannot be used to learn who subscribes; the mail (a confirm link for a new or
suppressed address, a manage link for a reader) is sent after the answer, so every
answer takes the same time. A GET never changes anything (mail scanners follow links).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from newsletter.app import Services
from newsletter.delivery.addresses import has_utf8_local_part
from newsletter.delivery.base import MailBackend
from newsletter.errors import InvalidInputError, NewsletterError
from subscribers.mails import MailKind, link_batch, render_link_mail
from subscribers.ratelimit import SubscribeLimits
from subscribers.readers import normalize_email
from subscribers.signup import confirm, pending_request, request_subscription
from subscribers.tokens import reader_links
from subscribers.web_pages import (
    PageError,
    ParsedForm,
    RateLimited,
    category_choices,
    check_csrf,
    form_field,
    form_fields,
    language_choices,
    page,
    page_language,
    services_of,
    unsign,
    validate_choices,
)
from subscribers.web_texts import web_texts

log = logging.getLogger(__name__)

router = APIRouter()


def _send_link_mail(
    app: FastAPI,
    kind: MailKind,
    subscriber_id: int,
    to: str,
    url: str,
    categories: tuple[str, ...],
    language: str,
) -> None:
    """Runs after the answer is sent, so every subscribe answer takes the same time."""
    svc: Services = app.state.services
    backend: MailBackend = app.state.backend
    try:
        rendered = render_link_mail(kind, url, categories, language, svc.taxonomy)
        with app.state.mail_lock, backend:
            results = backend.send(link_batch(rendered, to, kind))
    except NewsletterError as exc:
        # The message may quote the address (a provider's reply): only at DEBUG.
        log.error(
            "the %s mail to subscriber %d failed (%s)", kind, subscriber_id, type(exc).__name__
        )
        log.debug("the %s mail failed: %s", kind, exc)
        return
    for result in results:
        if result.status == "sent":
            log.info("%s mail sent to subscriber %d", kind, subscriber_id)
        else:
            log.warning("%s mail to subscriber %d was %s", kind, subscriber_id, result.status)


@router.get("/", response_class=HTMLResponse)
def subscribe_form(request: Request) -> Response:
    lang = page_language(request)
    svc = services_of(request)
    return page(
        request,
        "subscribe.html",
        lang,
        email="",
        errors=[],
        categories=category_choices(svc.taxonomy, lang, svc.taxonomy.slugs),
        language_options=language_choices(lang),
    )


def _accepts_utf8(app: FastAPI) -> bool:
    """Whether the mail backend can deliver to a non-ASCII local part (SMTPUTF8)."""
    backend: MailBackend = app.state.backend
    with app.state.mail_lock:
        return backend.accepts_utf8_local_parts()


@router.post("/subscribe", response_class=HTMLResponse)
def subscribe(request: Request, background: BackgroundTasks, form: ParsedForm) -> Response:
    svc = services_of(request)
    limits: SubscribeLimits = request.app.state.limits
    client = request.client.host if request.client else "unknown"
    if not limits.hit_ip(client):
        log.info("subscribe form: client over its rate limit")
        raise RateLimited(limits.retry_after(client))
    check_csrf(request, form)
    lang = page_language(request, form_field(form, "language"))
    t = web_texts(lang)
    raw_email = form_field(form, "email")
    errors = []
    address = ""
    try:
        address = normalize_email(raw_email)
    except InvalidInputError:
        errors.append(t["email_too_long"] if len(raw_email.strip()) > 320 else t["invalid_email"])
    else:
        if has_utf8_local_part(address) and not _accepts_utf8(request.app):
            errors.append(t["utf8_local_part"])
    categories, language, choice_errors = validate_choices(svc.taxonomy, form, t, "no_categories")
    errors += choice_errors
    if errors:
        return page(
            request,
            "subscribe.html",
            lang,
            status=400,
            email=raw_email[:320],
            errors=errors,
            categories=category_choices(svc.taxonomy, lang, form_fields(form, "categories")),
            language_options=language_choices(lang),
        )
    if not limits.hit_address(address):
        log.info("subscribe form: an address over its rate limit; no mail sent")
        return page(request, "inbox.html", lang)
    outcome = request_subscription(svc.engine, svc.taxonomy, address, categories, language)
    if outcome.mail == "confirm":
        token = svc.signer.sign(outcome.subscriber_id, "confirm", outcome.nonce)
        url = f"{svc.settings.base_url}/confirm/{token}"
    else:
        url = reader_links(svc.signer, svc.settings.base_url, outcome.subscriber_id)["manage_url"]
    background.add_task(
        _send_link_mail,
        request.app,
        outcome.mail,
        outcome.subscriber_id,
        address,
        url,
        outcome.categories,
        outcome.language,
    )
    log.info(
        "subscribe request for subscriber %d: %s mail queued", outcome.subscriber_id, outcome.mail
    )
    return page(request, "inbox.html", lang)


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str) -> Response:
    svc = services_of(request)
    subscriber_id, nonce = unsign(request, token, "confirm")
    info = pending_request(svc.engine, subscriber_id, nonce)
    if info is None:
        raise PageError(400, "used")
    lang = page_language(request, stored=info.language)
    return page(
        request,
        "confirm.html",
        lang,
        categories=[
            c for c in category_choices(svc.taxonomy, lang, info.categories) if c["checked"]
        ],
        language_name=web_texts(info.language)["language_name"],
    )


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm_submit(request: Request, token: str, form: ParsedForm) -> Response:
    svc = services_of(request)
    check_csrf(request, form)
    subscriber_id, nonce = unsign(request, token, "confirm")
    info = confirm(svc.engine, subscriber_id, nonce, source="web")
    if info is None:
        raise PageError(400, "used")
    log.info("subscriber %d confirmed", subscriber_id)
    links = reader_links(svc.signer, svc.settings.base_url, subscriber_id)
    return page(
        request,
        "confirmed.html",
        page_language(request, stored=info.language),
        manage_url=links["manage_url"],
    )
