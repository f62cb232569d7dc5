"""Interests on the manage page: free text and a BibTeX/RIS upload, saved, refused with a
reason (changing nothing), escaped, cleared, and erased when the reader unsubscribes."""

from __future__ import annotations

import httpx2
from markupsafe import escape

from newsletter.issue_state import IssueContent
from newsletter.issues import ensure_issue, update_issue
from newsletter.papers import papers_on
from newsletter.preview import load_sample
from subscribers.http_guard import MAX_UPLOAD_BYTES
from subscribers.interest_files import MAX_FILE_BYTES
from subscribers.interests import LikedPaper, get_interests, set_interests
from tests.conftest import DATA
from tests.web.conftest import Web

BIB = (DATA / "interests" / "zotero.bib").read_bytes()
RIS = (DATA / "interests" / "zotero.ris").read_bytes()
MANIPULATION = "Sim-to-Real Reinforcement Learning for Dexterous Manipulation with Tactile Rewards"
TODAY = str(escape("Today's picks for you"))
HOSTILE = '<script>alert("x")</script> & </textarea><b>bold</b>'


def text_post(web: Web, path: str, **data: str) -> httpx2.Response:
    return web.client.post(f"{path}/interests", data={"csrf_token": web.csrf(), **data})


def file_post(web: Web, path: str, name: str, content: bytes) -> httpx2.Response:
    return web.client.post(
        f"{path}/interests-file",
        data={"csrf_token": web.csrf()},
        files={"file": (name, content, "application/octet-stream")},
    )


def test_the_page_saves_text_escaped_and_counts_liked_papers(web: Web) -> None:
    reader = web.subscribe_and_confirm("r@example.com")
    path = web.manage_path(reader.id)
    first = web.client.get(path)
    assert "For you" in first.text and "Papers you like, kept: 0 (of at most 500)." in first.text
    assert 'maxlength="1000"' in first.text and 'enctype="multipart/form-data"' in first.text
    saved = text_post(web, path, action="save", interests=HOSTILE)
    assert saved.status_code == 200 and "Your interests are saved." in saved.text
    assert "<script>" not in saved.text and "<b>bold" not in saved.text
    assert str(escape(HOSTILE)) in saved.text  # shown back as text, in the textarea
    stored = get_interests(web.svc.engine, reader.id)
    assert stored is not None and stored.text == HOSTILE
    uploaded = file_post(web, path, "My Library.bib", BIB)
    assert uploaded.status_code == 200 and "3 papers you like are saved." in uploaded.text
    assert "Papers you like, kept: 3" in uploaded.text
    now = get_interests(web.svc.engine, reader.id)
    assert now is not None and now.text == HOSTILE and len(now.papers) == 3
    ris = file_post(web, path, "export", RIS)  # no extension: told apart by content
    assert "2 papers you like are saved." in ris.text


def test_korean_page(web: Web) -> None:
    reader = web.subscribe_and_confirm("k@example.com", language="ko")
    page = web.client.get(web.manage_path(reader.id))
    assert "맞춤 추천" in page.text and "보관 중인 좋아하는 논문: 0편 (최대 500편)." in page.text
    saved = text_post(web, web.manage_path(reader.id), action="save", interests="확산 모델")
    assert "관심사를 저장했습니다." in saved.text


def test_bad_text_and_files_are_refused_and_change_nothing(web: Web) -> None:
    reader = web.subscribe_and_confirm("r@example.com")
    path = web.manage_path(reader.id)
    before = set_interests(web.svc.engine, reader.id, text="kept", papers=[LikedPaper("Mine")])
    long = "가" * 1001
    refused = text_post(web, path, action="save", interests=long)
    assert refused.status_code == 400
    assert "Your interests have 1,001 characters; shorten them to 1,000." in refused.text
    assert long in refused.text  # what the reader typed is still there to shorten
    for name, content, reason in [
        ("bad.bib", b"@article{a, title={Unclosed\n", "malformed near line 1"),
        ("cut.ris", b"TY  - JOUR\nTI  - Cut off\n", "has no end"),
        ("latin1.bib", "@misc{a, title={caf\xe9}}".encode("latin-1"), "not UTF-8 text"),
        ("page.html", b"<html></html>", "not a BibTeX (.bib) or RIS (.ris) file"),
        (
            "many.ris",
            b"".join(f"TY  - JOUR\nTI  - Paper {n}\nER  - \n".encode() for n in range(501)),
            "keep 500 at most",
        ),
    ]:
        response = file_post(web, path, name, content)
        assert response.status_code == 400, name
        assert "That file could not be used:" in response.text and reason in response.text
    empty = web.client.post(f"{path}/interests-file", data={"csrf_token": web.csrf()})
    assert empty.status_code == 400 and "Choose a .bib or .ris file first." in empty.text
    no_csrf = web.client.post(f"{path}/interests", data={"action": "clear"})
    assert no_csrf.status_code == 403
    unknown = text_post(web, path, action="delete-everything")
    assert unknown.status_code == 400
    assert get_interests(web.svc.engine, reader.id) == before


def test_an_upload_over_the_limit_is_413(web: Web) -> None:
    reader = web.subscribe_and_confirm("r@example.com")
    path = web.manage_path(reader.id)
    assert MAX_UPLOAD_BYTES > MAX_FILE_BYTES
    huge = file_post(web, path, "huge.bib", b"%" * MAX_UPLOAD_BYTES)
    assert huge.status_code == 413 and "파일이 너무 큽니다" in huge.text  # site language
    # Just under the guard's limit, over the parser's: the page names the limit.
    big = file_post(web, path, "big.bib", b"%" * (MAX_FILE_BYTES + 1))
    assert big.status_code == 400 and "the limit is 2 MB" in big.text
    assert get_interests(web.svc.engine, reader.id) is None


def test_clear_and_unsubscribe_erase_them(web: Web) -> None:
    reader = web.subscribe_and_confirm("r@example.com")
    path = web.manage_path(reader.id)
    file_post(web, path, "a.bib", BIB)
    cleared = text_post(web, path, action="clear")
    assert "Your interests are forgotten." in cleared.text
    assert get_interests(web.svc.engine, reader.id) is None
    assert "Forget my interests" not in cleared.text  # nothing left to forget
    text_post(web, path, action="save", interests="private")
    left = web.client.post(path, data={"csrf_token": web.csrf(), "action": "unsubscribe"})
    assert left.status_code == 200
    assert get_interests(web.svc.engine, reader.id) is None
    again = text_post(web, path, action="save", interests="back?")
    assert again.status_code == 409 and get_interests(web.svc.engine, reader.id) is None
    assert file_post(web, path, "a.bib", BIB).status_code == 409


def test_the_page_shows_todays_block_for_the_interests(web: Web) -> None:
    date = load_sample(web.svc)
    issue = ensure_issue(web.svc.engine, date)
    assert issue.id is not None
    papers = papers_on(web.svc.engine, date)
    content = IssueContent(classification={p.arxiv_id: ("nlp",) for p in papers})
    update_issue(web.svc.engine, issue.id, content=content.dump(), status="classified")
    reader = web.subscribe_and_confirm("r@example.com", ["nlp"])
    path = web.manage_path(reader.id)
    assert TODAY not in web.client.get(path).text  # no interests, no block
    saved = text_post(web, path, action="save", interests="tactile sensing for robot hands")
    assert TODAY in saved.text and str(escape(MANIPULATION)) in saved.text
    assert 'href="#interests"' in saved.text  # its link leads to the form on this page
    assert saved.text.count('id="interests"') == 1
    cleared = text_post(web, path, action="clear")
    assert TODAY not in cleared.text
