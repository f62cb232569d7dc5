"""The chart: Hangul drawn with a real Hangul font, category colours, 2x PNG under 60 KB."""

from __future__ import annotations

import io
import logging
import warnings

import pytest

from newsletter.chart import DISPLAY_WIDTH, font_family, missing_glyphs, render_chart
from newsletter.i18n import texts
from tests.render.factory import taxonomy


def _counts(language: str) -> list[tuple[str, int, str]]:
    return [(c.name(language), 3 + 7 * i, c.color) for i, c in enumerate(taxonomy().categories)]


def _draw(language: str) -> tuple[bytes, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render_chart(_counts(language), texts(language)["chart_title"])
    return png, [str(w.message) for w in caught]


@pytest.mark.parametrize("language", ["ko", "en"])
def test_no_label_glyph_falls_back_to_an_empty_box(
    language: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="newsletter.chart"):
        _, caught = _draw(language)
    assert not [m for m in caught if "missing from font" in m]
    assert "missing from font" not in caplog.text
    for label, _, _ in _counts(language):
        assert missing_glyphs(label) == ""
    assert missing_glyphs(texts(language)["chart_title"]) == ""


def test_hangul_labels_are_drawn_with_the_hangul_font_itself() -> None:
    """The font matplotlib picks for the chart's first family holds every Hangul syllable."""
    from matplotlib import font_manager

    family = font_family()
    used = font_manager.findfont(family, fallback_to_default=False)
    assert font_manager.FontProperties(fname=used).get_name() == family == "NanumGothic"
    charmap = font_manager.get_font(used).get_charmap()
    hangul = {c for label, _, _ in _counts("ko") for c in label if "\uac00" <= c <= "\ud7a3"}
    assert hangul and all(ord(c) in charmap for c in hangul)


def test_a_glyph_no_font_has_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert missing_glyphs("abc \ue123 한") == "\ue123"
    with caplog.at_level(logging.WARNING, logger="newsletter.chart"):
        png = render_chart([("odd \ue123", 1, "#4c78a8")], "t")
    assert png.startswith(b"\x89PNG")
    assert "missing from font" in caplog.text


def test_png_is_twice_the_display_width_and_under_60_kb() -> None:
    from PIL import Image

    png, _ = _draw("ko")
    assert png.startswith(b"\x89PNG")
    assert len(png) < 60 * 1024
    image = Image.open(io.BytesIO(png))
    assert image.width == 2 * DISPLAY_WIDTH
    assert image.height > 2 * 0.36 * 100 * len(taxonomy().categories)


def test_each_bar_has_its_category_colour() -> None:
    from PIL import Image

    png, _ = _draw("en")
    pixels = Image.open(io.BytesIO(png)).convert("RGB")
    colours: set[tuple[int, ...]] = set()
    for _, rgb in pixels.getcolors(maxcolors=1 << 16) or []:
        assert isinstance(rgb, tuple)  # an RGB image counts (r, g, b) triples
        colours.add(rgb)

    def near(hex_colour: str) -> bool:
        target = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return any(sum(abs(a - b) for a, b in zip(c, target, strict=True)) <= 24 for c in colours)

    for category in taxonomy().categories:
        assert near(category.color), category.slug
