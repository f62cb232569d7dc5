"""LaTeX in titles, abstracts and names, as readers expect to see it.

arXiv's feeds carry what authors typed: ``Cram\\'er-Rao``, ``$\\alpha$-divergence``,
``\\textit{...}``. The papers table keeps that raw text (it is what the search
index holds, and what a later, better converter can start from); this module
turns it into Unicode text when a paper is read for showing: the e-mail, its
text twin, the archive and the LLM's input all read papers through
``papers.paper_from_row``, which calls ``readable``.

The conversion is pylatexenc's ``LatexNodes2Text``, adjusted so that nothing a
reader needs is lost: a bare ``%`` (``50%``) is a percent sign, not a comment;
``&`` and ``#`` stay; a macro call it does not know stays as typed (``\\foo{x}``)
instead of vanishing; ``$5 and $10`` (an odd number of dollars) is money, not
math. Math it cannot turn into symbols stays as its readable source
(``x_i^2``, ``O(n log n)``). Text without a backslash or a dollar sign is
returned as it is, at no cost; pylatexenc is imported on first use.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

#: What makes a text worth converting: a macro or accent (``\\alpha``, ``\\'e``,
#: ``\\%``) or a dollar sign. A backslash before a space or at the end is a stray
#: character, shown as typed.
_TRIGGER = re.compile(r"\\[A-Za-z'\"`^~=.{}%&#$_|]|\$")
#: ``%``, ``&`` and ``#`` not already escaped: literal in abstracts, special in LaTeX.
_LITERAL = re.compile(r"(?<!\\)([%&#])")
_DOLLAR = re.compile(r"(?<!\\)\$")
_SPACES = re.compile(r"[ \t\r\n\u00a0]+")
#: Text macros pylatexenc drops with their argument; readers want the argument.
_KEEP_ARGUMENT = ("texttt", "textsc", "textsf", "textrm", "textup", "textnormal", "mbox", "text")
#: Symbols pylatexenc leaves out.
_SYMBOLS = {
    "|": "‖",
    "lVert": "‖",
    "rVert": "‖",
    "Vert": "‖",
    "ldots": "…",
    "dots": "…",
    "LaTeX": "LaTeX",
    "TeX": "TeX",
}
#: A macro call with at most one plain braced argument (``\foo``, ``\foo{bar}``).
_MACRO = re.compile(r"\\([A-Za-z]+)\*?(?:\{[^{}$]*\})?")
_SPACE_BEFORE_MACRO = re.compile(r"(?<=\S)\s+(?=\\[A-Za-z])")
_ENVIRONMENT = frozenset(("begin", "end"))
#: Private-use characters around the number of a kept-as-typed macro call.
_HOLD_OPEN, _HOLD_CLOSE = "\ue000", "\ue001"
_HELD = re.compile(f"{_HOLD_OPEN}(\\d+){_HOLD_CLOSE}")


@functools.lru_cache(maxsize=1)
def _converter() -> Any:
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

    db = get_default_latex_context_db()
    db.add_context_category(
        "newsletter",
        prepend=True,
        macros=[MacroTextSpec(name, simplify_repl="%s") for name in _KEEP_ARGUMENT]
        + [MacroTextSpec(name, simplify_repl=text) for name, text in _SYMBOLS.items()],
    )
    return LatexNodes2Text(
        latex_context=db, math_mode="text", strict_latex_spaces="based-on-source"
    )


@functools.lru_cache(maxsize=1024)
def _known(name: str) -> bool:
    return _converter().latex_context.get_macro_spec(name) is not None


def _prepare(text: str) -> tuple[str, list[str]]:
    """Hold back what must come out as typed: literal ``%&#`` and unknown macro calls.

    pylatexenc drops a macro it does not know; ``\\foo{bar}`` held back comes out
    as ``\\foo{bar}``, which a reader can still make sense of.
    """
    held: list[str] = []

    def keep(raw: str) -> str:
        held.append(raw)
        return f"{_HOLD_OPEN}{len(held) - 1}{_HOLD_CLOSE}"

    def macro(match: re.Match[str]) -> str:
        name = match.group(1)
        return match.group(0) if name in _ENVIRONMENT or _known(name) else keep(match.group(0))

    text = _MACRO.sub(macro, _LITERAL.sub(lambda m: keep(m.group(1)), text))
    # pylatexenc drops a space before a macro (``\\alpha \\to 0``, ``{A} \\textit{B}``).
    text = _SPACE_BEFORE_MACRO.sub(lambda m: keep(" "), text)
    if len(_DOLLAR.findall(text)) % 2:
        # An odd count cannot delimit math: every dollar is a literal one.
        text = _DOLLAR.sub(r"\\$", text)
    return text, held


@functools.lru_cache(maxsize=8192)
def _convert(text: str) -> str:
    try:
        prepared, held = _prepare(text)
        converted = _converter().latex_to_text(prepared)
    except Exception as exc:  # pylatexenc fails on odd input: keep the raw text
        log.debug("LaTeX left as typed (%s: %s): %.80s", type(exc).__name__, exc, text)
        return text
    if held:
        converted = _HELD.sub(lambda m: held[int(m.group(1))], converted)
    result = _SPACES.sub(" ", converted).strip()
    return result or text


def readable(text: str) -> str:
    """``text`` with its LaTeX turned into Unicode; unchanged when it has none."""
    if ("\\" not in text and "$" not in text) or not _TRIGGER.search(text):
        return text
    return _convert(text)
