"""A reader's own links: the preference center (manage) and the one-click unsubscribe.

Readers have no account: these pages are reached through a signed link
(``subscribers.tokens``) mailed to the address, so only someone who can read that
mailbox can change or cancel the subscription. A GET never changes anything; the
RFC 8058 one-click unsubscribe takes a POST without cookie or CSRF token, as mail
providers send it.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from newsletter.statuses import SUPPRESSED, Cadence
from subscribers.readers import (
    SubscriberInfo,
    get_by_id,
    pause,
    resume,
    unsubscribe,
    update_preferences,
)
from subscribers.tokens import Purpose
from subscribers.web_pages import (
    PageError,
    ParsedForm,
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

MANAGE_ACTIONS = ("save", "pause", "resume", "unsubscribe")
#: RFC 8058: the body a mail provider POSTs to the List-Unsubscribe URL.
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"


def _mask(address: str) -> str:
    """r***@example.com: enough for the reader to recognise, little for anyone else."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _reader(request: Request, token: str, purpose: Purpose) -> SubscriberInfo:
    subscriber_id, _ = unsign(request, token, purpose)
    info = get_by_id(services_of(request).engine, subscriber_id)
    if info is None:  # a validly signed id that no longer exists: same page as a bad link
        raise PageError(400, "token")
    return info


def _manage_page(
    request: Request,
    info: SubscriberInfo,
    lang: str,
    *,
    status: int = 200,
    notice: str = "",
    errors: list[str] | None = None,
    checked: tuple[str, ...] | list[str] | None = None,
) -> HTMLResponse:
    svc = services_of(request)
    return page(
        request,
        "manage.html",
        lang,
        status=status,
        email=info.email,
        status_name=info.status,
        mailable=info.status in ("active", "paused"),
        suppressed=info.status in SUPPRESSED,
        notice=notice,
        errors=errors or [],
        categories=category_choices(
            svc.taxonomy, lang, info.categories if checked is None else checked
        ),
        language_options=language_choices(info.language),
        cadence=info.cadence,
        weekday=info.weekday,
    )


def _cadence_choice(form: FormData) -> tuple[str | None, int | None] | None:
    """(cadence, weekday) from the manage form, (None, None) when the form has no such
    fields (the reader's choice stays), or None when they are not ones we offer."""
    cadence, weekday = form_field(form, "cadence"), form_field(form, "weekday")
    if not cadence and not weekday:
        return None, None
    if cadence not in tuple(Cadence) or weekday not in {str(n) for n in range(7)}:
        return None
    return cadence, int(weekday)


@router.get("/manage/{token}", response_class=HTMLResponse)
def manage_page(request: Request, token: str) -> Response:
    info = _reader(request, token, "manage")
    return _manage_page(request, info, page_language(request, stored=info.language))


@router.post("/manage/{token}", response_class=HTMLResponse)
def manage_submit(request: Request, token: str, form: ParsedForm) -> Response:
    svc = services_of(request)
    check_csrf(request, form)
    info = _reader(request, token, "manage")
    action = form_field(form, "action")
    lang = page_language(request, stored=info.language)
    t = web_texts(lang)
    if action not in MANAGE_ACTIONS:
        return _manage_page(request, info, lang, status=400, errors=[t["unknown_action"]])
    if action == "unsubscribe":
        unsubscribe(svc.engine, info.id, source="web")
        log.info("subscriber %d unsubscribed on the manage page", info.id)
        return page(request, "unsubscribed.html", lang)
    if info.status not in ("active", "paused"):
        return _manage_page(request, info, lang, status=409)
    if action == "pause":
        return _manage_page(request, pause(svc.engine, info.id), lang, notice=t["paused"])
    if action == "resume":
        return _manage_page(request, resume(svc.engine, info.id), lang, notice=t["resumed"])
    categories, language, errors = validate_choices(svc.taxonomy, form, t, "no_categories_manage")
    when = _cadence_choice(form)
    if when is None:
        errors.append(t["unknown_cadence"])
    if errors or when is None:
        return _manage_page(
            request, info, lang, status=400, errors=errors, checked=form_fields(form, "categories")
        )
    cadence, weekday = when
    updated = update_preferences(
        svc.engine, svc.taxonomy, info.id, categories, language, cadence=cadence, weekday=weekday
    )
    lang = page_language(request, chosen=language)
    return _manage_page(request, updated, lang, notice=web_texts(lang)["saved"])


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> Response:
    info = _reader(request, token, "unsubscribe")
    lang = page_language(request, stored=info.language)
    if info.status in SUPPRESSED:
        return page(request, "unsubscribed.html", lang)
    return page(request, "unsubscribe.html", lang, masked_email=_mask(info.email))


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_submit(request: Request, token: str, form: ParsedForm) -> Response:
    """The RFC 8058 one-click target: no cookie, no CSRF token, 200 at once, no redirect."""
    svc = services_of(request)
    subscriber_id, _ = unsign(request, token, "unsubscribe")
    one_click = form_field(form, ONE_CLICK_FIELD) == ONE_CLICK_VALUE
    info = unsubscribe(svc.engine, subscriber_id, source="one-click" if one_click else "web")
    if info is None:
        raise PageError(400, "token")
    log.info("subscriber %d unsubscribed (%s)", subscriber_id, "one-click" if one_click else "page")
    return page(request, "unsubscribed.html", page_language(request, stored=info.language))
