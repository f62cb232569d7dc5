"""Fixed texts of the subscriber pages and their mails, per language (ko and en).

Kept apart from ``newsletter.i18n`` (the issue's texts) because they change for
other reasons. Any language without a table falls back to English.
"""

from __future__ import annotations

WEB_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "site": "Daily AI Insights",
        "tagline": "New AI research papers, by category, every morning",
        "nav_subscribe": "Subscribe",
        "nav_archive": "Archive",
        "language_name": "English",
        "switch_language": "한국어",
        "subscribe_title": "Get the day's new AI papers",
        "subscribe_intro": (
            "Every morning, a short report on the new arXiv papers in the categories you "
            "choose. Free, no account; every e-mail has a one-click unsubscribe link."
        ),
        "email_label": "E-mail address",
        "categories_label": "Categories",
        "language_label": "Language of the reports",
        "cadence_label": "How often",
        "cadence_daily": "Every issue (each announcement day)",
        "cadence_weekly": "One weekly digest of the week's papers, on",
        "weekday_names": "Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday",
        "unknown_cadence": "Choose daily or weekly, and a day of the week.",
        "subscribe_button": "Subscribe",
        "subscribe_note": (
            "We use your address only to send this newsletter. We first send a "
            "confirmation mail; nothing else arrives until you confirm."
        ),
        "inbox_title": "Check your inbox",
        "inbox_body": (
            "A message is on its way to the address you entered. Open it and follow its "
            "link to confirm your subscription or to manage it. Nothing changes until you do."
        ),
        "inbox_spam": "Nothing after a few minutes? Look in the spam folder.",
        "confirm_title": "Confirm your subscription",
        "confirm_body": "You asked to receive these categories, in {language}:",
        "confirm_button": "Confirm subscription",
        "confirmed_title": "You're subscribed",
        "confirmed_body": (
            "The next issue will arrive in your inbox. Every e-mail has links to change "
            "your categories or to unsubscribe."
        ),
        "manage_link": "Manage your subscription",
        "manage_title": "Your subscription",
        "manage_address": "Subscribed address: {email}",
        "status_active": "Deliveries are on.",
        "status_paused": "Deliveries are paused. Resume them any time on this page.",
        "save_button": "Save changes",
        "pause_button": "Pause deliveries",
        "resume_button": "Resume deliveries",
        "unsubscribe_button": "Unsubscribe",
        "saved": "Your changes are saved.",
        "paused": "Deliveries are paused.",
        "resumed": "Deliveries are on again.",
        "interests_title": "For you",
        "interests_intro": (
            "Tell us what you work on, and each issue starts with the day's five papers "
            "closest to it, from your categories. Only you and this site's operator see it."
        ),
        "interests_label": "Your interests: topics, methods, a few sentences",
        "interests_limit": "Up to {max:,} characters.",
        "interests_save": "Save interests",
        "interests_clear": "Forget my interests",
        "interests_saved": "Your interests are saved.",
        "interests_cleared": "Your interests are forgotten.",
        "interests_too_long": "Your interests have {count:,} characters; shorten them to {max:,}.",
        "liked_count": "Papers you like, kept: {count} (of at most {max}).",
        "liked_file_label": "Papers you like, as a BibTeX (.bib) or RIS (.ris) export",
        "liked_file_hint": (
            "E.g. Zotero: right-click a collection, Export Collection. Up to {max} papers "
            "and 2 MB; a new file replaces the list. Only titles and abstracts are kept, "
            "not the file."
        ),
        "liked_file_button": "Upload papers",
        "liked_saved": "{count} papers you like are saved.",
        "liked_file_missing": "Choose a .bib or .ris file first.",
        "liked_file_error": "That file could not be used: {reason}",
        "for_you_today": "Today's picks for you",
        "upload_too_large_title": "File too large",
        "upload_too_large_body": (
            "Files of papers you like can be up to 2 MB. Export fewer papers (at most 500), "
            "without notes or attachments, and upload again."
        ),
        "not_subscribed_title": "Not subscribed",
        "not_subscribed": "This address is not subscribed at the moment.",
        "not_confirmed": (
            "This subscription is not confirmed yet: follow the link in the confirmation mail."
        ),
        "subscribe_again": "Subscribe again",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_body": "Stop sending Daily AI Insights to {email}?",
        "unsubscribed_title": "You're unsubscribed",
        "unsubscribed_body": (
            "You will not receive any more issues. Changed your mind? You can subscribe "
            "again at any time."
        ),
        "bad_request_title": "Bad request",
        "bad_request_body": "The request could not be understood.",
        "invalid_email": "Please enter a valid e-mail address, like name@example.com.",
        "email_too_long": "That address is too long (320 characters at most).",
        "utf8_local_part": (
            "Our mail server cannot deliver to an address with non-Latin letters before "
            "the @; please use another address."
        ),
        "no_categories": "Choose at least one category.",
        "no_categories_manage": "Choose at least one category, or unsubscribe.",
        "unknown_category": "Unknown category: {names}. Choose from the list.",
        "unknown_language": "Unknown language. Choose one from the list.",
        "unknown_action": "Unknown action. Use one of the buttons on the page.",
        "csrf_title": "This form has expired",
        "csrf_body": (
            "For your security the form was not accepted. Reload the page and send it "
            "again (this site needs its own cookie allowed)."
        ),
        "rate_title": "Too many requests",
        "rate_body": "Please wait a little and try again.",
        "token_title": "This link is not valid",
        "token_body": (
            "The link may be incomplete or altered. Copy the whole link from the e-mail, "
            "or subscribe again to get a new one."
        ),
        "expired_title": "This link has expired",
        "expired_body": ("Confirmation links work for 7 days. Subscribe again to get a new one."),
        "used_title": "This link no longer works",
        "used_body": (
            "It was already used, or a later change replaced it. Subscribe again to get a new one."
        ),
        "not_found_title": "Page not found",
        "not_found_body": "There is nothing at this address.",
        "method_title": "Not allowed",
        "method_body": "This page cannot be used that way.",
        "too_large_title": "Request too large",
        "too_large_body": "The form sent more data than this site accepts.",
        "bad_body_title": "Unreadable request",
        "bad_body_body": "The form data was not encoded as UTF-8. Please send the form again.",
        "server_title": "Something went wrong",
        "server_body": "Please try again later.",
        "back_home": "Back to the subscribe page",
        "mail_confirm_subject": "Confirm your Daily AI Insights subscription",
        "mail_confirm_intro": (
            "Someone, hopefully you, asked to receive Daily AI Insights at this address "
            "for these categories:"
        ),
        "mail_confirm_button": "Confirm subscription",
        "mail_confirm_ignore": (
            "Not you? Ignore this mail and you will get nothing more. The link works for 7 days."
        ),
        "mail_manage_subject": "Your Daily AI Insights subscription",
        "mail_manage_intro": (
            "This address is already subscribed. Follow this link to change your "
            "categories or language, pause deliveries or unsubscribe:"
        ),
        "mail_manage_button": "Manage subscription",
        "mail_manage_ignore": "Not you? Ignore this mail: nothing was changed.",
    },
    "ko": {
        "site": "Daily AI Insights",
        "tagline": "분야별 새 AI 논문을 매일 아침 메일로",
        "nav_subscribe": "구독",
        "nav_archive": "지난 호",
        "language_name": "한국어",
        "switch_language": "English",
        "subscribe_title": "오늘의 새 AI 논문을 받아보세요",
        "subscribe_intro": (
            "매일 아침, 선택한 분야의 새 arXiv 논문을 짧은 보고서로 보내 드립니다. "
            "무료이며 계정이 필요 없고, 모든 메일에서 클릭 한 번으로 구독을 취소할 수 있습니다."
        ),
        "email_label": "이메일 주소",
        "categories_label": "구독 분야",
        "language_label": "보고서 언어",
        "cadence_label": "받는 주기",
        "cadence_daily": "매 호 (발표일마다)",
        "cadence_weekly": "한 주의 논문을 모은 주간 다이제스트, 요일:",
        "weekday_names": "월요일,화요일,수요일,목요일,금요일,토요일,일요일",
        "unknown_cadence": "매일 또는 매주와 요일을 선택하세요.",
        "subscribe_button": "구독하기",
        "subscribe_note": (
            "주소는 이 뉴스레터 발송에만 사용합니다. 먼저 확인 메일을 보내 드리며, "
            "확인하기 전에는 다른 메일을 보내지 않습니다."
        ),
        "inbox_title": "메일함을 확인해 주세요",
        "inbox_body": (
            "입력하신 주소로 메일을 보냈습니다. 메일의 링크를 눌러 구독을 확인하거나 "
            "구독 설정을 관리해 주세요. 링크를 누르기 전에는 아무것도 바뀌지 않습니다."
        ),
        "inbox_spam": "몇 분이 지나도 메일이 없다면 스팸함을 확인해 주세요.",
        "confirm_title": "구독 확인",
        "confirm_body": "다음 분야를 {language}(으)로 받아보겠다고 요청하셨습니다:",
        "confirm_button": "구독 확인하기",
        "confirmed_title": "구독이 완료되었습니다",
        "confirmed_body": (
            "다음 호부터 메일로 받아보실 수 있습니다. 모든 메일에 구독 분야 변경과 "
            "구독 취소 링크가 있습니다."
        ),
        "manage_link": "구독 관리",
        "manage_title": "구독 관리",
        "manage_address": "구독 주소: {email}",
        "status_active": "메일을 받고 있습니다.",
        "status_paused": (
            "발송이 일시 중지되었습니다. 이 페이지에서 언제든 다시 시작할 수 있습니다."
        ),
        "save_button": "변경 사항 저장",
        "pause_button": "발송 일시 중지",
        "resume_button": "발송 다시 시작",
        "unsubscribe_button": "구독 취소",
        "saved": "변경 사항을 저장했습니다.",
        "paused": "발송을 일시 중지했습니다.",
        "resumed": "발송을 다시 시작했습니다.",
        "interests_title": "맞춤 추천",
        "interests_intro": (
            "관심 있는 연구를 알려 주시면, 매 호 첫머리에 선택하신 분야에서 그날 가장 "
            "가까운 논문 다섯 편을 보여 드립니다. 본인과 이 사이트 운영자만 볼 수 있습니다."
        ),
        "interests_label": "관심사: 주제, 방법, 몇 문장",
        "interests_limit": "최대 {max:,}자.",
        "interests_save": "관심사 저장",
        "interests_clear": "관심사 지우기",
        "interests_saved": "관심사를 저장했습니다.",
        "interests_cleared": "관심사를 지웠습니다.",
        "interests_too_long": "관심사가 {count:,}자입니다. {max:,}자 이내로 줄여 주세요.",
        "liked_count": "보관 중인 좋아하는 논문: {count}편 (최대 {max}편).",
        "liked_file_label": "좋아하는 논문: BibTeX(.bib) 또는 RIS(.ris) 내보내기 파일",
        "liked_file_hint": (
            "예: Zotero에서 컬렉션을 오른쪽 클릭한 뒤 '컬렉션 내보내기'. 최대 {max}편, 2 MB. "
            "새 파일은 목록을 대체합니다. 파일은 보관하지 않고 제목과 초록만 보관합니다."
        ),
        "liked_file_button": "논문 올리기",
        "liked_saved": "좋아하는 논문 {count}편을 저장했습니다.",
        "liked_file_missing": "먼저 .bib 또는 .ris 파일을 선택해 주세요.",
        "liked_file_error": "이 파일을 사용할 수 없습니다: {reason}",
        "for_you_today": "오늘의 맞춤 추천",
        "upload_too_large_title": "파일이 너무 큽니다",
        "upload_too_large_body": (
            "좋아하는 논문 파일은 최대 2 MB입니다. 메모나 첨부 없이 더 적은 논문(최대 500편)을 "
            "내보내 다시 올려 주세요."
        ),
        "not_subscribed_title": "구독 중이 아닙니다",
        "not_subscribed": "이 주소는 현재 구독 중이 아닙니다.",
        "not_confirmed": "아직 확인되지 않은 구독입니다. 확인 메일의 링크를 눌러 주세요.",
        "subscribe_again": "다시 구독하기",
        "unsubscribe_title": "구독 취소",
        "unsubscribe_body": "{email} 주소로 Daily AI Insights 발송을 중단할까요?",
        "unsubscribed_title": "구독이 취소되었습니다",
        "unsubscribed_body": (
            "더 이상 메일을 보내지 않습니다. 마음이 바뀌시면 언제든 다시 구독할 수 있습니다."
        ),
        "bad_request_title": "잘못된 요청입니다",
        "bad_request_body": "요청을 이해할 수 없습니다.",
        "invalid_email": "올바른 이메일 주소를 입력해 주세요 (예: name@example.com).",
        "email_too_long": "주소가 너무 깁니다 (최대 320자).",
        "utf8_local_part": (
            "메일 서버가 @ 앞에 로마자가 아닌 문자가 있는 주소로는 보낼 수 없습니다. "
            "다른 주소를 입력해 주세요."
        ),
        "no_categories": "구독할 분야를 하나 이상 선택해 주세요.",
        "no_categories_manage": "분야를 하나 이상 선택하거나 구독을 취소해 주세요.",
        "unknown_category": "알 수 없는 분야입니다: {names}. 목록에서 선택해 주세요.",
        "unknown_language": "지원하지 않는 언어입니다. 목록에서 선택해 주세요.",
        "unknown_action": "알 수 없는 요청입니다. 페이지의 버튼을 사용해 주세요.",
        "csrf_title": "양식이 만료되었습니다",
        "csrf_body": (
            "보안을 위해 양식을 처리하지 않았습니다. 페이지를 새로 고친 뒤 다시 보내 주세요 "
            "(이 사이트의 쿠키를 허용해야 합니다)."
        ),
        "rate_title": "요청이 너무 많습니다",
        "rate_body": "잠시 후 다시 시도해 주세요.",
        "token_title": "유효하지 않은 링크입니다",
        "token_body": (
            "링크가 잘렸거나 변경되었을 수 있습니다. 메일의 링크 전체를 복사하거나, "
            "다시 구독하여 새 링크를 받아 주세요."
        ),
        "expired_title": "만료된 링크입니다",
        "expired_body": "확인 링크는 7일 동안 유효합니다. 다시 구독하여 새 링크를 받아 주세요.",
        "used_title": "더 이상 쓸 수 없는 링크입니다",
        "used_body": (
            "이미 사용되었거나 이후의 변경으로 대체된 링크입니다. 다시 구독하여 새 링크를 "
            "받아 주세요."
        ),
        "not_found_title": "페이지를 찾을 수 없습니다",
        "not_found_body": "이 주소에는 아무것도 없습니다.",
        "method_title": "허용되지 않은 요청입니다",
        "method_body": "이 페이지는 그런 방식으로 사용할 수 없습니다.",
        "too_large_title": "요청이 너무 큽니다",
        "too_large_body": "양식이 이 사이트가 받을 수 있는 것보다 많은 데이터를 보냈습니다.",
        "bad_body_title": "읽을 수 없는 요청입니다",
        "bad_body_body": "양식 데이터가 UTF-8로 인코딩되지 않았습니다. 다시 보내 주세요.",
        "server_title": "문제가 발생했습니다",
        "server_body": "잠시 후 다시 시도해 주세요.",
        "back_home": "구독 페이지로 돌아가기",
        "mail_confirm_subject": "Daily AI Insights 구독을 확인해 주세요",
        "mail_confirm_intro": (
            "이 주소로 다음 분야의 Daily AI Insights를 받아보겠다는 요청이 있었습니다:"
        ),
        "mail_confirm_button": "구독 확인하기",
        "mail_confirm_ignore": (
            "요청하지 않으셨다면 이 메일을 무시해 주세요. 더 이상 메일이 가지 않습니다. "
            "링크는 7일 동안 유효합니다."
        ),
        "mail_manage_subject": "Daily AI Insights 구독 관리 링크",
        "mail_manage_intro": (
            "이 주소는 이미 구독 중입니다. 아래 링크에서 구독 분야와 언어를 바꾸거나, "
            "발송을 일시 중지하거나, 구독을 취소할 수 있습니다:"
        ),
        "mail_manage_button": "구독 관리하기",
        "mail_manage_ignore": "요청하지 않으셨다면 이 메일을 무시해 주세요. 바뀐 것은 없습니다.",
    },
}


def web_texts(language: str) -> dict[str, str]:
    """The page texts for ``language``, English for any language without a table."""
    return WEB_TEXTS.get(language, WEB_TEXTS["en"])
