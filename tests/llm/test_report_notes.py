"""The last rung of a report: a note per paper, a conclusion, a translation.

A small model that fails every whole-report format still gets its report written
from small questions, in the reader's language, and a format that failed twice in
a run is not asked again for the other categories.
"""

from __future__ import annotations

import json

from newsletter.categories import load_taxonomy
from newsletter.llm_client import LLMClient
from newsletter.report_notes import TRIES, lines_parser, note_parser
from newsletter.summarize import llm_report, write_reports
from tests.fakes.llm_server import FakeLLMServer, Step
from tests.llm.helpers import day_of, paper

TAXONOMY = load_taxonomy()
NLP = TAXONOMY.get("nlp")
#: Every whole-report rung for a provider that takes a schema: schema, its repair, JSON, text.
WHOLE_REPORT_RUNGS = 4


def _hangul(text: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" for c in text)


def _tasks(server: FakeLLMServer) -> list[str]:
    return [s.task for s in server.seen]


def test_a_model_that_fails_every_format_writes_the_report_one_paper_at_a_time(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    papers = day_of(3)
    llm_server.script(*[Step("wrong_language", task="report")] * WHOLE_REPORT_RUNGS)
    report = llm_report(NLP, papers, "ko", llm_client)
    assert _tasks(llm_server) == ["report"] * 4 + ["note"] * 3 + ["conclusion", "translate"]
    assert report.made_by == "openai/test-model"
    assert [n.arxiv_id for n in report.notable] == [p.arxiv_id for p in papers]
    assert all(_hangul(n.line) for n in report.notable) and _hangul(report.conclusion)
    assert report.findings == () and report.themes and report.keywords
    # the note is asked in English about one paper, as data
    note = llm_server.seen[4]
    assert "<paper>" in note.user and papers[0].arxiv_id in note.user
    assert "Korean" not in note.system


def test_the_second_language_costs_only_its_translation(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    papers = day_of(2)
    llm_server.script(*[Step("wrong_language", task="report")] * WHOLE_REPORT_RUNGS)
    llm_report(NLP, papers, "ko", llm_client)
    llm_server.reset()
    llm_server.script(*[Step("no_citation", task="report")] * WHOLE_REPORT_RUNGS)
    report = llm_report(NLP, papers, "en", llm_client)
    # the notes and the conclusion come from the cache; English needs no translation
    assert _tasks(llm_server) == ["report"] * 4
    assert report.made_by == "openai/test-model" and not _hangul(report.conclusion)


def test_a_format_that_failed_twice_is_skipped_for_the_rest_of_the_run(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    slugs = ["nlp", "llm", "computer-vision"]
    grouped = {slug: tuple(day_of(2 + i)) for i, slug in enumerate(slugs)}
    llm_server.script(*[Step("wrong_language", task="report")] * (2 * WHOLE_REPORT_RUNGS))
    reports = write_reports(grouped, TAXONOMY, "ko", llm_client)
    assert all(r.made_by == "openai/test-model" for r in reports.values())
    # two categories climbed the whole ladder; the third went straight to the notes
    assert llm_server.count_of("report") == 2 * WHOLE_REPORT_RUNGS
    assert llm_server.count_of("translate") == 3


def test_a_copied_note_is_left_out_and_a_failed_translation_is_asked_line_by_line(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    papers = day_of(3)
    llm_server.script(*[Step("wrong_language", task="report")] * WHOLE_REPORT_RUNGS)
    llm_server.script(Step("copied", task="note"), Step("wrong_language", task="translate"))
    report = llm_report(NLP, papers, "ko", llm_client)
    assert [n.arxiv_id for n in report.notable] == [p.arxiv_id for p in papers[1:]]
    # all three lines at once came back in English; then each line alone
    assert llm_server.count_of("translate") == 1 + 3
    assert all(_hangul(n.line) for n in report.notable)


def test_no_usable_note_falls_back_to_the_extractive_report(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    papers = day_of(2)
    llm_server.script(*[Step("wrong_language", task="report")] * WHOLE_REPORT_RUNGS)
    llm_server.script(*[Step("copied", task="note")] * 2)
    reports = write_reports({"nlp": tuple(papers)}, TAXONOMY, "ko", llm_client)
    assert reports["nlp"].made_by == "extractive"
    assert llm_server.count_of("conclusion") == 0


def test_a_conclusion_that_repeats_the_notes_is_asked_again_then_refused(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    papers = day_of(2)
    llm_server.script(*[Step("no_citation", task="report")] * WHOLE_REPORT_RUNGS)
    llm_server.script(Step("copied", task="conclusion"))
    again = write_reports({"nlp": tuple(papers)}, TAXONOMY, "en", llm_client)
    assert again["nlp"].made_by == "openai/test-model"
    assert llm_server.count_of("conclusion") == 2
    llm_server.reset()
    llm_server.script(*[Step("no_citation", task="report")] * WHOLE_REPORT_RUNGS)
    llm_server.script(*[Step("copied", task="conclusion")] * TRIES)
    refused = write_reports({"llm": tuple(day_of(3))}, TAXONOMY, "en", llm_client)
    assert refused["llm"].made_by == "extractive"


def test_a_note_loses_a_copied_title_in_front_and_numbered_lines_are_read_leniently() -> None:
    p = paper("2411.00001", "Hymba: A Hybrid-head Architecture")
    parse = note_parser(p)
    assert parse("Hymba: A Hybrid-head Architecture. It mixes attention with SSM heads.").line == (
        "It mixes attention with SSM heads."
    )
    assert parse('\n- [2411.00001] "A fresh take on small models."\n').line == (
        "A fresh take on small models."
    )
    lines = lines_parser(2)("Here you go:\n1) 첫째 줄\n2. 둘째 줄\n3. extra")
    assert lines.lines == ["첫째 줄", "둘째 줄"]
    assert lines_parser(1)("하나의 문장입니다.").lines == ["하나의 문장입니다."]
    assert json.loads(lines.model_dump_json())["lines"][1] == "둘째 줄"


def test_a_later_run_skips_the_formats_that_kept_failing_from_its_first_category(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    grouped = {slug: tuple(day_of(2 + i)) for i, slug in enumerate(["nlp", "llm"])}
    llm_server.script(*[Step("wrong_language", task="report")] * (2 * WHOLE_REPORT_RUNGS))
    write_reports(grouped, TAXONOMY, "ko", llm_client)
    llm_server.reset()
    later = LLMClient(llm_client.settings, llm_client.engine, llm_client.day)
    report = llm_report(TAXONOMY.get("computer-vision"), day_of(4), "ko", later)
    assert report.made_by == "openai/test-model"
    assert llm_server.count_of("report") == 0  # straight to the notes, no whole-report format
    # English was never tried: it climbs the ladder as usual
    llm_report(TAXONOMY.get("computer-vision"), day_of(4), "en", later)
    assert llm_server.count_of("report") == 1


def test_one_failure_that_cost_a_minute_is_enough_to_skip_a_format() -> None:
    from newsletter.llm_jobs import COSTLY_FAILURE_SECONDS, TrackRecord

    kept: list[str] = []
    track = TrackRecord(keep=kept.append)
    track.note("fast", ok=False, seconds=2.0)
    assert not track.failing("fast")  # one quick failure may be bad luck
    track.note("slow", ok=False, seconds=COSTLY_FAILURE_SECONDS + 1)
    assert track.failing("slow") and kept == ["slow"]
    track.note("slow", ok=False, seconds=COSTLY_FAILURE_SECONDS + 1)
    assert kept == ["slow"]  # the verdict is kept once
    track.note("mixed", ok=True)
    track.note("mixed", ok=False, seconds=COSTLY_FAILURE_SECONDS + 1)
    assert not track.failing("mixed")  # it worked once in this run


def test_a_line_that_gets_no_translation_twice_is_left_out(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    papers = day_of(2)
    llm_server.script(*[Step("wrong_language", task="report")] * WHOLE_REPORT_RUNGS)
    # all lines at once, then the first line TRIES times: English every time
    llm_server.script(*[Step("wrong_language", task="translate")] * (1 + TRIES))
    report = llm_report(NLP, papers, "ko", llm_client)
    assert [n.arxiv_id for n in report.notable] == [papers[1].arxiv_id]
    assert llm_server.count_of("translate") == 1 + TRIES + 1 + 1


def test_translating_all_lines_at_once_stops_after_it_failed_twice(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    grouped = {slug: tuple(day_of(2)) for slug in ("nlp", "llm", "computer-vision")}
    llm_server.script(*[Step("wrong_language", task="report")] * (2 * WHOLE_REPORT_RUNGS))
    at_once_fails = [Step("missing", task="translate")] + [Step("ok", task="translate")] * 3
    llm_server.script(*at_once_fails, *at_once_fails)
    reports = write_reports(grouped, TAXONOMY, "ko", llm_client)
    assert all(r.made_by == "openai/test-model" for r in reports.values())
    # two categories tried all lines at once and failed; the third went line by line
    translations = [s.user for s in llm_server.seen if s.task == "translate"]
    assert sum(1 for text in translations if "\n2. " in text) == 2


def test_a_conclusion_that_gets_no_translation_falls_back(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    papers = day_of(1)
    llm_server.script(*[Step("wrong_language", task="report")] * WHOLE_REPORT_RUNGS)
    llm_server.script(*[Step("wrong_language", task="translate")] * (1 + 2 * TRIES))
    reports = write_reports({"nlp": tuple(papers)}, TAXONOMY, "ko", llm_client)
    assert reports["nlp"].made_by == "extractive"


def test_a_format_failing_in_one_language_is_tried_once_in_the_next(
    llm_client: LLMClient, llm_server: FakeLLMServer
) -> None:
    grouped = {slug: tuple(day_of(2 + i)) for i, slug in enumerate(["nlp", "llm", "ethics"])}
    llm_server.script(*[Step("wrong_language", task="report")] * (2 * WHOLE_REPORT_RUNGS))
    write_reports(grouped, TAXONOMY, "ko", llm_client)
    llm_server.reset()
    llm_server.script(*[Step("no_citation", task="report")] * WHOLE_REPORT_RUNGS)
    reports = write_reports(grouped, TAXONOMY, "en", llm_client)
    assert all(r.made_by == "openai/test-model" for r in reports.values())
    # one English category climbed the ladder; the others went straight to the notes
    assert llm_server.count_of("report") == WHOLE_REPORT_RUNGS
