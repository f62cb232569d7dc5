"""The Jinja environment of the web pages, shared by the web app and the archive router."""

from __future__ import annotations

from functools import lru_cache

import jinja2


@lru_cache(maxsize=1)
def web_templates() -> jinja2.Environment:
    """Templates in newsletter/templates/web, autoescaped: every value on a page is data."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("newsletter", "templates/web"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
