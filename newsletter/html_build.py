"""MJML -> HTML -> inlined CSS: the one module that imports mjml and premailer.

Both are imported inside the functions: rendering loads them, a light command never does.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from newsletter.errors import RenderError


def compile_mjml(mjml_source: str) -> str:
    """MJML -> HTML with CSS inlined; media queries stay in a <style> block."""
    from mjml import mjml2html

    try:
        html = mjml2html(mjml_source)
    except ValueError as exc:
        raise RenderError(f"the e-mail template did not compile: {exc}") from exc
    return inline_css(html)


@lru_cache(maxsize=1)
def _quiet_cssutils() -> None:
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)


def inline_css(html: str) -> str:
    """Inline CSS with premailer, keeping media queries and restoring the doctype it drops."""
    from premailer import Premailer

    _quiet_cssutils()
    inlined = Premailer(
        html,
        allow_network=False,
        keep_style_tags=True,
        strip_important=False,
        disable_validation=True,
        # CSS widths and heights stay CSS: turned into attributes they gave the chart
        # width="100%" (Outlook then draws the 960-px PNG at 960 px) and height="auto".
        disable_basic_attributes=["width", "height"],
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    inlined = str(inlined)
    if not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = "<!doctype html>\n" + inlined
    return inlined
