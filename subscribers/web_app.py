"""The web app: one FastAPI application with every router, its guards and its error pages.

The routers: signing up (``web_signup``), a reader's own links (``web_reader``), the
provider webhooks (``webhooks``) and the public archive (``archive``), plus
``/healthz``. ``subscribers.server`` serves it for ``newsletter serve`` and
``newsletter start``.
"""

from __future__ import annotations

import logging
import threading

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from itsdangerous import SignatureExpired
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.staticfiles import StaticFiles

from newsletter.app import Services
from newsletter.delivery.base import MailBackend
from newsletter.errors import TokenError
from newsletter.health import health
from subscribers import archive, web_reader, web_signup, webhooks
from subscribers.csrf import Csrf, CsrfError
from subscribers.http_guard import BodyGuard, SecurityHeaders
from subscribers.ratelimit import SubscribeLimits
from subscribers.templating import web_templates
from subscribers.tokens import redact_token_paths
from subscribers.web_pages import (
    PageError,
    RateLimited,
    base_context,
    page,
    page_language,
    services_of,
)
from subscribers.web_texts import web_texts

log = logging.getLogger(__name__)

router = APIRouter()


def create_app(svc: Services, backend: MailBackend | None = None) -> FastAPI:
    """The whole web app: sign-up and reader pages, provider webhooks, the public archive."""
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
    routers = (web_signup.router, web_reader.router, router, webhooks.router, archive.router)
    app.state.api_routes = [r for rt in routers for r in rt.routes if isinstance(r, APIRoute)]
    for route in app.state.api_routes:
        # HEAD works wherever GET does (answered without a body); FastAPI takes only the
        # methods named, so a monitor's HEAD got 405.
        if "GET" in route.methods:
            route.methods.add("HEAD")
    for included in routers:
        app.include_router(included)
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
                base_context(settings.language, t)
                | {"title": t[f"{reason}_title"], "message": t[f"{reason}_body"]}
            )
        )
        return html.encode("utf-8")

    app.add_middleware(BodyGuard, error_page=body_error_page)
    app.add_middleware(SecurityHeaders, hsts=settings.base_url.startswith("https://"))
    return app


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 when the database answers (and this process's scheduler runs), 503 otherwise.

    JSON for load balancers and monitors: database, scheduler alive, last issue sent and
    next run time (``newsletter.health``; ``newsletter start`` sets the scheduler).
    """
    data = health(services_of(request), getattr(request.app.state, "scheduler", None), public=True)
    return JSONResponse(
        {"status": "ok" if data["ok"] else "error", **data}, status_code=200 if data["ok"] else 503
    )


def _error_page(request: Request, status: int, key: str) -> HTMLResponse:
    lang = page_language(request)
    t = web_texts(lang)
    return page(
        request,
        "error.html",
        lang,
        status=status,
        title=t[f"{key}_title"],
        message=t[f"{key}_body"],
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (RFC 9110: a 405 must say).

    Starlette names only the first route whose path matched; a path can have several
    (GET shows a form, POST sends it).
    """
    methods: set[str] = set()
    for route in request.app.state.api_routes:
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


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
        response = _error_page(request, exc.status_code, key)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

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
