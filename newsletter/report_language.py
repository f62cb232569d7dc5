"""The language a report is asked in, and whether an answer is written in it.

Small models often answer in English whatever they are asked; a report is kept only
when enough of its letters are in its language's script (English terms may fill the
rest, as technical terms stay in English in a Korean report).
"""

from __future__ import annotations

import unicodedata

LANGUAGE_NAMES = {
    "ko": "Korean",
    "en": "English",
    "ja": "Japanese",
    "zh": "Chinese",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "ru": "Russian",
    "vi": "Vietnamese",
}
#: Unicode script (the first word of a letter's name) each non-Latin language is written in.
_SCRIPTS: dict[str, tuple[str, ...]] = {
    "ko": ("HANGUL",),
    "ja": ("HIRAGANA", "KATAKANA", "CJK"),
    "zh": ("CJK",),
    "ru": ("CYRILLIC",),
    "uk": ("CYRILLIC",),
    "el": ("GREEK",),
    "ar": ("ARABIC",),
    "he": ("HEBREW",),
    "th": ("THAI",),
    "hi": ("DEVANAGARI",),
}
#: Share of letters that must be in the language's script; English terms may fill the rest.
MIN_SCRIPT_SHARE = 0.25


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def is_latin(language: str) -> bool:
    return language not in _SCRIPTS


def _script(char: str) -> str:
    return unicodedata.name(char, "?").split(" ", 1)[0]


def script_problem(text: str, language: str) -> str | None:
    """Why ``text`` is not written in ``language`` (too few letters of its script), or None.

    Text of fewer than 20 letters is not judged.
    """
    wanted = _SCRIPTS.get(language, ("LATIN",))
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 20:
        return None
    share = sum(1 for c in letters if _script(c) in wanted) / len(letters)
    if share >= (MIN_SCRIPT_SHARE if wanted != ("LATIN",) else 0.6):
        return None
    return (
        f"the text is not in {language_name(language)} (only {share:.0%} of its letters "
        f"are {'/'.join(wanted).title()}); write every text value in {language_name(language)}"
    )
