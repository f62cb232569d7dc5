"""Reading a model's answer: the first complete JSON object, then its shape, then its sense.

Small models rarely answer with exactly one clean object: they wrap it in code
fences, add a sentence after it, append a second object, or stop mid-way. The
first complete object in the text is what the model meant, so it is taken before
anything is judged; ``json-repair`` mends what is left (a missing bracket or
quote). An answer that cannot be used raises ``AnswerRejected`` with a message
that the repair turn sends back to the model.

Plain-text answers (the last rung of the report ladder) are split into sections
by their headings, leniently: ``## Findings``, ``FINDINGS:`` and ``3. Findings``
all start the same section.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


class AnswerRejected(ValueError):
    """An answer that parsed but cannot be used; its message is sent back in the repair turn."""


def answer_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema made acceptable to strict structured-output providers."""
    return dict(json.loads(_schema_json(model)))


def tighten(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every object closed and every property required (strict mode's rules)."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@cache
def _schema_json(model: type[BaseModel]) -> str:
    """Built once per answer model: pydantic's schema generation costs ~5 ms a time.

    Properties keep the model's order (never sorted): a server that turns the schema into
    a grammar makes the model write them in that order, short parts before long ones.
    """
    return json.dumps(tighten(model.model_json_schema()))


def first_object(text: str) -> Any:
    """The first complete JSON object in ``text``, or a repaired one; raises ValueError.

    Fences, a preamble, trailing prose and a second object after the first are
    ignored; a cut-off or slightly broken object is mended by json-repair.
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    if start == -1:
        raise ValueError("no JSON object found")
    try:
        value, _end = decoder.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        # Cut off or broken where the answer starts: mend it rather than take an inner object.
        repaired = _repair(text[start:])
        if repaired is not None:
            return repaired
        raise ValueError(f"{exc.msg} at char {exc.pos}") from exc
    if isinstance(value, dict):
        return value
    raise ValueError("no JSON object found")


def _repair(text: str) -> dict[str, Any] | None:
    """json-repair's reading of ``text`` (which starts with ``{``); None when it finds no object."""
    import json_repair

    candidate = text
    fence = candidate.find("```")
    if fence != -1:
        candidate = candidate[:fence]
    value = json_repair.loads(candidate)
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, dict)), None)
    return value if isinstance(value, dict) and value else None


def parse_answer(raw: str | None, model: type[T], check: Callable[[T], None] | None = None) -> T:
    """Parse and validate an answer; raises AnswerRejected saying what was wrong."""
    text = (raw or "").strip()
    if not text:
        raise AnswerRejected("the answer was empty")
    try:
        data = first_object(text)
    except ValueError as exc:
        raise AnswerRejected(f"the answer was not valid JSON ({exc})") from exc
    try:
        value = model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise AnswerRejected(f"the JSON had the wrong shape ({problems})") from exc
    if check is not None:
        check(value)
    return value


_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s*|\d+[.)]\s*|\*\*\s*)?([A-Za-z][A-Za-z ]{2,30}?)\s*(?:\*\*)?\s*:?\s*"
    r"(?:\*\*)?\s*$"
)
_INLINE_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s*|\d+[.)]\s*|\*\*\s*)?([A-Za-z][A-Za-z ]{2,30}?)\s*(?:\*\*)?\s*:\s*"
    r"(.+)$"
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def sections(text: str, names: Sequence[str]) -> dict[str, list[str]]:
    """``text`` split under the headings ``names`` (matched by their first word, any case).

    Each section is its non-empty lines with bullets removed; a heading followed by
    text on the same line (``Conclusion: ...``) starts its section with that text.
    Lines before the first known heading are ignored.
    """
    keys = {name.split()[0].lower(): name for name in names}
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.replace("```", "").splitlines():
        if not line.strip():
            continue
        heading = _HEADING.match(line)
        inline = None if heading else _INLINE_HEADING.match(line)
        match = heading or inline
        if match:
            key = keys.get(match.group(1).split()[0].lower())
            if key is not None:
                current = key
                found.setdefault(key, [])
                if inline is not None:
                    found[key].append(inline.group(2).strip())
                continue
        if current is not None:
            item = _BULLET.sub("", line).strip().strip("*").strip()
            if item:
                found[current].append(item)
    return found
