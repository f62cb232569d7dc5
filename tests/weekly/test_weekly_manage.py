"""The preference page offers daily or weekly, and the weekday."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from newsletter.app import Services
from subscribers import readers
from tests.web.conftest import Web, make_web


@pytest.fixture
def web(services: Services) -> Iterator[Web]:
    w = make_web(services)
    yield w
    w.client.close()


def _reader(web: Web) -> readers.SubscriberInfo:
    return readers.add_active(web.svc.engine, web.svc.taxonomy, "m@example.com", ["nlp"], "en")


def _save(web: Web, subscriber_id: int, **data: object) -> httpx2.Response:
    form = {"csrf_token": web.csrf(), "action": "save", "categories": ["nlp"], "language": "en"}
    return web.client.post(web.manage_path(subscriber_id), data={**form, **data})


def test_manage_page_offers_cadence_and_weekday(web: Web) -> None:
    reader = _reader(web)
    page = web.client.get(web.manage_path(reader.id)).text
    assert 'name="cadence" value="daily" checked' in page
    assert 'name="cadence" value="weekly">' in page
    assert '<option value="0" selected>Monday</option>' in page
    assert '<option value="6">Sunday</option>' in page


def test_manage_switches_to_weekly_and_back(web: Web) -> None:
    reader = _reader(web)
    response = _save(web, reader.id, cadence="weekly", weekday="4")
    assert response.status_code == 200
    assert 'name="cadence" value="weekly" checked' in response.text
    assert '<option value="4" selected>Friday</option>' in response.text
    after = web.reader("m@example.com")
    assert after is not None and (after.cadence, after.weekday) == ("weekly", 4)
    trail = readers.events(web.svc.engine, reader.id)
    assert "cadence: daily -> weekly; weekday: mon -> fri" in trail[-1].detail

    assert _save(web, reader.id, cadence="daily", weekday="4").status_code == 200
    after = web.reader("m@example.com")
    assert after is not None and (after.cadence, after.weekday) == ("daily", 4)


def test_a_form_without_cadence_keeps_it(web: Web) -> None:
    reader = _reader(web)
    assert _save(web, reader.id, cadence="weekly", weekday="2").status_code == 200
    assert _save(web, reader.id, language="ko").status_code == 200
    after = web.reader("m@example.com")
    assert after is not None and (after.cadence, after.weekday, after.language) == (
        "weekly",
        2,
        "ko",
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"cadence": "monthly", "weekday": "0"},
        {"cadence": "weekly", "weekday": "7"},
        {"cadence": "weekly", "weekday": "friday"},
        {"cadence": "weekly"},
    ],
)
def test_bad_cadence_is_refused_and_nothing_changes(web: Web, bad: dict[str, str]) -> None:
    reader = _reader(web)
    response = _save(web, reader.id, language="ko", **bad)
    assert response.status_code == 400
    assert "Choose daily or weekly, and a day of the week." in response.text
    assert web.reader("m@example.com") == reader
