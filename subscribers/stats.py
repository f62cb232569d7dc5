"""How many readers there are, per status, and among active readers per category,
language and cadence: ``newsletter subscribers stats``. Counted in SQL (GROUP BY),
so a list of a million costs a few queries, not a million rows in memory."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from newsletter.db import table_of
from newsletter.statuses import SubscriberStatus
from subscribers.models import Subscriber

SUBSCRIBERS = table_of(Subscriber)


def reader_stats(engine: Engine) -> dict[str, dict[str, int]]:
    """{"status": ..., "category": ..., "language": ..., "cadence": ...} counts.

    Categories, languages and cadences count active readers (who a send mails); a
    reader with three categories counts once in each.
    """
    table = SUBSCRIBERS
    active = table.c.status == SubscriberStatus.ACTIVE
    with engine.connect() as conn:

        def counts(column: sa.ColumnElement[str], *where: sa.ColumnElement[bool]) -> Counter[str]:
            query = sa.select(column, sa.func.count()).where(*where).group_by(column)
            return Counter({str(key): int(n) for key, n in conn.execute(query)})

        status = counts(table.c.status)
        sets = counts(table.c.categories, active)
        language = counts(table.c.language, active)
        cadence = counts(table.c.cadence, active)
    category: Counter[str] = Counter()
    for joined, n in sets.items():
        for slug in (s for s in joined.split(",") if s):
            category[slug] += n
    return {
        "status": dict(sorted(status.items())),
        "category": dict(category.most_common()),
        "language": dict(language.most_common()),
        "cadence": dict(cadence.most_common()),
    }
