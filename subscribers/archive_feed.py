"""The archive's Atom feed of the latest public issues, each with its categories and conclusions.

Routed by ``archive.router``; it shares the archive's language handling (``archive_pages``).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from fastapi import Request, Response

from newsletter import published
from newsletter.i18n import paper_count
from subscribers.archive_pages import Page, PageError, error_page
from subscribers.templating import web_templates

#: Issues in the feed.
FEED_SIZE = 20
FEED_CACHE = "public, max-age=900"


def _aware(moment: dt.datetime) -> dt.datetime:
    """Stored times are UTC; SQLite gives them back without a zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def feed(request: Request, lang: str | None = None) -> Response:
    """An Atom feed of the latest issues, each with its categories and conclusions."""
    from feedgenerator import Atom1Feed

    try:
        view = Page(request, lang)
    except PageError as exc:
        return error_page(request, lang, exc)
    svc, t = view.svc, view.t
    base = svc.settings.base_url
    suffix = f"?{urlencode({'lang': view.lang})}" if view.lang != view.default else ""
    atom = Atom1Feed(
        title=t["title"],
        link=f"{base}/issues{suffix}",
        description=t["archive_feed_subtitle"],
        subtitle=t["archive_feed_subtitle"],
        language=view.lang,
        feed_url=f"{base}/feed.xml{suffix}",
        author_name=svc.settings.from_name,
    )
    entry = web_templates().get_template("archive_feed_entry.html")
    for summary in published.list_public(svc.engine, FEED_SIZE):
        day = summary.date.isoformat()
        url = f"{base}/issues/{day}{suffix}"
        conclusions = summary.conclusions_in(view.lang)
        categories = [
            {
                "emoji": svc.taxonomy.get(slug).emoji,
                "name": svc.taxonomy.get(slug).name(view.lang),
                "count": count,
                "url": f"{url}#{slug}",
                "conclusion": conclusions.get(slug, ""),
            }
            for slug, count in summary.top(svc.taxonomy.slugs, n=len(summary.counts))
            if slug in svc.taxonomy.slugs
        ]
        atom.add_item(
            title=t["subject"].format(date=day, count=summary.paper_count),
            link=url,
            unique_id=url,
            description=entry.render(
                papers=lambda count: paper_count(count, view.lang),
                paper_count=summary.paper_count,
                categories=categories,
            ).strip(),
            pubdate=_aware(summary.updated),
            updateddate=_aware(summary.updated),
        )
    body = atom.writeString("utf-8")
    return Response(body, media_type=atom.content_type, headers={"Cache-Control": FEED_CACHE})
