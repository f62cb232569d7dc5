"""A reader's own links: the preference center (manage) and the one-click unsubscribe.

Readers have no account: these pages are reached through a signed link
(``subscribers.tokens``) mailed to the address, so only someone who can read that
mailbox can change or cancel the subscription. A GET never changes anything; the
RFC 8058 one-click unsubscribe takes a POST without cookie or CSRF token, as mail
providers send it. The manage page also keeps the reader's interests (free text, and
papers they like uploaded as a BibTeX or RIS file) for the "For you" block.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from starlette.datastructures import FormData, UploadFile

from newsletter.app import Services
from newsletter.errors import InterestsError, one_line
from newsletter.statuses import SUPPRESSED, Cadence
from subscribers import interests
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
    site_path,
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
    interests_text: str | None = None,
) -> HTMLResponse:
    svc = services_of(request)
    mine = interests.get_interests(svc.engine, info.id)
    mailable = info.status in ("active", "paused")
    return page(
        request,
        "manage.html",
        lang,
        status=status,
        email=info.email,
        status_name=info.status,
        mailable=mailable,
        suppressed=info.status in SUPPRESSED,
        notice=notice,
        errors=errors or [],
        categories=category_choices(
            svc.taxonomy, lang, info.categories if checked is None else checked
        ),
        language_options=language_choices(info.language),
        cadence=info.cadence,
        weekday=info.weekday,
        manage_path=site_path(
            request.url.path.removesuffix("/interests-file").removesuffix("/interests")
        ),
        interests_text=(mine.text if mine else "") if interests_text is None else interests_text,
        has_interests=mine is not None,
        liked_count=len(mine.papers) if mine else 0,
        max_text=interests.MAX_TEXT,
        max_papers=interests.MAX_PAPERS,
        for_you=_today_block(request, info.id) if mailable and mine is not None else None,
    )


def _today_block(request: Request, subscriber_id: int) -> Markup | None:
    """The reader's "For you" block of the latest issue, so they see what their interests
    pick; None when it has no picks. A failure leaves the page usable without it."""
    from newsletter.foryou_today import block_for

    svc = services_of(request)
    try:
        block = block_for(svc.engine, svc.settings, subscriber_id)
    except Exception as exc:  # the page must work even if the ranking does not
        log.warning("For you block of subscriber %d failed: %s", subscriber_id, one_line(exc))
        return None
    # The fragment is built for mail with every value escaped (newsletter.foryou_block).
    return Markup(block.html) if block is not None else None


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


def _interests_form(
    request: Request, token: str, form: ParsedForm
) -> tuple[Services, SubscriberInfo, str, dict[str, str]] | Response:
    """What both interests forms check first: CSRF, the signed link, a reader who can
    still have interests (active or paused); the page to answer with otherwise."""
    check_csrf(request, form)
    info = _reader(request, token, "manage")
    lang = page_language(request, stored=info.language)
    if info.status not in ("active", "paused"):
        return _manage_page(request, info, lang, status=409)
    return services_of(request), info, lang, web_texts(lang)


@router.post("/manage/{token}/interests", response_class=HTMLResponse)
def interests_submit(request: Request, token: str, form: ParsedForm) -> Response:
    """Save or forget the reader's free-text interests (their liked papers are kept)."""
    checked = _interests_form(request, token, form)
    if isinstance(checked, Response):
        return checked
    svc, info, lang, t = checked
    action = form_field(form, "action")
    if action == "clear":
        interests.clear_interests(svc.engine, info.id, source="web")
        return _manage_page(request, info, lang, notice=t["interests_cleared"])
    if action != "save":
        return _manage_page(request, info, lang, status=400, errors=[t["unknown_action"]])
    text = form_field(form, "interests")
    clean = interests.normalise_text(text)
    if len(clean) > interests.MAX_TEXT:
        error = t["interests_too_long"].format(count=len(clean), max=interests.MAX_TEXT)
        return _manage_page(request, info, lang, status=400, errors=[error], interests_text=text)
    interests.set_interests(svc.engine, info.id, text=clean, source="web")
    return _manage_page(request, info, lang, notice=t["interests_saved"])


@router.post("/manage/{token}/interests-file", response_class=HTMLResponse)
def interests_file(request: Request, token: str, form: ParsedForm) -> Response:
    """Replace the reader's liked papers with those of an uploaded BibTeX or RIS file.

    The file is read in memory and dropped: only titles and abstracts are stored. A file
    that cannot be read whole changes nothing and the page says why.
    """
    from subscribers.interest_files import parse_upload

    checked = _interests_form(request, token, form)
    if isinstance(checked, Response):
        return checked
    svc, info, lang, t = checked
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _manage_page(request, info, lang, status=400, errors=[t["liked_file_missing"]])
    data = upload.file.read()
    try:
        papers = parse_upload(data, upload.filename)
        saved = interests.set_interests(svc.engine, info.id, papers=papers, source="web")
    except InterestsError as exc:
        error = t["liked_file_error"].format(reason=str(exc))
        return _manage_page(request, info, lang, status=400, errors=[error])
    return _manage_page(
        request, info, lang, notice=t["liked_saved"].format(count=len(saved.papers))
    )


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
