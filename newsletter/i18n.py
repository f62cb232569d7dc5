"""Fixed texts of the e-mail and pages, per language (ko and en; others fall back to en).

Counts and dates are functions rather than format strings because English needs
plurals and the two languages order a date differently.
"""

from __future__ import annotations

import datetime as dt

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Daily AI Insights: Papers",
        "brand": "DAILY AI INSIGHTS · PAPERS",
        "subject": "Daily AI Insights {date}: {count} new papers",
        "preheader": "{count} new papers today. Top: {top}",
        "weekly_subject": "Daily AI Insights weekly {start} to {date}: {count} new papers",
        "weekly_preheader": "Your weekly digest: {count} new papers this week. Top: {top}",
        "top": "Busiest today: {top}",
        "glance": "Today at a glance",
        "contents": "In this issue",
        "papers": "papers",
        "themes": "Main topics and themes",
        "keywords": "Common keywords, trends and patterns",
        "findings": "Key findings",
        "notable": "Notable papers",
        "conclusion": "Conclusion and outlook",
        "sources": "Sources",
        "updated": "updated",
        "covers": "This report covers {covered} of {total} papers.",
        "more": "{count} more on the web archive",
        "why": "You receive this because you subscribed to Daily AI Insights for these categories.",
        "manage": "Manage categories",
        "for_you": "For you",
        "for_you_intro": "Today's papers closest to your interests",
        "for_you_matches": "Matches: {terms}",
        "for_you_near": "Close to your paper: {title}",
        "for_you_close": "Close to your interests",
        "for_you_tune": "Tune your interests",
        "for_you_invite": "Get your own five best papers of the day here:",
        "for_you_invite_link": "tell us your interests",
        "for_you_none": "None of today's papers matched your interests.",
        "unsubscribe": "Unsubscribe",
        "archive": "Read on the web",
        "web_archive": "Web archive",
        "how": "How this issue was made",
        "made_offline": (
            "Offline mode: papers from arXiv, sorted into categories by keyword rules; "
            "the reports quote the abstracts (no AI model)."
        ),
        "made_sorted": "{done} of {total} papers sorted",
        "made_written": "{done} of {total} reports written",
        "made_by": "{parts} by {model}",
        "made_join": " and ",
        "made_rules": "{count} papers sorted by keyword rules",
        "made_unqualified": (
            "{model} placed {model_right} of {total} calibration papers right, "
            "the keyword rules {rules_right}"
        ),
        "made_quoted": "{count} reports quote the abstracts ({slugs})",
        "made_check": "Models make mistakes: check the papers themselves.",
        "made_with": (
            "Papers from arXiv, sorted into categories and summarised by {model}. "
            "Models make mistakes: check the papers themselves."
        ),
        "conclusion_text": (
            "{count} new papers in {name} today. The most discussed topics are {topics}. "
            "Start with “{first}”."
        ),
        "chart_title": "Papers per category",
        "chart_alt": "Bar chart of today's papers per category",
        "no_papers": "No new papers were announced today.",
        "archive_language_name": "English",
        "archive_title": "Archive",
        "archive_intro": "Every issue so far, newest first.",
        "archive_feed": "Atom feed",
        "archive_feed_subtitle": "New AI research papers, summarized by category every day.",
        "archive_no_issues": "No issue has been published yet.",
        "archive_issue_heading": "Issue of {date}",
        "archive_covers_from": "Also carries the papers announced from {start}, "
        "days that had no issue of their own.",
        "archive_read_issue": "Read the issue",
        "archive_top_categories": "Top categories",
        "archive_newer": "Newer",
        "archive_older": "Older",
        "archive_page_of": "Page {page} of {pages}",
        "archive_search": "Search",
        "archive_search_label": "Search past papers",
        "archive_search_placeholder": "e.g. diffusion transformer",
        "archive_search_results": "Papers matching “{query}”",
        "archive_search_none": "No paper in the archive matches all of these words.",
        "archive_search_no_words": "Type one or more words to search for.",
        "archive_search_shortened": (
            "Your query was long: only its first {chars} characters and {terms} words "
            "were searched."
        ),
        "archive_in_issue": "in the issue of {date}",
        "archive_not_found": "Not found",
        "archive_issue_missing": (
            "There is no issue for {date}. The archive lists every issue that exists."
        ),
        "archive_bad_date": (
            "“{value}” is not a date. Issue addresses end in a date like 2024-11-22."
        ),
        "archive_bad_page": "“{value}” is not a page of this list; pages are numbered from 1.",
        "archive_bad_request": "Bad request",
        "archive_bad_language": "There is no “{value}” edition; choose one of: {choices}.",
        "archive_unavailable": "Temporarily unavailable",
        "archive_unavailable_text": (
            "This edition could not be prepared just now. Please try again in a few minutes."
        ),
    },
    "ko": {
        "title": "Daily AI Insights : 논문",
        "brand": "DAILY AI INSIGHTS · 논문",
        "subject": "Daily AI Insights {date}: 새 논문 {count}편",
        "preheader": "오늘의 새 논문 {count}편. 주요 분야: {top}",
        "weekly_subject": "Daily AI Insights 주간 {start}~{date}: 새 논문 {count}편",
        "weekly_preheader": "주간 다이제스트: 이번 주 새 논문 {count}편. 주요 분야: {top}",
        "top": "오늘 가장 활발한 분야: {top}",
        "glance": "오늘 한눈에 보기",
        "contents": "이번 호 목차",
        "papers": "편",
        "themes": "주요 주제 및 테마",
        "keywords": "공통 키워드, 트렌드, 패턴",
        "findings": "주요 발견",
        "notable": "주목할 논문",
        "conclusion": "종합 결론 및 전망",
        "sources": "출처",
        "updated": "수정됨",
        "covers": "이 보고서는 {total}편 중 {covered}편을 다룹니다.",
        "more": "웹 아카이브에서 {count}편 더 보기",
        "why": "Daily AI Insights에서 이 분야를 구독하셨기 때문에 이 메일을 받으셨습니다.",
        "manage": "구독 분야 관리",
        "for_you": "나를 위한 논문",
        "for_you_intro": "관심사와 가장 가까운 오늘의 논문",
        "for_you_matches": "일치: {terms}",
        "for_you_near": "내 논문과 비슷함: {title}",
        "for_you_close": "관심사와 가까움",
        "for_you_tune": "관심사 조정",
        "for_you_invite": "오늘 나에게 맞는 논문 5편을 여기서 받아 보세요:",
        "for_you_invite_link": "관심사 알려 주기",
        "for_you_none": "오늘은 관심사와 맞는 논문이 없습니다.",
        "unsubscribe": "구독 취소",
        "archive": "웹에서 보기",
        "web_archive": "웹 아카이브",
        "how": "이번 호를 만든 방법",
        "made_offline": (
            "오프라인 모드: arXiv의 새 논문을 키워드 규칙으로 분류하고, 보고서는 초록에서 "
            "발췌했습니다 (AI 모델 없음)."
        ),
        "made_sorted": "논문 {total}편 중 {done}편을 분류",
        "made_written": "보고서 {total}개 중 {done}개를 작성",
        "made_by": "{model} 모델이 {parts}했습니다",
        "made_join": "하고 ",
        "made_rules": "논문 {count}편은 키워드 규칙으로 분류했습니다",
        "made_unqualified": (
            "{model}: 보정용 논문 {total}편 중 {model_right}편 정답, 키워드 규칙 {rules_right}편"
        ),
        "made_quoted": "보고서 {count}개({slugs})는 초록을 인용합니다",
        "made_check": "모델은 틀릴 수 있으니 원문을 확인하세요.",
        "made_with": (
            "arXiv의 새 논문을 {model} 모델이 분류하고 요약했습니다. 모델은 틀릴 수 있으니 "
            "원문을 확인하세요."
        ),
        "conclusion_text": (
            "오늘 {name} 분야에 새 논문 {count}편이 발표되었습니다. 가장 많이 다룬 주제는 "
            "{topics}입니다. 먼저 “{first}”을(를) 읽어 보세요."
        ),
        "chart_title": "분야별 논문 수",
        "chart_alt": "오늘의 분야별 논문 수 막대 그래프",
        "no_papers": "오늘은 새로 발표된 논문이 없습니다.",
        "archive_language_name": "한국어",
        "archive_title": "아카이브",
        "archive_intro": "지금까지 발행된 모든 호, 최신순.",
        "archive_feed": "Atom 피드",
        "archive_feed_subtitle": "매일 새로 나온 AI 연구 논문을 분야별로 요약합니다.",
        "archive_no_issues": "아직 발행된 호가 없습니다.",
        "archive_issue_heading": "{date} 호",
        "archive_covers_from": "{start}부터 발표된 논문도 담았습니다 (따로 발행되지 않은 날).",
        "archive_read_issue": "전체 보기",
        "archive_top_categories": "주요 분야",
        "archive_newer": "최신 호",
        "archive_older": "지난 호",
        "archive_page_of": "{pages}쪽 중 {page}쪽",
        "archive_search": "검색",
        "archive_search_label": "지난 논문 검색",
        "archive_search_placeholder": "예: diffusion transformer",
        "archive_search_results": "“{query}” 검색 결과",
        "archive_search_none": "이 단어를 모두 포함하는 논문이 아카이브에 없습니다.",
        "archive_search_no_words": "검색할 단어를 하나 이상 입력하세요.",
        "archive_search_shortened": (
            "검색어가 길어 앞의 {chars}자, 단어 {terms}개까지만 검색했습니다."
        ),
        "archive_in_issue": "{date} 호",
        "archive_not_found": "찾을 수 없음",
        "archive_issue_missing": (
            "{date} 호는 없습니다. 발행된 모든 호는 아카이브에서 볼 수 있습니다."
        ),
        "archive_bad_date": (
            "“{value}”은(는) 날짜가 아닙니다. 호 주소는 2024-11-22 같은 날짜로 끝납니다."
        ),
        "archive_bad_page": "“{value}”쪽은 없습니다. 쪽 번호는 1부터 시작합니다.",
        "archive_bad_request": "잘못된 요청",
        "archive_bad_language": "“{value}” 언어판은 없습니다. 다음 중에서 고르세요: {choices}.",
        "archive_unavailable": "일시적으로 이용할 수 없음",
        "archive_unavailable_text": (
            "이 언어판을 지금 준비하지 못했습니다. 몇 분 뒤에 다시 시도해 주세요."
        ),
    },
}

LANGUAGES = tuple(TEXTS)

_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_KO_WEEKDAYS = "월화수목금토일"


def texts(language: str) -> dict[str, str]:
    """The text table for ``language``, English for any language without one."""
    return TEXTS.get(language, TEXTS["en"])


def long_date(date: dt.date, language: str) -> str:
    """'2024년 11월 22일 금요일' or 'Friday, 22 November 2024', without depending on locales."""
    if language == "ko":
        return f"{date.year}년 {date.month}월 {date.day}일 {_KO_WEEKDAYS[date.weekday()]}요일"
    return f"{_EN_WEEKDAYS[date.weekday()]}, {date.day} {_EN_MONTHS[date.month - 1]} {date.year}"


def paper_count(count: int, language: str) -> str:
    """'24편' or '24 papers' / '1 paper'."""
    if language == "ko":
        return f"{count}편"
    return f"{count} paper" if count == 1 else f"{count} papers"


def new_paper_count(count: int, language: str) -> str:
    """'새 논문 24편' or '24 new papers' / '1 new paper'."""
    if language == "ko":
        return f"새 논문 {count}편"
    return f"{count} new paper" if count == 1 else f"{count} new papers"


def category_count(count: int, language: str) -> str:
    """'12개 분야' or '12 categories' / '1 category'."""
    if language == "ko":
        return f"{count}개 분야"
    return f"{count} category" if count == 1 else f"{count} categories"
