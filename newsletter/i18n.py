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
        "unsubscribe": "Unsubscribe",
        "archive": "Read on the web",
        "web_archive": "Web archive",
        "how": "How this issue was made",
        "made_offline": (
            "Offline mode: papers from arXiv, sorted into categories by keyword rules; "
            "the reports quote the abstracts (no AI model)."
        ),
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
    },
    "ko": {
        "title": "Daily AI Insights : 논문",
        "brand": "DAILY AI INSIGHTS · 논문",
        "subject": "Daily AI Insights {date}: 새 논문 {count}편",
        "preheader": "오늘의 새 논문 {count}편. 주요 분야: {top}",
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
        "unsubscribe": "구독 취소",
        "archive": "웹에서 보기",
        "web_archive": "웹 아카이브",
        "how": "이번 호를 만든 방법",
        "made_offline": (
            "오프라인 모드: arXiv의 새 논문을 키워드 규칙으로 분류하고, 보고서는 초록에서 "
            "발췌했습니다 (AI 모델 없음)."
        ),
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
