"""Liked papers from BibTeX and RIS exports: titles and abstracts made plain; a malformed,
oversized or empty file is a clear error and changes nothing."""

from __future__ import annotations

import logging

import pytest

from newsletter.app import Services
from newsletter.errors import InterestsError
from subscribers import readers
from subscribers.interest_files import MAX_FILE_BYTES, parse_bibtex, parse_ris, parse_upload
from subscribers.interests import LikedPaper, get_interests, set_interests
from tests.conftest import DATA

BIB = (DATA / "interests" / "zotero.bib").read_bytes()
RIS = (DATA / "interests" / "zotero.ris").read_bytes()


def bib_entries(count: int) -> bytes:
    return "".join(
        f"@article{{k{n},\n  title = {{Paper number {n}}},\n  abstract = {{About {n}.}},\n}}\n"
        for n in range(count)
    ).encode()


def ris_records(count: int) -> bytes:
    return "".join(f"TY  - JOUR\nTI  - Paper number {n}\nER  - \n\n" for n in range(count)).encode()


def test_a_zotero_bibtex_export_gives_plain_titles_and_abstracts() -> None:
    papers = parse_bibtex(BIB)
    assert [p.title for p in papers] == [
        "Attention Is All You Need",
        "Cramér-Rao bounds for α-divergences in diffusion models",
        "Protein folding with language models: 50% fewer GPU hours",
    ]  # the untitled note is skipped
    assert papers[0].abstract.startswith("We propose a network architecture")
    assert papers[1].abstract == ""


def test_a_zotero_ris_export_gives_titles_and_abstracts() -> None:
    assert parse_ris(RIS) == [
        LikedPaper(
            "Attention Is All You Need",
            "We propose a network architecture for sequence transduction based solely on "
            "attention mechanisms.",
        ),
        LikedPaper(
            "Diffusion models for protein design",
            "Denoising diffusion over backbone coordinates generates novel protein folds.",
        ),
    ]


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (
            parse_bibtex,
            b"@article{a, title={Fine}}\n\n@article{b, title={Unclosed\n\n@misc{c, title={C}}\n",
            "malformed near line 3",
        ),
        (parse_bibtex, b"just some words, no entries", "no entries found in this BibTeX file"),
        (parse_bibtex, b"@misc{a, author={X}}\n@misc{b, year={2020}}", "none of the 2 entries"),
        (parse_bibtex, b"", "no entries found"),
        (parse_bibtex, "@misc{a, title={caf\xe9}}".encode("latin-1"), "not UTF-8 text (line 1)"),
        (parse_bibtex, b"%PDF-1.7\n\x00\x01\x02", "binary file"),
        (parse_ris, b"TY  - JOUR\nTI  - Cut off\nAU  - X\n", "starting on line 1 has no end"),
        (
            parse_ris,
            b"TY  - JOUR\nTI  - A\nER  - \nTY  - JOUR\nTI  - B\nTY  - JOUR\nER  - \n",
            "starting on line 4 has no end ('ER  - ') before the next one on line 6",
        ),
        (parse_ris, b"hello\nTY  - JOUR\nER  - \n", "line 1 of this RIS file is outside"),
        (parse_ris, b"TI  - A\nER  - \n", "line 1 of this RIS file has a TI tag outside"),
        (parse_ris, b"\n\n", "no entries found in this RIS file"),
        (parse_ris, b"TY  - JOUR\nAU  - X\nER  - \n", "none of the 1 entries"),
    ],
)
def test_bad_files_are_refused_with_what_to_fix(parse, data, message) -> None:
    with pytest.raises(InterestsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(data)


def test_a_bad_file_changes_nothing_stored(services: Services) -> None:
    rid = readers.add_active(services.engine, services.taxonomy, "r@example.com").id
    before = set_interests(services.engine, rid, text="speech", papers=parse_bibtex(BIB))
    for bad in (b"@article{x, title={Open", b"TY  - JOUR\nTI  - Cut"):
        with pytest.raises(InterestsError):
            set_interests(services.engine, rid, papers=parse_upload(bad))
    assert get_interests(services.engine, rid) == before


def test_size_limits_name_the_limit() -> None:
    assert len(parse_bibtex(bib_entries(500))) == 500
    assert len(parse_ris(ris_records(500))) == 500
    with pytest.raises(InterestsError, match="501 liked papers is too many; keep 500"):
        parse_bibtex(bib_entries(501))
    with pytest.raises(InterestsError, match="501 liked papers is too many; keep 500"):
        parse_ris(ris_records(501))
    huge = b"@misc{a, title={A}, abstract={" + b"x" * MAX_FILE_BYTES + b"}}"
    with pytest.raises(InterestsError, match="the limit is 2 MB"):
        parse_bibtex(huge)
    with pytest.raises(InterestsError, match="the limit is 2 MB"):
        parse_ris(huge)


def test_repeated_keys_and_titles_are_kept_once() -> None:
    data = b"@misc{a, title={Same Paper}}\n@misc{a, title={same  paper}}\n@misc{b, title={Other}}"
    assert [p.title for p in parse_bibtex(data)] == ["Same Paper", "Other"]


def test_uploads_are_told_apart_by_name_then_by_content() -> None:
    assert parse_upload(BIB, "My Library.BIB") == parse_bibtex(BIB)
    assert parse_upload(RIS, "export.ris") == parse_ris(RIS)
    assert parse_upload(BIB, "export.txt") == parse_bibtex(BIB)
    assert parse_upload(b"\xef\xbb\xbf" + RIS, "") == parse_ris(RIS)
    with pytest.raises(InterestsError, match="not a BibTeX"):
        parse_upload(b"<html>a page</html>", "papers.html")
    with pytest.raises(InterestsError, match="RIS file has a TI tag outside"):
        parse_upload(b"TI  - A\nER  - \n", "x.ris")  # the name wins over the content


def test_a_broken_file_leaves_its_content_out_of_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InterestsError):
        parse_bibtex(b"@article{secret_key, title={My Private Topic\n@misc{b, title={B}}")
    assert "Private" not in caplog.text and "secret_key" not in caplog.text
