"""The web app: subscribe form, confirmation, preference center, one-click unsubscribe.

Readers have no account: every page that acts on a subscription is reached through
a signed link (``subscribers.tokens``) mailed to the address, so only someone who
can read that mailbox can confirm, change or cancel it. ``POST /subscribe``
answers the same page whatever the address's state, so the form cannot be used to
learn who subscribes. A GET never changes anything (mail scanners follow links);
every form carries a CSRF token except the RFC 8058 one-click unsubscribe, which
mail providers POST without cookies.

Pages are server-rendered Jinja (``newsletter/templates/web/``, layout ``base.html``)
in the newsletter's default language, with English as the other; ``?lang=``, the
form's language or the reader's stored one choose, ``Accept-Language`` hints.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from itsdangerous import SignatureExpired
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from newsletter.app import Services
from newsletter.categories import Taxonomy
from newsletter.delivery.base import MailBackend
from newsletter.errors import InvalidInputError, NewsletterError, TokenError, UnknownCategoryError
from newsletter.i18n import LANGUAGES
from subscribers import archive, webhooks
from subscribers.csrf import FIELD, Csrf, CsrfError
from subscribers.http_guard import BodyGuard, SecurityHeaders
from subscribers.mails import MailKind, link_batch, render_link_mail
from subscribers.models import CADENCES, SUPPRESSED
from subscribers.ratelimit import SubscribeLimits
from subscribers.store import (
    SubscriberInfo,
    confirm,
    get_by_id,
    normalize_email,
    pause,
    pending_request,
    request_subscription,
    resume,
    unsubscribe,
    update_preferences,
)
from subscribers.templating import web_templates
from subscribers.tokens import Purpose, reader_links, redact_token_paths
from subscribers.web_texts import web_texts

log = logging.getLogger(__name__)

router = APIRouter()

MANAGE_ACTIONS = ("save", "pause", "resume", "unsubscribe")
#: RFC 8058: the body a mail provider POSTs to the List-Unsubscribe URL.
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"


class PageError(Exception):
    """Ends a request with an error page: ``key`` names its title and body texts."""

    def __init__(self, status: int, key: str) -> None:
        self.status = status
        self.key = key
        super().__init__(key)


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"retry after {retry_after} s")


# -- the app -----------------------------------------------------------------------------


def create_app(svc: Services, backend: MailBackend | None = None) -> FastAPI:
    """The whole web app: these pages, the provider webhooks and the public archive."""
    if backend is None:
        from newsletter.delivery import get_backend

        backend = get_backend(svc.settings)
    settings = svc.settings
    app = FastAPI(title="Daily AI Insights", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = svc
    app.state.backend = backend
    # One mail at a time through the shared backend: an SMTP connection is not thread-safe.
    app.state.mail_lock = threading.Lock()
    app.state.csrf = Csrf([*settings.old_secret_keys, settings.secret_key], settings.base_url)
    app.state.limits = SubscribeLimits(
        settings.subscribe_rate_ip, settings.subscribe_rate_address, settings.secret_key
    )
    app.include_router(router)
    app.include_router(webhooks.router)
    app.include_router(archive.router)
    app.mount(
        "/static",
        StaticFiles(packages=[("newsletter", "templates/web/static")]),
        name="static",
    )
    _add_error_pages(app)

    async def body_error_page(status: int, reason: str) -> bytes:
        t = web_texts(settings.language)
        html = (
            web_templates()
            .get_template("error.html")
            .render(
                _base_context(settings.language, t)
                | {"title": t[f"{reason}_title"], "message": t[f"{reason}_body"]}
            )
        )
        return html.encode("utf-8")

    app.add_middleware(BodyGuard, error_page=body_error_page)
    app.add_middleware(SecurityHeaders, hsts=settings.base_url.startswith("https://"))
    return app


# -- rendering -----------------------------------------------------------------------------


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def _csrf(request: Request) -> Csrf:
    csrf: Csrf = request.app.state.csrf
    return csrf


def _base_context(lang: str, t: dict[str, str]) -> dict[str, Any]:
    return {"lang": lang, "t": t, "web_t": t, "languages": []}


def _page(
    request: Request, template: str, lang: str, status: int = 200, **context: Any
) -> HTMLResponse:
    t = web_texts(lang)
    csrf = _csrf(request)
    languages = [
        {
            "code": code,
            "name": web_texts(code)["language_name"],
            "url": f"{request.url.path}?lang={code}",
            "current": code == lang,
        }
        for code in LANGUAGES
    ]
    html = (
        web_templates()
        .get_template(template)
        .render(
            _base_context(lang, t)
            | {"languages": languages, "csrf_field": FIELD}
            | {"csrf_token": lambda: csrf.form_token(request)}
            | context
        )
    )
    response = HTMLResponse(html, status_code=status)
    csrf.set_cookie(request, response)
    return response


def _language(request: Request, chosen: str | None = None, stored: str | None = None) -> str:
    """The page language: the form's, ?lang=, the reader's own, Accept-Language, default."""
    for candidate in (chosen, request.query_params.get("lang"), stored):
        if candidate in LANGUAGES:
            return str(candidate)
    for candidate in _accepted_languages(request.headers.get("accept-language", "")):
        if candidate in LANGUAGES:
            return candidate
    default = _services(request).settings.language
    return default if default in LANGUAGES else "en"


def _accepted_languages(header: str) -> list[str]:
    """Primary language tags of an Accept-Language header, most preferred first."""
    weighted = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.split("-")[0].lower()))
    return [tag for _, _, tag in sorted(weighted)]


def _category_choices(
    taxonomy: Taxonomy, lang: str, checked: tuple[str, ...] | list[str]
) -> list[dict[str, Any]]:
    return [
        {
            "slug": c.slug,
            "emoji": c.emoji,
            "name": c.name(lang),
            "description": c.description,
            "checked": c.slug in checked,
        }
        for c in taxonomy.categories
    ]


def _language_choices(selected: str) -> list[dict[str, Any]]:
    return [
        {"code": code, "name": web_texts(code)["language_name"], "selected": code == selected}
        for code in LANGUAGES
    ]


def _mask(address: str) -> str:
    """r***@example.com: enough for the reader to recognise, little for anyone else."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


# -- forms ---------------------------------------------------------------------------------


async def _form(request: Request) -> FormData:
    """The parsed body (BodyGuard has already bounded and checked it)."""
    return await request.form()


ParsedForm = Annotated[FormData, Depends(_form)]


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _fields(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)]


def _check_csrf(request: Request, form: FormData) -> None:
    _csrf(request).check(request, _field(form, FIELD))


def _unsign(request: Request, token: str, purpose: Purpose) -> tuple[int, str]:
    return _services(request).signer.unsign_with_nonce(token, purpose)


def _validate_choices(
    taxonomy: Taxonomy, form: FormData, t: dict[str, str], empty_key: str
) -> tuple[tuple[str, ...], str, list[str]]:
    """(categories, language, errors) from a subscribe or manage form."""
    errors = []
    categories: tuple[str, ...] = ()
    try:
        categories = taxonomy.validate(_fields(form, "categories"))
    except UnknownCategoryError as exc:
        errors.append(t["unknown_category"].format(names=", ".join(exc.unknown)[:200]))
    else:
        if not categories:
            errors.append(t[empty_key])
    language = _field(form, "language")
    if language not in LANGUAGES:
        errors.append(t["unknown_language"])
    return categories, language, errors


# -- mail --------------------------------------------------------------------------------


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


# -- routes ------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def subscribe_form(request: Request) -> Response:
    lang = _language(request)
    svc = _services(request)
    return _page(
        request,
        "subscribe.html",
        lang,
        email="",
        errors=[],
        categories=_category_choices(svc.taxonomy, lang, svc.taxonomy.slugs),
        language_options=_language_choices(lang),
    )


@router.post("/subscribe", response_class=HTMLResponse)
def subscribe(request: Request, background: BackgroundTasks, form: ParsedForm) -> Response:
    svc = _services(request)
    limits: SubscribeLimits = request.app.state.limits
    client = request.client.host if request.client else "unknown"
    if not limits.hit_ip(client):
        log.info("subscribe form: client over its rate limit")
        raise RateLimited(limits.retry_after(client))
    _check_csrf(request, form)
    lang = _language(request, _field(form, "language"))
    t = web_texts(lang)
    raw_email = _field(form, "email")
    errors = []
    address = ""
    try:
        address = normalize_email(raw_email)
    except InvalidInputError:
        errors.append(t["email_too_long"] if len(raw_email.strip()) > 320 else t["invalid_email"])
    categories, language, choice_errors = _validate_choices(svc.taxonomy, form, t, "no_categories")
    errors += choice_errors
    if errors:
        return _page(
            request,
            "subscribe.html",
            lang,
            status=400,
            email=raw_email[:320],
            errors=errors,
            categories=_category_choices(svc.taxonomy, lang, _fields(form, "categories")),
            language_options=_language_choices(lang),
        )
    if not limits.hit_address(address):
        log.info("subscribe form: an address over its rate limit; no mail sent")
        return _page(request, "inbox.html", lang)
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
    return _page(request, "inbox.html", lang)


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str) -> Response:
    svc = _services(request)
    subscriber_id, nonce = _unsign(request, token, "confirm")
    info = pending_request(svc.engine, subscriber_id, nonce)
    if info is None:
        raise PageError(400, "used")
    lang = _language(request, stored=info.language)
    return _page(
        request,
        "confirm.html",
        lang,
        categories=[
            c for c in _category_choices(svc.taxonomy, lang, info.categories) if c["checked"]
        ],
        language_name=web_texts(info.language)["language_name"],
    )


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm_submit(request: Request, token: str, form: ParsedForm) -> Response:
    svc = _services(request)
    _check_csrf(request, form)
    subscriber_id, nonce = _unsign(request, token, "confirm")
    info = confirm(svc.engine, subscriber_id, nonce, source="web")
    if info is None:
        raise PageError(400, "used")
    log.info("subscriber %d confirmed", subscriber_id)
    links = reader_links(svc.signer, svc.settings.base_url, subscriber_id)
    return _page(
        request,
        "confirmed.html",
        _language(request, stored=info.language),
        manage_url=links["manage_url"],
    )


def _reader(request: Request, token: str, purpose: Purpose) -> SubscriberInfo:
    subscriber_id, _ = _unsign(request, token, purpose)
    info = get_by_id(_services(request).engine, subscriber_id)
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
    svc = _services(request)
    return _page(
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
        categories=_category_choices(
            svc.taxonomy, lang, info.categories if checked is None else checked
        ),
        language_options=_language_choices(info.language),
        cadence=info.cadence,
        weekday=info.weekday,
    )


def _cadence_choice(form: FormData) -> tuple[str | None, int | None] | None:
    """(cadence, weekday) from the manage form, (None, None) when the form has no such
    fields (the reader's choice stays), or None when they are not ones we offer."""
    cadence, weekday = _field(form, "cadence"), _field(form, "weekday")
    if not cadence and not weekday:
        return None, None
    if cadence not in CADENCES or weekday not in {str(n) for n in range(7)}:
        return None
    return cadence, int(weekday)


@router.get("/manage/{token}", response_class=HTMLResponse)
def manage_page(request: Request, token: str) -> Response:
    info = _reader(request, token, "manage")
    return _manage_page(request, info, _language(request, stored=info.language))


@router.post("/manage/{token}", response_class=HTMLResponse)
def manage_submit(request: Request, token: str, form: ParsedForm) -> Response:
    svc = _services(request)
    _check_csrf(request, form)
    info = _reader(request, token, "manage")
    action = _field(form, "action")
    lang = _language(request, stored=info.language)
    t = web_texts(lang)
    if action not in MANAGE_ACTIONS:
        return _manage_page(request, info, lang, status=400, errors=[t["unknown_action"]])
    if action == "unsubscribe":
        unsubscribe(svc.engine, info.id, source="web")
        log.info("subscriber %d unsubscribed on the manage page", info.id)
        return _page(request, "unsubscribed.html", lang)
    if info.status not in ("active", "paused"):
        return _manage_page(request, info, lang, status=409)
    if action == "pause":
        return _manage_page(request, pause(svc.engine, info.id), lang, notice=t["paused"])
    if action == "resume":
        return _manage_page(request, resume(svc.engine, info.id), lang, notice=t["resumed"])
    categories, language, errors = _validate_choices(svc.taxonomy, form, t, "no_categories_manage")
    when = _cadence_choice(form)
    if when is None:
        errors.append(t["unknown_cadence"])
    if errors or when is None:
        return _manage_page(
            request, info, lang, status=400, errors=errors, checked=_fields(form, "categories")
        )
    cadence, weekday = when
    updated = update_preferences(
        svc.engine, svc.taxonomy, info.id, categories, language, cadence=cadence, weekday=weekday
    )
    lang = _language(request, chosen=language)
    return _manage_page(request, updated, lang, notice=web_texts(lang)["saved"])


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> Response:
    info = _reader(request, token, "unsubscribe")
    lang = _language(request, stored=info.language)
    if info.status in SUPPRESSED:
        return _page(request, "unsubscribed.html", lang)
    return _page(request, "unsubscribe.html", lang, masked_email=_mask(info.email))


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_submit(request: Request, token: str, form: ParsedForm) -> Response:
    """The RFC 8058 one-click target: no cookie, no CSRF token, 200 at once, no redirect."""
    svc = _services(request)
    subscriber_id, _ = _unsign(request, token, "unsubscribe")
    one_click = _field(form, ONE_CLICK_FIELD) == ONE_CLICK_VALUE
    info = unsubscribe(svc.engine, subscriber_id, source="one-click" if one_click else "web")
    if info is None:
        raise PageError(400, "token")
    log.info("subscriber %d unsubscribed (%s)", subscriber_id, "one-click" if one_click else "page")
    return _page(request, "unsubscribed.html", _language(request, stored=info.language))


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 when the database answers (and this process's scheduler runs), 503 otherwise.

    JSON for load balancers and monitors: database, scheduler alive, last issue sent and
    next run time (``newsletter.health``; ``newsletter start`` sets the scheduler).
    """
    from newsletter.health import health

    data = health(_services(request), getattr(request.app.state, "scheduler", None), public=True)
    return JSONResponse(
        {"status": "ok" if data["ok"] else "error", **data}, status_code=200 if data["ok"] else 503
    )


# -- error pages ---------------------------------------------------------------------------


def _error_page(request: Request, status: int, key: str) -> HTMLResponse:
    lang = _language(request)
    t = web_texts(lang)
    return _page(
        request,
        "error.html",
        lang,
        status=status,
        title=t[f"{key}_title"],
        message=t[f"{key}_body"],
    )


def _add_error_pages(app: FastAPI) -> None:
    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return _error_page(request, exc.status, exc.key)

    async def token_error(request: Request, exc: Exception) -> Response:
        key = "expired" if isinstance(exc.__cause__, SignatureExpired) else "token"
        return _error_page(request, 400, key)

    async def csrf_error(request: Request, exc: Exception) -> Response:
        log.info("form refused: %s", exc)
        return _error_page(request, 403, "csrf")

    async def rate_limited(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimited)
        response = _error_page(request, 429, "rate")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        key = {404: "not_found", 405: "method"}.get(exc.status_code, "bad_request")
        return _error_page(request, exc.status_code, key)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return _error_page(request, 400, "bad_request")

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error(
            "unexpected error on %s %s",
            request.method,
            redact_token_paths(request.url.path),
            exc_info=exc,
        )
        return _error_page(request, 500, "server")

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(TokenError, token_error)
    app.add_exception_handler(CsrfError, csrf_error)
    app.add_exception_handler(RateLimited, rate_limited)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, server_error)
