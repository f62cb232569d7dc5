"""Author lists as publishers write them: affiliations, "and", HTML, Atom authors."""

from __future__ import annotations

import pytest

from newsletter.models import Paper
from newsletter.sources.authors import clean_name, names_of, split_authors

NIRMAL = (
    "M. R. Nirmal (Department of Chemistry, College of Engineering Guindy (Anna University), "
    "Chennai, India), A. B. Other (IIT Madras, Chennai, India)"
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (NIRMAL, ("M. R. Nirmal", "A. B. Other")),
        ("Lena Fischer and Omar Haddad", ("Lena Fischer", "Omar Haddad")),
        ("A. Bee, C. Dee, and E. Eff", ("A. Bee", "C. Dee", "E. Eff")),
        ("A. Bee (X), C. Dee (Y) and E. Eff (Z (W))", ("A. Bee", "C. Dee", "E. Eff")),
        ("Priya Raman (IBM Research [Zurich]), Tomás Novak", ("Priya Raman", "Tomás Novak")),
        (
            '<a href="http://arxiv.org/find/au:+Doe_J">Jane Doe</a>, <a href="x">Jo Ro</a>',
            ("Jane Doe", "Jo Ro"),
        ),
        ("Jane Doe &amp; co", ("Jane Doe & co",)),
        ("Alexander Anderson", ("Alexander Anderson",)),
        ("Wei Wang, Wei Wang", ("Wei Wang", "Wei Wang")),  # two people may share a name
        ("Ada Byron et al.", ("Ada Byron",)),
        ("", ()),
    ],
)
def test_author_strings_are_split_into_names(raw: str, expected: tuple[str, ...]) -> None:
    assert split_authors(raw) == expected


def test_an_affiliation_cut_short_ends_the_name() -> None:
    assert clean_name("M. R. Nirmal (Department of Chemistry") == "M. R. Nirmal"
    assert split_authors("Stray) Name, Other") == ("Stray) Name", "Other")


def test_atom_authors_are_each_a_name() -> None:
    authors = [{"name": "Jane Doe"}, {"name": "Doe, John"}, {"name": "A. Bee and C. Dee"}]
    assert names_of(authors) == ("Jane Doe", "Doe, John", "A. Bee", "C. Dee")


def test_first_author_et_al_never_carries_an_affiliation() -> None:
    import datetime as dt

    paper = Paper("2503.10011", "T", "A", split_authors(NIRMAL), dt.date(2025, 3, 14))
    assert paper.short_authors == "M. R. Nirmal et al."
