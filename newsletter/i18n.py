"""Fixed texts of the e-mail and pages, per language (ko and en; others fall back to en)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Daily AI Insights: Papers",
        "subject": "Daily AI Insights {date}: {count} new papers",
        "preheader": "{count} new papers today. Top: {top}",
        "contents": "In this issue",
        "papers": "papers",
        "themes": "Main topics and themes",
        "keywords": "Common keywords, trends and patterns",
        "findings": "Key findings",
        "notable": "Notable papers",
        "conclusion": "Conclusion and outlook",
        "sources": "Sources",
        "covers": "This report covers {covered} of {total} papers.",
        "more": "{count} more on the web archive",
        "why": "You receive this because you subscribed to Daily AI Insights for these categories.",
        "manage": "Manage categories",
        "unsubscribe": "Unsubscribe",
        "archive": "Read on the web",
        "made_offline": "Made offline: rule-based categories and extractive summaries.",
        "made_with": "Reports written by {model}.",
        "conclusion_text": (
            "{count} new papers in {name} today. The most discussed topics are {topics}. "
            "Start with “{first}”."
        ),
        "chart_title": "Papers per category",
        "no_papers": "No new papers were announced today.",
    },
    "ko": {
        "title": "Daily AI Insights : 논문",
        "subject": "Daily AI Insights {date}: 새 논문 {count}편",
        "preheader": "오늘의 새 논문 {count}편. 주요 분야: {top}",
        "contents": "이번 호 목차",
        "papers": "편",
        "themes": "주요 주제 및 테마",
        "keywords": "공통 키워드, 트렌드, 패턴",
        "findings": "주요 발견",
        "notable": "주목할 논문",
        "conclusion": "종합 결론 및 전망",
        "sources": "출처",
        "covers": "이 보고서는 {total}편 중 {covered}편을 다룹니다.",
        "more": "웹 아카이브에서 {count}편 더 보기",
        "why": "Daily AI Insights에서 이 분야를 구독하셨기 때문에 이 메일을 받으셨습니다.",
        "manage": "구독 분야 관리",
        "unsubscribe": "구독 취소",
        "archive": "웹에서 보기",
        "made_offline": "오프라인 모드로 작성: 규칙 기반 분류와 발췌 요약.",
        "made_with": "{model} 모델이 보고서를 작성했습니다.",
        "conclusion_text": (
            "오늘 {name} 분야에 새 논문 {count}편이 발표되었습니다. 가장 많이 다룬 주제는 "
            "{topics}입니다. 먼저 “{first}”을(를) 읽어 보세요."
        ),
        "chart_title": "분야별 논문 수",
        "no_papers": "오늘은 새로 발표된 논문이 없습니다.",
    },
}

LANGUAGES = tuple(TEXTS)


def texts(language: str) -> dict[str, str]:
    """The text table for ``language``, English for any language without one."""
    return TEXTS.get(language, TEXTS["en"])
