"""The category distribution chart: a horizontal bar PNG with Hangul-capable text.

matplotlib is imported inside ``render_chart`` so that importing the package stays fast.
"""

from __future__ import annotations

import importlib.util
import io
from functools import lru_cache
from pathlib import Path

from newsletter.errors import RenderError

_SYSTEM_FONTS = (
    Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)


def _font_file() -> Path:
    """NanumGothic shipped inside koreanize-matplotlib's wheel, else a system CJK font."""
    spec = importlib.util.find_spec("koreanize_matplotlib")
    candidates = list(_SYSTEM_FONTS)
    if spec is not None and spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
        candidates.insert(0, base / "fonts" / "NanumGothic.ttf")
    for path in candidates:
        if path.is_file():
            return path
    raise RenderError(
        "no Hangul font found for the chart; install the Python package koreanize-matplotlib "
        "or the Debian package fonts-nanum"
    )


@lru_cache(maxsize=1)
def font_family() -> str:
    """Register the CJK font with matplotlib once and return its family name."""
    from matplotlib import font_manager

    path = _font_file()
    for sibling in (path, path.with_name(path.stem + "Bold" + path.suffix)):
        if sibling.is_file():
            font_manager.fontManager.addfont(str(sibling))
    return font_manager.FontProperties(fname=str(path)).get_name()


def render_chart(counts: list[tuple[str, int, str]], title: str, *, scale: float = 2.0) -> bytes:
    """PNG bytes of a bar per (label, count, colour), largest on top, at ``scale``x."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    family = font_family()
    rows = sorted(counts, key=lambda item: item[1])
    height = 0.9 + 0.32 * max(len(rows), 1)
    with plt.rc_context({"font.family": family, "font.size": 9}):
        fig, ax = plt.subplots(figsize=(5.6, height), dpi=100 * scale)
        try:
            labels = [label for label, _, _ in rows]
            values = [value for _, value, _ in rows]
            ax.barh(labels, values, color=[colour for _, _, colour in rows], height=0.7)
            for y, value in enumerate(values):
                ax.text(value, y, f" {value}", va="center", fontsize=8, color="#333333")
            ax.set_title(title, loc="left", fontsize=11, fontweight="bold", color="#222222")
            for side in ("top", "right", "bottom"):
                ax.spines[side].set_visible(False)
            ax.xaxis.set_visible(False)
            ax.set_xlim(0, max(values or [1]) * 1.15)
            fig.tight_layout()
            out = io.BytesIO()
            fig.savefig(out, format="png", metadata={"Software": None})
        finally:
            plt.close(fig)
    return _shrink(out.getvalue())


def _shrink(png: bytes) -> bytes:
    """Quantise to a palette (charts have few colours) to stay well under 60 KB."""
    try:
        from PIL import Image
    except ImportError:
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=64).save(out, format="PNG", optimize=True)
    data = out.getvalue()
    return data if len(data) < len(png) else png
