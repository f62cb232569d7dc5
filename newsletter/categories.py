"""The fixed category taxonomy.

Slugs are stable on purpose: subscriptions refer to them from day to day, so a
category can be renamed (``names``) but its slug never changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from newsletter.errors import ConfigurationError, UnknownCategoryError

FALLBACK_SLUG = "other"


@dataclass(frozen=True)
class Category:
    slug: str
    emoji: str
    names: dict[str, str]
    description: str
    arxiv_classes: tuple[str, ...]
    keywords: tuple[str, ...]
    color: str

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.slug


@dataclass(frozen=True)
class Taxonomy:
    categories: tuple[Category, ...]

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(c.slug for c in self.categories)

    def get(self, slug: str) -> Category:
        for c in self.categories:
            if c.slug == slug:
                return c
        raise UnknownCategoryError([slug], self.slugs)

    def validate(self, slugs: Iterable[str]) -> tuple[str, ...]:
        """Known slugs in taxonomy order; raises naming every unknown one."""
        wanted = [s.strip() for s in slugs if s.strip()]
        unknown = [s for s in wanted if s not in self.slugs]
        if unknown:
            raise UnknownCategoryError(unknown, self.slugs)
        return tuple(s for s in self.slugs if s in wanted)

    def parse_list(self, text: str | None) -> tuple[str, ...]:
        """A comma-separated slug list; empty or None means every category."""
        if not text or not text.strip():
            return self.slugs
        return self.validate(text.split(","))

    def order(self, slugs: Sequence[str]) -> tuple[str, ...]:
        return tuple(s for s in self.slugs if s in slugs)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The taxonomy from ``path`` (NEWSLETTER_CATEGORIES_FILE) or the bundled file."""
    try:
        if path is None:
            raw = resources.files("newsletter").joinpath("data/categories.json").read_text("utf-8")
        else:
            raw = path.read_text("utf-8")
        items = json.loads(raw)
        cats = tuple(
            Category(
                slug=i["slug"],
                emoji=i["emoji"],
                names=dict(i["names"]),
                description=i["description"],
                arxiv_classes=tuple(i.get("arxiv_classes", ())),
                keywords=tuple(k.lower() for k in i.get("keywords", ())),
                color=i.get("color", "#888888"),
            )
            for i in items
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"cannot read the category file {path or 'bundled categories.json'}: {exc}; "
            "fix it or unset NEWSLETTER_CATEGORIES_FILE"
        ) from exc
    slugs = [c.slug for c in cats]
    if len(set(slugs)) != len(slugs) or FALLBACK_SLUG not in slugs:
        raise ConfigurationError(
            f"the category file must have unique slugs and include {FALLBACK_SLUG!r}"
        )
    return Taxonomy(cats)
