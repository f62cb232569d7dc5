"""Unit tests of the foundation's stages and stores, each over plain values or a real database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from newsletter import classify, summarize
from newsletter.app import Services
from newsletter.categories import load_taxonomy
from newsletter.delivery import ledger
from newsletter.errors import ConfigurationError, InvalidInputError, UnknownCategoryError
from newsletter.issues import ensure_issue, get_issue
from newsletter.models import Paper, SendResult
from newsletter.papers import papers_on, upsert_papers
from newsletter.preview import load_sample
from newsletter.settings import load_settings
from newsletter.statuses import SendOutcome
from subscribers import csv_io, readers


def paper(arxiv_id: str, title: str, abstract: str = "", classes: tuple[str, ...] = ()) -> Paper:
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=("Ada Lovelace", "Alan Turing"),
        announced=dt.date(2024, 11, 22),
        primary_class=classes[0] if classes else "",
        classes=classes,
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
    )


def test_settings_lists_accept_json_and_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_FEEDS", "http://a/rss, http://b/rss")
    assert load_settings().feeds == ["http://a/rss", "http://b/rss"]
    monkeypatch.setenv("NEWSLETTER_FEEDS", '["http://c/rss"]')
    assert load_settings().feeds == ["http://c/rss"]


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigurationError, match="NEWSLETTER_TIMEZONE"):
        load_settings()


def test_taxonomy_is_stable_and_validates() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.slugs[:3] == ("cybersecurity", "nlp", "computer-vision")
    assert taxonomy.slugs[-1] == "other"
    assert taxonomy.validate(["llm", "nlp"]) == ("nlp", "llm")  # taxonomy order
    with pytest.raises(UnknownCategoryError, match="'nope'"):
        taxonomy.validate(["nlp", "nope"])


def test_broken_category_file_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "cats.json"
    bad.write_text("[{]", "utf-8")
    with pytest.raises(ConfigurationError, match="category file"):
        load_taxonomy(bad)
    no_other = tmp_path / "cats2.json"
    no_other.write_text(json.dumps([{"slug": "x", "emoji": "x", "names": {}, "description": ""}]))
    with pytest.raises(ConfigurationError, match="'other'"):
        load_taxonomy(no_other)


def test_rules_use_classes_and_keywords() -> None:
    taxonomy = load_taxonomy()
    papers = [
        paper("1", "Jailbreak attacks on chat assistants", classes=("cs.CR",)),
        paper("2", "Panoptic segmentation of video", classes=("cs.CV",)),
        paper("3", "A changelog generator", classes=("cs.SE",)),
        paper("4", "Large language models as translators", classes=("cs.CL",)),
    ]
    result = classify.classify_rules(papers, taxonomy)
    assert result["1"] == ("cybersecurity",)
    assert result["2"] == ("computer-vision",)
    assert result["3"] == ("other",)
    assert "nlp" in result["4"]
    assert all(1 <= len(slugs) <= classify.MAX_CATEGORIES for slugs in result.values())


def test_extractive_report_cites_only_its_papers() -> None:
    taxonomy = load_taxonomy()
    papers = [
        paper(
            "1", "Reranker scaling", "Rerankers degrade. They lose 12% at 1000 docs.", ("cs.IR",)
        ),
        paper("2", "Translation retrieval", "We translate. It adds 2 BLEU.", ("cs.CL",)),
    ]
    report = summarize.extractive_report(taxonomy.get("nlp"), papers, "en")
    assert {n.arxiv_id for n in report.notable} <= {"1", "2"}
    assert report.covered == report.total == 2
    assert "They lose 12% at 1000 docs." in report.findings
    assert "2 new papers in Natural Language Processing" in report.conclusion


def test_papers_are_stored_once(services: Services) -> None:
    date = load_sample(services)
    again = load_sample(services)
    assert date == again == dt.date(2024, 11, 22)
    assert len(papers_on(services.engine, date)) == 24
    p = papers_on(services.engine, date)[0]
    assert p.authors and p.classes and p.abs_url.startswith("https://arxiv.org/abs/")
    assert upsert_papers(services.engine, [p]) == 0


def test_ledger_claims_each_reader_once(services: Services) -> None:
    load_sample(services)
    a = readers.add_active(services.engine, services.taxonomy, "a@example.com")
    b = readers.add_active(services.engine, services.taxonomy, "b@example.com")
    issue = ensure_issue(services.engine, dt.date(2024, 11, 22))
    assert issue.id is not None
    first = ledger.claim(services.engine, issue.id, [(a.id, "nlp"), (b.id, "nlp")])
    second = ledger.claim(services.engine, issue.id, [(a.id, "nlp"), (b.id, "nlp")])
    assert first == {a.id, b.id} and second == set()
    ledger.record(services.engine, issue.id, [(a.id, SendResult("a", SendOutcome.SENT, "m1"))])
    assert ledger.mark_stale_unknown(services.engine, issue.id) == 1  # b was left "sending"
    assert ledger.counts(services.engine, issue.id) == {"sent": 1, "unknown": 1}
    assert ledger.claim(services.engine, issue.id, [(b.id, "nlp")]) == set()


def test_addresses_are_unique_case_insensitively(services: Services) -> None:
    tax = services.taxonomy
    first = readers.add_active(services.engine, tax, " Reader@Example.COM ", ["nlp"])
    second = readers.add_active(services.engine, tax, "reader@example.com", ["llm"])
    assert first.id == second.id and second.categories == ("llm",)
    assert len(readers.list_subscribers(services.engine)) == 1


def test_import_keeps_suppressed_and_is_all_or_nothing(services: Services) -> None:
    tax = services.taxonomy
    readers.add_active(services.engine, tax, "gone@example.com")
    readers.unsubscribe_address(services.engine, "gone@example.com")
    good = 'email,categories,language\nnew@example.com,"nlp,llm",en\ngone@example.com,,ko\n'
    assert csv_io.import_csv(services.engine, tax, good, "ko") == (1, 1)
    gone = readers.get_by_email(services.engine, "gone@example.com")
    assert gone is not None and gone.status == "unsubscribed"
    bad = "email,categories,language\nok@example.com,nlp,ko\nnot-an-address,nlp,ko\n"
    with pytest.raises(InvalidInputError, match="line 3"):
        csv_io.import_csv(services.engine, tax, bad, "ko")
    assert readers.get_by_email(services.engine, "ok@example.com") is None
    exported = csv_io.export_csv(services.engine)
    assert exported.splitlines()[0] == "email,categories,language,interests"
    assert 'new@example.com,"nlp,llm",en,' in exported


def test_languages_built_concurrently_are_all_kept(services: Services) -> None:
    """Two processes building different languages of one issue must not lose either."""
    import threading

    from newsletter.digest import build_digest

    date = load_sample(services)
    assert build_digest(services, date, "ko") is not None
    errors: list[BaseException] = []

    def build(language: str) -> None:
        try:
            build_digest(services, date, language)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(lang,)) for lang in ("en", "ja", "de")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    issue = get_issue(services.engine, date)
    assert issue is not None
    stored = json.loads(issue.content)
    assert set(stored["reports"]) == {"ko", "en", "ja", "de"}
    assert set(stored["charts"]) == {"ko", "en", "ja", "de"}


def test_database_errors_are_told_without_their_sql_or_parameters() -> None:
    import sqlalchemy as sa

    from newsletter.errors import DatabaseError, database_error, one_line

    driver = RuntimeError("server closed the connection\nunexpectedly")
    exc = sa.exc.OperationalError("UPDATE subscribers SET email=%(e)s", {"e": "a@b.c"}, driver)
    assert one_line(exc) == "server closed the connection unexpectedly"
    known = database_error(exc)
    assert isinstance(known, DatabaseError) and "went away" in str(known)
    assert "UPDATE" not in str(known) and "a@b.c" not in str(known)
    assert database_error(ValueError("not a database error")) is None
