"""A reader's "For you" block: a small HTML fragment with its styles inline, and its text twin.

The issue is rendered (MJML, premailer) once per view; this fragment is made per
reader and put where the rendering left the ``for_you_html``/``for_you_text``
placeholders, so it must arrive finished: styles inline (the classes only hook the
shell's dark-mode rules), every value from a feed or a reader escaped here, and
small, because SendGrid carries it as a substitution and takes at most 10,000 bytes
of them per reader (counted as JSON, where a Hangul syllable is six bytes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from newsletter import i18n
from newsletter.categories import Taxonomy
from newsletter.foryou import Pick
from newsletter.mailtext import plain_text
from newsletter.richtext import clean_line, safe_url

#: Bytes (as SendGrid counts them: JSON, non-ASCII escaped) the block's two parts may take,
#: leaving the rest of the 10,000 for the reader's signed links and the markers.
BUDGET = 8000
TITLE_CHARS = 200
BYLINE_CHARS = 80
TERM_CHARS = 30
#: Where the manage page keeps the interests form.
ANCHOR = "#interests"

_FONT = (
    "font-family:-apple-system,'Segoe UI','Apple SD Gothic Neo','Malgun Gothic',"
    "Helvetica,Arial,sans-serif"
)
_OUTER = "max-width:640px;margin:0 auto;padding:12px 10px 0;box-sizing:border-box;"
_CARD = (
    f"background-color:#ffffff;border-radius:10px;border-left:4px solid #1a5fb4;"
    f"padding:16px 22px;{_FONT};font-size:15px;line-height:1.5;color:#1f2328;"
)
_H2 = "font-size:19px;line-height:1.3;margin:0 0 4px;color:#0b1f3a;"
_MU = "font-size:13px;color:#57606a;"
_OL = "margin:10px 0 0;padding-left:22px;"
_LI = "margin:0 0 10px;"
_LINK = "color:#1a5fb4;"
_TITLE = "color:#1a5fb4;font-weight:600;text-decoration:none;"
#: Outlook on Windows ignores max-width on a div: a table holds the width there.
_MSO_OPEN = (
    '<!--[if mso | IE]><table role="presentation" align="center" width="640" '
    'cellpadding="0" cellspacing="0"><tr><td><![endif]-->'
)
_MSO_CLOSE = "<!--[if mso | IE]></td></tr></table><![endif]-->"


@dataclass(frozen=True)
class ForYouBlock:
    """What a reader's mail (and the manage page) shows of their picks today."""

    picks: tuple[Pick, ...]
    html: str
    text: str


def _why(pick: Pick, t: dict[str, str]) -> str:
    if pick.near:
        return t["for_you_near"].format(title=clean_line(pick.near, TITLE_CHARS))
    if pick.terms:
        words = ", ".join(clean_line(w, TERM_CHARS) for w in pick.terms if w)
        return t["for_you_matches"].format(terms=words)
    return t["for_you_close"]


def _where(pick: Pick, taxonomy: Taxonomy, language: str) -> str:
    byline = clean_line(pick.byline, BYLINE_CHARS)
    if pick.category not in taxonomy.slugs:
        return byline
    category = taxonomy.get(pick.category)
    shown = f"{category.emoji} {category.name(language)}".strip()
    return f"{byline} · {shown}" if byline else shown


def _html(picks: Sequence[Pick], taxonomy: Taxonomy, language: str, manage_url: str) -> str:
    t = i18n.texts(language)
    link = f"{manage_url}{ANCHOR}"
    items = []
    for pick in picks:
        title = escape(clean_line(pick.title, TITLE_CHARS) or pick.paper_id)
        url = safe_url(pick.url)
        head = (
            f'<a href="{escape(url)}" style="{_TITLE}">{title}</a>'
            if url
            else f'<b style="font-weight:600;">{title}</b>'
        )
        items.append(
            f'<li style="{_LI}">{head}'
            f'<div class="mu" style="{_MU}">{escape(_where(pick, taxonomy, language))}</div>'
            f'<div class="mu" style="{_MU}">{escape(_why(pick, t))}</div></li>'
        )
    return (
        f'{_MSO_OPEN}<div style="{_OUTER}"><div class="cd tx" style="{_CARD}">'
        f'<h2 style="{_H2}">✨ {escape(t["for_you"])}</h2>'
        f'<div class="mu" style="{_MU}">{escape(t["for_you_intro"])} · '
        f'<a href="{escape(link)}" style="{_LINK}">{escape(t["for_you_tune"])}</a></div>'
        f'<ol style="{_OL}">{"".join(items)}</ol></div></div>{_MSO_CLOSE}'
    )


def _text(picks: Sequence[Pick], taxonomy: Taxonomy, language: str, manage_url: str) -> str:
    t = i18n.texts(language)
    lines = [f"✨ {t['for_you']}: {t['for_you_intro']}"]
    for n, pick in enumerate(picks, start=1):
        lines.append(f"  {n}. {clean_line(pick.title, TITLE_CHARS) or pick.paper_id}")
        lines.append(f"     {_where(pick, taxonomy, language)}")
        lines.append(f"     {_why(pick, t)}")
        if url := safe_url(pick.url):
            lines.append(f"     {url}")
    lines.append(f"{t['for_you_tune']}: {manage_url}{ANCHOR}")
    return plain_text("\n".join(lines) + "\n")


def substitution_bytes(*values: str) -> int:
    """Bytes ``values`` take as SendGrid substitutions (JSON strings, non-ASCII escaped)."""
    return sum(len(json.dumps(v)) for v in values)


def render_block(
    picks: Sequence[Pick], taxonomy: Taxonomy, language: str, manage_url: str
) -> ForYouBlock | None:
    """The block of ``picks`` in ``language`` (None without picks); the last picks are left
    out while the block is over ``BUDGET``."""
    kept = list(picks)
    while kept:
        html = _html(kept, taxonomy, language, manage_url)
        text = _text(kept, taxonomy, language, manage_url)
        if substitution_bytes(html, text) <= BUDGET:
            return ForYouBlock(tuple(kept), html, text)
        kept.pop()
    return None


def _line(sentence: str, label: str, manage_url: str) -> tuple[str, str]:
    link = f"{manage_url}{ANCHOR}"
    html = (
        f'{_MSO_OPEN}<div style="{_OUTER}"><div class="mu" style="{_MU}{_FONT};padding:0 4px;">'
        f'✨ {escape(sentence)} <a href="{escape(link)}" style="{_LINK}">{escape(label)}</a>'
        f"</div></div>{_MSO_CLOSE}"
    )
    return html, plain_text(f"✨ {sentence} {label}:\n{link}\n")


def invitation(language: str, manage_url: str) -> tuple[str, str]:
    """(html, text) of the one line a reader without interests gets instead of a block."""
    t = i18n.texts(language)
    return _line(t["for_you_invite"], t["for_you_invite_link"], manage_url)


def nothing_today(language: str, manage_url: str) -> tuple[str, str]:
    """(html, text) of the line a reader with interests gets when no paper matched them."""
    t = i18n.texts(language)
    return _line(t["for_you_none"], t["for_you_tune"], manage_url)
