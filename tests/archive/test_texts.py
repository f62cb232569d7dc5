"""Every archive text the pages use exists in Korean and English (i18n.py is shared)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

import subscribers.archive
from newsletter.i18n import TEXTS

KEY = re.compile(r"""\bt(?:\.|\[["'])(archive_\w+|\w+)""")
TITLE_KEY = re.compile(r'"(archive_\w+)"')


def _used_keys() -> set[str]:
    web = resources.files("newsletter").joinpath("templates/web")
    sources = [f.read_text("utf-8") for f in web.iterdir() if f.name.startswith("archive_")]
    # archive.py and the modules it is split into (archive_pages, archive_feed, ...).
    modules = sorted(Path(subscribers.archive.__file__).parent.glob("archive*.py"))
    code = "\n".join(m.read_text("utf-8") for m in modules)
    keys = {k for text in [*sources, code] for k in KEY.findall(text)}
    return keys | set(TITLE_KEY.findall(code))


@pytest.mark.parametrize("language", ["ko", "en"])
def test_every_archive_text_exists(language: str) -> None:
    used = _used_keys()
    assert {"archive_title", "archive_issue_missing", "chart_alt", "themes"} <= used
    missing = sorted(k for k in used if k not in TEXTS[language])
    assert not missing, f"newsletter/i18n.py lacks {missing} in {language!r}"
