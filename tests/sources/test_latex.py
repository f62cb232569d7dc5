"""LaTeX in titles and abstracts reaches readers as text; the stored text stays as typed."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from newsletter.app import Services
from newsletter.collecting import collect
from newsletter.digest import build_digest, render_view
from newsletter.latex import readable
from newsletter.models import ReaderView
from newsletter.papers import PAPERS, papers_on
from newsletter.search import ensure_index, parse_query, search_papers
from newsletter.sources.fetch import Fetcher
from tests.fakes.feeds import FeedServer
from tests.sources.conftest import configured

DAY = dt.date(2025, 3, 14)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Cram\\'er-Rao bounds", "Cramér-Rao bounds"),
        ("$\\alpha$-divergence", "α-divergence"),
        ("\\textit{Bennett} and \\emph{ratio} in \\texttt{code}", "Bennett and ratio in code"),
        ('Schr\\"odinger', "Schrödinger"),
        ("k$\\geq$2 at 5\\% and $O(1/\\epsilon^2)$", "k≥2 at 5% and O(1/ϵ^2)"),
        ("$\\mathcal{O}(n \\log n)$ with $\\|x\\|_2$", "𝒪(n log n) with ‖x‖_2"),
        ("$\\frac{1}{2}$ and $x_{i}^{2}$ in $\\mathbb{R}^d$", "1/2 and x_i^2 in ℝ^d"),
        # A bare percent sign, ampersand or hash is literal text, not LaTeX syntax.
        ("50% of runs & $\\sim$3 #1 ranks", "50% of runs & ∼3 #1 ranks"),
        # An odd number of dollars is money, not math.
        ("costs $5 per $\\alpha$ run", "costs $5 per $α$ run"),
        # Math it cannot turn into symbols stays readable: unknown macros as typed.
        ("a $\\myop{x}$ rule and \\newthing", "a \\myop{x} rule and \\newthing"),
        ("plain text, untouched", "plain text, untouched"),
        ("", ""),
    ],
)
def test_latex_becomes_text(raw: str, shown: str) -> None:
    assert readable(raw) == shown


def test_broken_latex_is_left_as_typed() -> None:
    # pylatexenc's \href handler fails on this: the raw text is kept, not an error.
    assert readable("see \\href{http://a.example}{here}") == "see \\href{http://a.example}{here}"


def test_mail_text_twin_and_llm_input_show_text_while_the_store_keeps_latex(
    services: Services, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    url = feed_server.serve_file("/rss/x", "arxiv/physics.chem-ph-affiliations-2025-03-14.xml")
    report = collect(configured(services, feeds=[url]), fetcher=fetcher)
    assert report.ok and report.new == 3
    with services.engine.connect() as conn:
        raw = conn.execute(
            sa.select(PAPERS.c.title, PAPERS.c.authors).where(PAPERS.c.arxiv_id == "2503.10027")
        ).one()
    assert raw.title.startswith("Cram\\'er-Rao Bounds for $\\alpha$-Divergence")
    assert "Garc\\\\'ia" in raw.authors  # JSON-escaped backslash: stored as typed

    # What every reader of the papers gets (the digest, the archive, the LLM's input).
    paper = {p.arxiv_id: p for p in papers_on(services.engine, DAY)}["2503.10027"]
    assert paper.title == "Cramér-Rao Bounds for α-Divergence Estimators of Molecular Free Energies"
    assert "the Bennett acceptance ratio attains the bound as α → 0" in paper.abstract
    assert "at 50% overlap" in paper.abstract and "𝒪(1/N)" in paper.abstract
    assert paper.authors == ("Ana García", "Jonas Schröder", "Li Wei")

    digest = build_digest(services, DAY, "en")
    assert digest is not None
    rendered = render_view(services, digest, ReaderView(digest.slugs, "en"))
    for body in (rendered.html, rendered.text):
        assert "Cramér-Rao Bounds for α-Divergence" in body
        assert "Cram\\'er" not in body and "$\\alpha$" not in body
    assert "Δ-Learning Potentials" in rendered.text

    # The archive's search runs on the stored text and shows the readable one.
    ensure_index(services.engine)
    found = search_papers(services.engine, parse_query("Rao divergence"), published_only=False)
    assert [p.title for p in found.papers] == [paper.title]


def test_a_stray_backslash_is_shown_as_typed() -> None:
    assert readable("Why a^2 \\ study") == "Why a^2 \\ study"
    assert readable("ends with \\") == "ends with \\"
