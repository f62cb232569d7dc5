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
from newsletter.errors import UnknownCategoryError
from newsletter.foryou import Pick
from newsletter.mailtext import WIDTH, plain_text
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
_LI = "margin-bottom:8px;"
_LINK = "color:#1a5fb4;"
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


class BlockMaker:
    """Blocks in one language. A paper is in many readers' blocks, so its lines (title,
    byline, category: cleaned, escaped, wrapped) are made once and kept; only the reason
    and the reader's link are made per reader."""

    def __init__(self, taxonomy: Taxonomy, language: str) -> None:
        self.taxonomy = taxonomy
        self.language = language
        self.t = i18n.texts(language)
        self._papers: dict[tuple[str, str], tuple[str, list[str], list[str]]] = {}
        self.invitation = _Line(self.t["for_you_invite"], self.t["for_you_invite_link"]).fill
        self.nothing_today = _Line(self.t["for_you_none"], self.t["for_you_tune"]).fill

    def _paper(self, pick: Pick) -> tuple[str, list[str], list[str]]:
        """A picked paper's html up to the reason, and its text lines before and after it
        (the first line numbered "0.")."""
        key = (pick.paper_id, pick.category)
        if key not in self._papers:
            title = clean_line(pick.title, TITLE_CHARS) or pick.paper_id
            url = safe_url(pick.url)
            where = self._where(pick)
            head = f"<b>{escape(title)}</b>"
            if url:
                head = f'<a href="{escape(url)}" style="{_LINK}">{head}</a>'
            html = f'<li style="{_LI}">{head}<div class="mu" style="{_MU}">{escape(where)}<br>'
            lines = plain_text(f"  0. {title}\n     {where}\n").splitlines()
            self._papers[key] = (html, lines, [f"     {url}"] if url else [])
        return self._papers[key]

    def _where(self, pick: Pick) -> str:
        byline = clean_line(pick.byline, BYLINE_CHARS)
        try:
            category = self.taxonomy.get(pick.category)
        except UnknownCategoryError:
            return byline
        shown = f"{category.emoji} {category.name(self.language)}".strip()
        return f"{byline} · {shown}" if byline else shown

    def _why(self, pick: Pick) -> str:
        if pick.near:
            return self.t["for_you_near"].format(title=clean_line(pick.near, TITLE_CHARS))
        if pick.terms:
            words = ", ".join(clean_line(w, TERM_CHARS) for w in pick.terms if w)
            return self.t["for_you_matches"].format(terms=words)
        return self.t["for_you_close"]

    def _html(self, picks: Sequence[Pick], reasons: list[str], manage_url: str) -> str:
        t = self.t
        items = "".join(
            f"{self._paper(pick)[0]}{escape(why)}</div></li>"
            for pick, why in zip(picks, reasons, strict=True)
        )
        return (
            f'{_MSO_OPEN}<div style="{_OUTER}"><div class="cd tx" style="{_CARD}">'
            f'<h2 style="{_H2}">✨ {escape(t["for_you"])}</h2>'
            f'<div class="mu" style="{_MU}">{escape(t["for_you_intro"])} · '
            f'<a href="{escape(manage_url + ANCHOR)}" style="{_LINK}">'
            f"{escape(t['for_you_tune'])}</a></div>"
            f'<ol style="{_OL}">{items}</ol></div></div>{_MSO_CLOSE}'
        )

    def _text(self, picks: Sequence[Pick], reasons: list[str], manage_url: str) -> str:
        t = self.t
        lines = [f"✨ {t['for_you']}: {t['for_you_intro']}"]
        for n, (pick, why) in enumerate(zip(picks, reasons, strict=True), start=1):
            _, (first, *rest), tail = self._paper(pick)
            reason = f"     {why}"
            lines += [f"  {n}.{first[4:]}", *rest]
            lines += plain_text(reason).splitlines() if len(reason) > WIDTH else [reason]
            lines += tail
        lines.append(f"{t['for_you_tune']}:")
        lines.append(f"{manage_url}{ANCHOR}")
        return "\n".join(lines) + "\n"

    def block(self, picks: Sequence[Pick], manage_url: str) -> ForYouBlock | None:
        """The block of ``picks`` (None without picks); the last picks are left out while
        the block is over ``BUDGET``."""
        kept = list(picks)
        reasons = [self._why(p) for p in kept]
        while kept:
            html = self._html(kept, reasons, manage_url)
            text = self._text(kept, reasons, manage_url)
            if substitution_bytes(html, text) <= BUDGET:
                return ForYouBlock(tuple(kept), html, text)
            kept.pop()
            reasons.pop()
        return None


def substitution_bytes(*values: str) -> int:
    """Bytes ``values`` take as SendGrid substitutions (JSON strings, non-ASCII escaped)."""
    return sum(len(json.dumps(v)) for v in values)


def render_block(
    picks: Sequence[Pick], taxonomy: Taxonomy, language: str, manage_url: str
) -> ForYouBlock | None:
    """One reader's block (see ``BlockMaker.block``; a send keeps one maker per language)."""
    return BlockMaker(taxonomy, language).block(picks, manage_url)


#: Stands for the reader's link in a line made once per language.
_LINK_MARK = "\x00link\x00"
#: The one-line notes: every reader without a block gets one, so they are kept short.
_NOTE = (
    f"max-width:620px;margin:0 auto;padding:12px 14px 0;{_MU}"
    "font-family:Helvetica,Arial,sans-serif;"
)


class _Line:
    """A one-line note with the reader's link, made once per language, filled per reader."""

    def __init__(self, sentence: str, label: str) -> None:
        self.html = (
            f'<div class="mu" style="{_NOTE}">✨ {escape(sentence)} '
            f'<a href="{_LINK_MARK}" style="{_LINK}">{escape(label)}</a></div>'
        )
        self.text = plain_text(f"✨ {sentence} {label}\n") + f"{_LINK_MARK}\n"

    def fill(self, manage_url: str) -> tuple[str, str]:
        link = f"{manage_url}{ANCHOR}"
        return self.html.replace(_LINK_MARK, escape(link)), self.text.replace(_LINK_MARK, link)


def invitation(language: str, manage_url: str) -> tuple[str, str]:
    """(html, text) of the one line a reader without interests gets instead of a block."""
    t = i18n.texts(language)
    return _Line(t["for_you_invite"], t["for_you_invite_link"]).fill(manage_url)


def nothing_today(language: str, manage_url: str) -> tuple[str, str]:
    """(html, text) of the line a reader with interests gets when no paper matched them."""
    t = i18n.texts(language)
    return _Line(t["for_you_none"], t["for_you_tune"]).fill(manage_url)
