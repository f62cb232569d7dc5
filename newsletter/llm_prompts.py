"""Versioned prompt templates (``templates/prompts/<name>.j2``) and their data blocks.

Paper text only ever reaches a prompt inside a delimited data block rendered by
the ``data_json`` filter, which cannot close the block (``<`` is escaped). Each
template carries a ``{# version: N #}`` line: the version is part of the answer
cache's key and of a model's qualification, so a change of wording asks again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2

from newsletter.errors import LLMError

_VERSION = re.compile(r"\{#\s*version:\s*(\d+)\s*#\}")


def data_json(value: Any) -> str:
    """One data-block line: JSON with ``<``/``>`` escaped so text cannot close the block."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


@cache
def _prompt_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("newsletter", "templates/prompts"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["data_json"] = data_json
    return env


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt; ``version`` is bumped whenever its wording changes meaning."""

    name: str
    version: int
    system: str
    user: str

    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user},
        ]


def prompt_version(name: str) -> int:
    env = _prompt_env()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, f"{name}.j2")
    found = _VERSION.search(source)
    if found is None:
        raise LLMError(f"prompt template {name}.j2 has no '{{# version: N #}}' line; add one")
    return int(found.group(1))


def render_prompt(name: str, **variables: Any) -> Prompt:
    """Render the ``system`` and ``user`` blocks of ``templates/prompts/<name>.j2``."""
    template = _prompt_env().get_template(f"{name}.j2")
    context = template.new_context(variables)
    parts = {
        block: "".join(template.blocks[block](context)).strip() for block in ("system", "user")
    }
    return Prompt(name, prompt_version(name), parts["system"], parts["user"])
