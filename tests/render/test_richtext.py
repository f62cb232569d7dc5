"""newsletter.richtext: cleaning feed text and converting model markdown safely."""

from __future__ import annotations

import pytest

from newsletter.richtext import (
    Rich,
    clean_block,
    clean_line,
    markdown_block,
    markdown_inline,
    safe_colour,
    safe_url,
)


def test_clean_line_collapses_whitespace_and_drops_controls() -> None:
    assert clean_line(" a\r\n b\tc\x00\x1b[31m d\u2028e ") == "a b c[31m d e"


def test_clean_line_removes_bidi_overrides_but_keeps_rtl_text() -> None:
    assert clean_line("שלום \u202eevil\u202c \u2067x\u2069") == "שלום evil x"


def test_clean_line_caps_length_with_an_ellipsis() -> None:
    assert clean_line("a" * 50, limit=10) == "a" * 9 + "…"
    assert clean_line("short", limit=10) == "short"


def test_clean_block_normalises_line_ends() -> None:
    assert clean_block("a\r\nb\rc\nd") == "a\nb\nc\nd"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://arxiv.org/abs/2411.1", "https://arxiv.org/abs/2411.1"),
        ("http://example.org/x", "http://example.org/x"),
        ("javascript:alert(1)", ""),
        ("JaVaScRiPt:alert(1)", ""),
        ("data:text/html,<b>", ""),
        ("//evil.example/x", ""),
        ("mailto:a@example.com", ""),
    ],
)
def test_safe_url_keeps_only_absolute_http(url: str, expected: str) -> None:
    assert safe_url(url) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("#e4572e", "#e4572e"), ("#abc", "#abc"), ("red", "#888888"), ("#fff;x:y", "#888888")],
)
def test_safe_colour(value: str, expected: str) -> None:
    assert safe_colour(value) == expected


def test_inline_markdown_keeps_emphasis_and_escapes_html() -> None:
    rich = markdown_inline("**new** `kv` <b onclick=x>hi</b> & more")
    assert rich.html == (
        "<strong>new</strong> <code>kv</code> &lt;b onclick=x&gt;hi&lt;/b&gt; &amp; more"
    )
    assert rich.text == "**new** `kv` <b onclick=x>hi</b> & more"


def test_inline_markdown_leaves_block_syntax_literal() -> None:
    assert markdown_inline("1. first").html == "1. first"
    assert markdown_inline("# not a heading").html == "# not a heading"


def test_model_markdown_cannot_add_links_or_images() -> None:
    html = markdown_inline(
        "[a](https://evil.example) ![b](https://track.example/p.png) <https://x.example>"
    ).html
    assert "<a" not in html and "<img" not in html
    assert "https://evil.example" in html  # shown as text


def test_block_markdown_lists_and_demoted_headings_with_direction() -> None:
    html = markdown_block("# Title\r\n\r\n- one\r\n- **two**\r\n\r\n<script>x</script>").html
    assert html == (
        '<h4 dir="auto">Title</h4>\n<ul dir="auto">\n<li>one</li>\n<li><strong>two</strong></li>\n'
        '</ul>\n<p dir="auto">&lt;script&gt;x&lt;/script&gt;</p>\n'
    )


def test_rich_renders_html_in_autoescaped_templates_and_text_elsewhere() -> None:
    import jinja2

    rich = Rich("**a**", "<strong>a</strong>")
    html_env = jinja2.Environment(autoescape=True)
    text_env = jinja2.Environment(autoescape=False)
    assert html_env.from_string("{{ r }}").render(r=rich) == "<strong>a</strong>"
    assert text_env.from_string("{{ r }}").render(r=rich) == "**a**"
