"""The optional ``interests`` column of ``subscribers import`` and of the export."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from newsletter.app import Services
from newsletter.errors import InvalidInputError
from subscribers import csv_io, readers
from subscribers.bulk_import import import_readers
from subscribers.interests import LikedPaper, get_interests, set_interests


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "readers.csv"
    path.write_text(text, "utf-8")
    return path


def text_of(svc: Services, email: str) -> str | None:
    info = readers.get_by_email(svc.engine, email)
    assert info is not None
    found = get_interests(svc.engine, info.id)
    return found.text if found else None


def test_the_column_sets_text_keeps_papers_and_an_empty_cell_keeps_all(
    services: Services, tmp_path: Path
) -> None:
    tax, engine = services.taxonomy, services.engine
    known = readers.add_active(engine, tax, "known@example.com", ["nlp"], "en")
    set_interests(engine, known.id, text="old words", papers=[LikedPaper("Liked")])
    kept = readers.add_active(engine, tax, "kept@example.com", ["nlp"], "en")
    set_interests(engine, kept.id, text="written on the web")
    gone = readers.add_active(engine, tax, "gone@example.com")
    readers.unsubscribe(engine, gone.id)
    text = (
        "email,categories,language,interests\n"
        'new@example.com,nlp,en,"diffusion, protein design\nand folding"\n'
        "known@example.com,nlp,en,new words\n"
        "kept@example.com,nlp,en,\n"
        "gone@example.com,nlp,en,must not be kept\n"
    )
    dry = import_readers(engine, tax, write(tmp_path, text), "ko", dry_run=True)
    assert dry.interests == 2 and text_of(services, "known@example.com") == "old words"
    summary = import_readers(engine, tax, write(tmp_path, text), "ko")
    assert summary.interests == 2 and summary.line().endswith("interests set: 2")
    assert text_of(services, "new@example.com") == "diffusion, protein design\nand folding"
    now = get_interests(engine, known.id)
    assert now is not None and (now.text, now.papers) == ("new words", (LikedPaper("Liked"),))
    assert text_of(services, "kept@example.com") == "written on the web"
    assert get_interests(engine, gone.id) is None
    events = [e for e in readers.events(engine, known.id) if e.kind == "interests"]
    assert (events[-1].detail, events[-1].source) == ("text 9 characters, 1 papers", "import")
    again = import_readers(engine, tax, write(tmp_path, text), "ko")
    assert again.interests == 0  # unchanged text is not written again


def test_too_long_interests_name_the_line_and_store_nothing(
    services: Services, tmp_path: Path
) -> None:
    rows = ["ok@example.com,nlp,en,fine", f"long@example.com,nlp,en,{'x' * 1001}"]
    path = write(tmp_path, "email,categories,language,interests\n" + "\n".join(rows))
    with pytest.raises(InvalidInputError) as exc:
        import_readers(services.engine, services.taxonomy, path, "ko")
    assert "1 bad rows; nothing was imported" in str(exc.value)
    assert "line 3: the interests text has 1,001 characters" in str(exc.value)
    assert readers.get_by_email(services.engine, "ok@example.com") is None


def test_the_export_carries_interests_and_round_trips(services: Services, tmp_path: Path) -> None:
    engine = services.engine
    a = readers.add_active(engine, services.taxonomy, "a@example.com", ["nlp"], "en")
    readers.add_active(engine, services.taxonomy, "b@example.com", ["llm"], "ko")
    set_interests(engine, a.id, text='quotes " and, commas\nover two lines')
    exported = csv_io.export_csv(engine)
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows == [
        ["email", "categories", "language", "interests"],
        ["a@example.com", "nlp", "en", 'quotes " and, commas\nover two lines'],
        ["b@example.com", "llm", "ko", ""],
    ]
    again = import_readers(engine, services.taxonomy, write(tmp_path, exported), "ko")
    assert (again.unchanged, again.interests) == (2, 0)
