"""An unsubscribed address is never mailed again unless the reader subscribes and confirms."""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.cli import main
from newsletter.delivery.memory import MemoryBackend
from newsletter.errors import InvalidInputError
from newsletter.preview import load_sample
from newsletter.sending import send
from subscribers import csv_io, readers, recipients
from tests.web.conftest import Web, link_path

SAMPLE_DATE = dt.date(2024, 11, 22)


def _recipients(web: Web) -> list[str]:
    return [r.email for r in recipients.active_recipients(web.svc.engine)]


def test_one_click_unsubscribe_then_the_next_send_skips_them(web: Web) -> None:
    load_sample(web.svc)
    stay = web.subscribe_and_confirm("stay@example.com", ["nlp"])
    leave = web.subscribe_and_confirm("leave@example.com", ["nlp"])
    web.client.post(web.unsubscribe_path(leave.id), data={"List-Unsubscribe": "One-Click"})
    outbox = MemoryBackend()
    report = send(web.svc, SAMPLE_DATE, outbox)
    assert report.sent == 1 and [m["To"] for m in outbox.outbox] == ["stay@example.com"]
    assert stay.id != leave.id


def test_reimport_and_cli_add_do_not_revive_an_unsubscribed_address(web: Web) -> None:
    reader = web.subscribe_and_confirm("gone@example.com", ["nlp"])
    readers.unsubscribe(web.svc.engine, reader.id, source="one-click")
    csv = "email,categories,language\nGONE@example.com,llm,ko\nnew@example.com,nlp,en\n"
    assert csv_io.import_csv(web.svc.engine, web.svc.taxonomy, csv, "ko") == (1, 1)
    info = readers.add_active(web.svc.engine, web.svc.taxonomy, "gone@example.com", ["llm"])
    assert info.status == "unsubscribed" and info.categories == ("nlp",)
    assert _recipients(web) == ["new@example.com"]
    with pytest.raises(InvalidInputError, match="only they can subscribe again"):
        readers.set_status(web.svc.engine, reader.id, "active", "cli")
    # The reader subscribes again and confirms: now, and only now, they are mailed.
    web.subscribe("gone@example.com", ["llm"])
    assert _recipients(web) == ["new@example.com"]
    web.confirm(link_path(web.backend.outbox[-1], "confirm"))
    assert sorted(_recipients(web)) == ["gone@example.com", "new@example.com"]
    sources = [e.source for e in readers.events(web.svc.engine, reader.id) if e.kind == "status"]
    assert sources == ["web", "web", "one-click", "web"]


def test_bounced_and_complained_stay_suppressed(web: Web) -> None:
    reader = web.subscribe_and_confirm("dead@example.com")
    readers.set_status(web.svc.engine, reader.id, "bounced", "webhook")
    readers.add_active(web.svc.engine, web.svc.taxonomy, "dead@example.com")
    readers.unsubscribe(web.svc.engine, reader.id)  # keeps "bounced": it already stops mail
    after = web.reader("dead@example.com")
    assert after is not None and after.status == "bounced"
    assert _recipients(web) == []
    trail = readers.events(web.svc.engine, reader.id)
    assert (trail[-1].detail, trail[-1].source) == ("active->bounced", "webhook")


def test_unknown_status_is_refused(web: Web) -> None:
    reader = web.subscribe_and_confirm("x@example.com")
    with pytest.raises(InvalidInputError, match="unknown status 'deleted'"):
        readers.set_status(web.svc.engine, reader.id, "deleted", "cli")


def test_cli_add_says_when_an_address_stays_suppressed(
    web: Web, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = web.subscribe_and_confirm("gone@example.com")
    readers.unsubscribe(web.svc.engine, reader.id)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", web.svc.settings.database_url)
    assert main(["subscribers", "add", "gone@example.com"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("unsubscribed: gone@example.com") and "only they can" in out
    assert _recipients(web) == []


@pytest.mark.parametrize("dead", ["bounced", "complained"])
def test_cli_remove_of_a_bounced_reader_keeps_the_bounce(
    dead: str, web: Web, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``subscribers remove`` and the web's unsubscribe are one path: the bounce is kept."""
    reader = web.subscribe_and_confirm("dead@example.com")
    readers.set_status(web.svc.engine, reader.id, dead, "webhook")
    before = readers.events(web.svc.engine, reader.id)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", web.svc.settings.database_url)
    assert main(["subscribers", "remove", "Dead@Example.com"]) == 0
    assert f"stays {dead}" in capsys.readouterr().out
    after = web.reader("dead@example.com")
    assert after is not None and after.status == dead
    assert readers.events(web.svc.engine, reader.id) == before  # nothing changed, nothing recorded
    assert _recipients(web) == []


@pytest.mark.parametrize("entry", ["cli", "one-click", "manage"])
def test_every_unsubscribe_entry_point_keeps_a_bounce_and_cancels_a_request(
    entry: str, web: Web, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = web.subscribe_and_confirm("dead@example.com")
    readers.set_status(web.svc.engine, reader.id, "bounced", "webhook")
    web.subscribe("dead@example.com")  # the reader asks to come back: a request is outstanding
    confirm_path = link_path(web.backend.outbox[-1], "confirm")
    if entry == "cli":
        monkeypatch.setenv("NEWSLETTER_DATABASE_URL", web.svc.settings.database_url)
        assert main(["subscribers", "remove", "dead@example.com"]) == 0
        capsys.readouterr()
    elif entry == "one-click":
        response = web.client.post(
            web.unsubscribe_path(reader.id), data={"List-Unsubscribe": "One-Click"}
        )
        assert response.status_code == 200
    else:
        path = web.manage_path(reader.id)
        response = web.client.post(path, data={"csrf_token": web.csrf(), "action": "unsubscribe"})
        assert response.status_code == 200
    after = web.reader("dead@example.com")
    assert after is not None and after.status == "bounced"
    last = readers.events(web.svc.engine, reader.id)[-1]
    source = {"cli": "cli", "one-click": "one-click", "manage": "web"}[entry]
    assert (last.kind, last.detail, last.source) == ("request", "cancelled by unsubscribe", source)
    # The cancelled request's link no longer revives the address.
    web.confirm(confirm_path)
    assert (web.reader("dead@example.com") or after).status == "bounced"


def test_cli_remove_of_an_active_reader_unsubscribes(
    web: Web, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = web.subscribe_and_confirm("leave@example.com")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", web.svc.settings.database_url)
    assert main(["subscribers", "remove", "leave@example.com"]) == 0
    assert capsys.readouterr().out.startswith("unsubscribed")
    last = readers.events(web.svc.engine, reader.id)[-1]
    assert (last.kind, last.detail, last.source) == ("status", "active->unsubscribed", "cli")
    assert main(["subscribers", "remove", "nobody@example.com"]) == 2
    assert "no such subscriber" in capsys.readouterr().err
