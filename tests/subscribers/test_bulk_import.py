"""``subscribers import`` in bulk: a bad file stores nothing, repeats merge, languages are
checked, suppressed readers stay so, a dry run writes nothing; export round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.app import Services
from newsletter.cli import main
from newsletter.errors import InvalidInputError
from subscribers import csv_io, readers
from subscribers.bulk_import import import_readers
from subscribers.stats import reader_stats

HEAD = "email,categories,language\n"


def write(tmp_path: Path, text: str, name: str = "readers.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def test_repeats_merge_last_row_wins_and_known_readers_are_updated(
    services: Services, tmp_path: Path
) -> None:
    tax = services.taxonomy
    readers.add_active(services.engine, tax, "known@example.com", ["nlp"], "ko")
    readers.add_active(services.engine, tax, "gone@example.com")
    readers.unsubscribe_address(services.engine, "gone@example.com")
    text = (
        HEAD
        + "a@example.com,nlp,en\n"
        + "A@Example.com,llm,ko\n"  # the same address: this later row wins
        + "known@example.com,llm,en\n"
        + "gone@example.com,nlp,en\n"
    )
    summary = import_readers(services.engine, tax, write(tmp_path, text), "ko")
    assert (summary.rows, summary.merged) == (4, 1)
    assert (summary.added, summary.updated, summary.suppressed) == (1, 1, 1)
    a = readers.get_by_email(services.engine, "a@example.com")
    assert a is not None and (a.categories, a.language, a.status) == (("llm",), "ko", "active")
    known = readers.get_by_email(services.engine, "known@example.com")
    assert known is not None and (known.categories, known.language) == (("llm",), "en")
    gone = readers.get_by_email(services.engine, "gone@example.com")
    assert gone is not None and gone.status == "unsubscribed"  # the reader's "no" stands
    again = import_readers(services.engine, tax, write(tmp_path, text), "ko")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)


def test_bad_languages_and_addresses_store_nothing_and_are_listed_by_line(
    services: Services, tmp_path: Path
) -> None:
    rows = ["ok@example.com,nlp,en"] + [f"x{n}@example.com,nlp,klingon" for n in range(25)]
    rows.append("not-an-address,nlp,en")
    with pytest.raises(InvalidInputError) as exc:
        import_readers(
            services.engine, services.taxonomy, write(tmp_path, HEAD + "\n".join(rows)), "en"
        )
    message = str(exc.value)
    assert "26 bad rows; nothing was imported" in message
    assert "line 3: unknown language 'klingon'" in message and "line 22:" in message
    assert "line 23:" not in message and "and 6 more" in message  # up to 20 named
    assert readers.get_by_email(services.engine, "ok@example.com") is None


def test_a_bom_and_a_header_only_file(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEAD + "bom@example.com,nlp,en\n").encode())
    summary = import_readers(services.engine, services.taxonomy, path, "ko")
    assert summary.added == 1 and readers.get_by_email(services.engine, "bom@example.com")
    empty = import_readers(services.engine, services.taxonomy, write(tmp_path, HEAD), "ko")
    assert (empty.rows, empty.added) == (0, 0)
    with pytest.raises(InvalidInputError, match="header line"):
        import_readers(services.engine, services.taxonomy, write(tmp_path, ""), "ko")


def test_a_dry_run_writes_nothing_and_says_what_would_change(
    services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", services.settings.database_url)
    path = write(tmp_path, HEAD + "d@example.com,nlp,en\nd@example.com,llm,en\n")
    assert main(["subscribers", "import", str(path), "--dry-run", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["added"], summary["merged"], summary["dry_run"]) == (1, 1, True)
    assert readers.get_by_email(services.engine, "d@example.com") is None
    assert main(["subscribers", "import", str(path)]) == 0
    assert "added: 1" in capsys.readouterr().out
    assert main(["subscribers", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["status"] == {"active": 1} and stats["category"] == {"llm": 1}
    assert stats["language"] == {"en": 1} and stats["cadence"] == {"daily": 1}


def test_a_large_file_imports_and_exports_round_trip(services: Services, tmp_path: Path) -> None:
    count = 100_000 if services.engine.dialect.name == "sqlite" else 20_000
    sets = ["nlp", "llm", '"nlp,computer-vision"']
    lines = [f"r{n}@example.com,{sets[n % 3]},{'en' if n % 2 else 'ko'}" for n in range(count)]
    path = write(tmp_path, HEAD + "\n".join(lines) + "\n")
    summary = import_readers(services.engine, services.taxonomy, path, "ko")
    assert summary.added == count
    exported = csv_io.export_csv(services.engine)
    assert exported.splitlines()[1:] == [line + "," for line in lines]  # no interests
    stats = reader_stats(services.engine)
    assert stats["status"] == {"active": count} and stats["category"]["nlp"] == sum(
        1 for n in range(count) if n % 3 != 1
    )
    again = import_readers(
        services.engine, services.taxonomy, write(tmp_path, exported, "out.csv"), "ko"
    )
    assert (again.unchanged, again.added, again.updated) == (count, 0, 0)
