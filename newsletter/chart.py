"""The category distribution chart: a horizontal bar PNG with Hangul-capable text.

matplotlib is imported inside the functions so that importing the package stays fast.
The PNG is drawn at 2x and shown at half its width in the e-mail, so it is sharp on
high-density screens; its fonts are sized for that half width on a 375 px phone.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from newsletter.errors import RenderError

log = logging.getLogger(__name__)

_SYSTEM_FONTS = (
    Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)
#: Latin, Greek and Cyrillic glyphs the CJK font may lack come from matplotlib's own font.
FALLBACK_FAMILY = "DejaVu Sans"
#: Width of the chart in the e-mail, in CSS pixels; the PNG is ``scale`` times wider.
DISPLAY_WIDTH = 480
TEXT_COLOUR = "#24292f"


def font_file() -> Path:
    """A Hangul font file: Debian's fonts-nanum (with its bold), else koreanize-matplotlib's."""
    candidates = list(_SYSTEM_FONTS)
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is not None and spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
        candidates.insert(1, base / "fonts" / "NanumGothic.ttf")
    for path in candidates:
        if path.is_file():
            return path
    raise RenderError(
        "no Hangul font found for the chart; install the Debian package fonts-nanum "
        "or the Python package koreanize-matplotlib"
    )


@lru_cache(maxsize=1)
def _registered() -> tuple[str, bool]:
    """Register the CJK font (and its bold face, if any) once: (family name, has bold).

    Registering the files directly avoids matplotlib's font cache, which would not
    know a font installed after the cache was built and silently draw empty boxes.
    """
    from matplotlib import font_manager

    path = font_file()
    bold = path.with_name(path.stem + "Bold" + path.suffix)
    for face in (path, bold):
        if face.is_file():
            font_manager.fontManager.addfont(str(face))
    return str(font_manager.FontProperties(fname=str(path)).get_name()), bold.is_file()


def font_family() -> str:
    """The family name of the registered Hangul font."""
    return _registered()[0]


def missing_glyphs(text: str) -> str:
    """The characters of ``text`` that neither the CJK font nor the fallback can draw."""
    from matplotlib import font_manager

    font_family()
    charmaps = [
        set(font_manager.get_font(font_file()).get_charmap()),
        set(
            font_manager.get_font(
                font_manager.findfont(FALLBACK_FAMILY, fallback_to_default=True)
            ).get_charmap()
        ),
    ]
    return "".join(
        sorted({c for c in text if not c.isspace() and all(ord(c) not in m for m in charmaps)})
    )


def render_chart(counts: list[tuple[str, int, str]], title: str, *, scale: float = 2.0) -> bytes:
    """PNG bytes of a bar per (label, count, colour), largest on top, at ``scale``x.

    A label glyph that no font has is logged as a warning (the chart still goes out).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    family, has_bold = _registered()
    # NanumGothicBold declares weight 600; asking for exactly that (in that family only, as
    # the fallback has no 600) avoids a findfont warning per draw.
    weight = "semibold" if has_bold else "normal"
    rows = sorted(counts, key=lambda item: item[1])
    width = DISPLAY_WIDTH / 100
    height = 0.75 + 0.36 * max(len(rows), 1)
    style: dict[Any, Any] = {
        "font.family": [family, FALLBACK_FAMILY],
        "font.size": 11,
        "text.color": TEXT_COLOUR,
        "ytick.color": TEXT_COLOUR,
    }
    with plt.rc_context(style), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig, ax = plt.subplots(figsize=(width, height), dpi=100 * scale)
        try:
            labels = [label for label, _, _ in rows]
            values = [value for _, value, _ in rows]
            ax.barh(labels, values, color=[colour for _, _, colour in rows], height=0.68)
            for y, value in enumerate(values):
                ax.text(
                    value,
                    y,
                    f" {value}",
                    va="center",
                    fontsize=10,
                    fontweight=weight,
                    family=family,
                )
            ax.set_title(title, loc="left", fontsize=12, fontweight=weight, family=family, pad=10)
            for side in ("top", "right", "bottom", "left"):
                ax.spines[side].set_visible(False)
            ax.tick_params(axis="y", length=0, pad=6)
            ax.xaxis.set_visible(False)
            ax.set_xlim(0, max(values or [1]) * 1.12)
            ax.margins(y=0.02)
            fig.tight_layout(pad=0.6)
            out = io.BytesIO()
            fig.savefig(out, format="png", metadata={"Software": None}, facecolor="white")
        finally:
            plt.close(fig)
    for warning in caught:
        if "missing from font" in str(warning.message):
            log.warning("chart: %s", warning.message)
    return _shrink(out.getvalue())


def _shrink(png: bytes) -> bytes:
    """Quantise to a palette (charts have few colours) to stay well under 60 KB."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=64).save(out, format="PNG", optimize=True)
    data = out.getvalue()
    return data if len(data) < len(png) else png
