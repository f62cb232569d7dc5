"""What every page of the web app shares: the page frame, its language, forms and links.

Pages are server-rendered Jinja (``newsletter/templates/web/``, layout ``base.html``)
in the newsletter's default language, with English as the other; ``?lang=``, the
form's language or the reader's stored one choose, ``Accept-Language`` hints. Every
form carries a CSRF token (``subscribers.csrf``), checked here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from newsletter.app import Services
from newsletter.categories import Taxonomy
from newsletter.errors import UnknownCategoryError
from newsletter.i18n import LANGUAGES
from subscribers.csrf import FIELD, Csrf
from subscribers.templating import web_templates
from subscribers.tokens import Purpose
from subscribers.web_texts import web_texts


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


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def csrf_of(request: Request) -> Csrf:
    csrf: Csrf = request.app.state.csrf
    return csrf


def base_context(lang: str, t: dict[str, str]) -> dict[str, Any]:
    return {"lang": lang, "t": t, "web_t": t, "languages": []}


def site_path(path: str) -> str:
    """``path`` as a link on this site: ``//evil.example/`` would leave it (protocol-relative)."""
    return "/" + path.lstrip("/")


def page(
    request: Request, template: str, lang: str, status: int = 200, **context: Any
) -> HTMLResponse:
    t = web_texts(lang)
    csrf = csrf_of(request)
    languages = [
        {
            "code": code,
            "name": web_texts(code)["language_name"],
            "url": f"{site_path(request.url.path)}?lang={code}",
            "current": code == lang,
        }
        for code in LANGUAGES
    ]
    html = (
        web_templates()
        .get_template(template)
        .render(
            base_context(lang, t)
            | {"languages": languages, "csrf_field": FIELD}
            | {"csrf_token": lambda: csrf.form_token(request)}
            | context
        )
    )
    response = HTMLResponse(html, status_code=status)
    csrf.set_cookie(request, response)
    return response


def page_language(request: Request, chosen: str | None = None, stored: str | None = None) -> str:
    """The page language: the form's, ?lang=, the reader's own, Accept-Language, default."""
    for candidate in (chosen, request.query_params.get("lang"), stored):
        if candidate in LANGUAGES:
            return str(candidate)
    for candidate in _accepted_languages(request.headers.get("accept-language", "")):
        if candidate in LANGUAGES:
            return candidate
    default = services_of(request).settings.language
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


def category_choices(
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


def language_choices(selected: str) -> list[dict[str, Any]]:
    return [
        {"code": code, "name": web_texts(code)["language_name"], "selected": code == selected}
        for code in LANGUAGES
    ]


async def _form(request: Request) -> FormData:
    """The parsed body (BodyGuard has already bounded and checked it)."""
    return await request.form()


ParsedForm = Annotated[FormData, Depends(_form)]


def form_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_fields(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)]


def check_csrf(request: Request, form: FormData) -> None:
    csrf_of(request).check(request, form_field(form, FIELD))


def unsign(request: Request, token: str, purpose: Purpose) -> tuple[int, str]:
    return services_of(request).signer.unsign_with_nonce(token, purpose)


def validate_choices(
    taxonomy: Taxonomy, form: FormData, t: dict[str, str], empty_key: str
) -> tuple[tuple[str, ...], str, list[str]]:
    """(categories, language, errors) from a subscribe or manage form."""
    errors = []
    categories: tuple[str, ...] = ()
    try:
        categories = taxonomy.validate(form_fields(form, "categories"))
    except UnknownCategoryError as exc:
        errors.append(t["unknown_category"].format(names=", ".join(exc.unknown)[:200]))
    else:
        if not categories:
            errors.append(t[empty_key])
    language = form_field(form, "language")
    if language not in LANGUAGES:
        errors.append(t["unknown_language"])
    return categories, language, errors
