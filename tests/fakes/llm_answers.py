"""What the fake LLM server answers: a well-behaved model by default, and scripted failure modes.

The well-behaved answer reads the category slugs and the ``<papers>`` data block
of the prompt and returns a valid classification (the category whose keywords the
paper names most, else an arbitrary one) or report (Korean text when
asked for Korean, headings when asked for plain text). ``known_labels`` lets a
test make the fake classify some papers right (the calibration set). The
failure modes are those seen from small local models: looping inside the JSON
until the output cap, every category for one paper while the others are missing,
an answer fenced with trailing text, a second object appended, labels that follow
the taxonomy's order, an id twice, copied abstracts, no citation at all.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

DATA_BLOCK = re.compile(r"<papers>\n(.*?)</papers>", re.S)
SLUG_LINE = re.compile(r"^- ([a-z0-9-]+): ", re.M)
LANGUAGE = re.compile(r'language code "([a-zA-Z-]+)"')
UNSENT_ID = "9999.99999"

CLASSIFY_KINDS = {"unknown_slug", "unsent_id", "missing", "loop", "all_categories"}
CLASSIFY_KINDS |= {"taxonomy_order", "duplicate_id"}
REPORT_KINDS = {"wrong_language", "copied", "no_citation"}


#: The last rung of a report asks small questions (newsletter/report_notes.py).
NOTE_KINDS = {"copied", "wrong_language", "missing"}
PAPER_BLOCK = re.compile(r"<paper>\n(.*?)\n</paper>", re.S)
NOTES_BLOCK = re.compile(r"<notes>\n(.*?)</notes>", re.S)
NUMBERED = re.compile(r"^(\d+)\. (.*)$", re.M)


def task_of(body: dict[str, Any]) -> str:
    """classify, report, or the last rung's note, conclusion and translate."""
    system = str(body["messages"][0]["content"])
    if system.startswith("Task: classify"):
        return "classify"
    if "In one sentence of your own" in system:
        return "note"
    if "Write a conclusion of two short sentences" in system:
        return "conclusion"
    if system.startswith("Translate each numbered line"):
        return "translate"
    return "report"


def _user(body: dict[str, Any]) -> str:
    return str(next(m["content"] for m in body["messages"] if m["role"] == "user"))


def small_answer(body: dict[str, Any], task: str, kind: str) -> str:
    """A note on one paper, a conclusion from notes, or numbered lines translated."""
    if task == "note":
        found = PAPER_BLOCK.search(_user(body))
        paper = json.loads(found.group(1)) if found else {"title": "", "abstract": ""}
        if kind == "copied":
            return str(paper["title"])
        number = zlib.crc32(paper["title"].encode())
        return f"- This work offers a fresh way to tackle problem {number} and why it matters."
    if task == "conclusion":
        if kind == "copied":
            found = NOTES_BLOCK.search(_user(body))
            rows = [json.loads(x) for x in (found.group(1) if found else "").splitlines() if x]
            return " ".join(str(r["note"]) for r in rows)
        return (
            "Together, these papers show steady progress in this field. "
            "Next, watch whether the results hold at a larger scale."
        )
    lines = NUMBERED.findall(_user(body))
    if kind == "missing":
        lines = lines[:-1]
    if kind == "wrong_language":
        return "\n".join(f"{n}. {text}" for n, text in lines)
    korean = "번째 문장은 새로운 방법의 의미를 설명합니다."
    return "\n".join(f"{n}. 번역된 {n}{korean}" for n, _ in lines)


def wants_text(body: dict[str, Any]) -> bool:
    return "under exactly these five headings" in str(body["messages"][0]["content"])


def data_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The papers of the request's data block (the first user message holds it)."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    found = DATA_BLOCK.search(user)
    if not found:
        return []
    return [json.loads(line) for line in found.group(1).splitlines() if line.strip()]


def _by_topic(row: dict[str, Any], slugs: list[str]) -> str | None:
    """The category whose taxonomy keywords the paper's text names most, as a good model
    would pick (no arXiv classes: the prompt has none); None when no keyword occurs."""
    import datetime as dt

    from newsletter.categories import load_taxonomy
    from newsletter.classify_rules import score
    from newsletter.models import Paper

    taxonomy = load_taxonomy()
    paper = Paper(row["id"], row["title"], row["abstract"], (), dt.date(2024, 11, 22))
    scored = [(score(paper, taxonomy.get(s)), s) for s in slugs if s in taxonomy.slugs]
    best = max(scored, default=(0.0, ""))
    return best[1] if best[0] > 0 else None


def classification(
    body: dict[str, Any], kind: str = "ok", known: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    all_slugs = SLUG_LINE.findall(str(body["messages"][0]["content"]))
    slugs = [s for s in all_slugs if s != "other"]
    rows = data_rows(body)
    labels = []
    for i, row in enumerate(rows):
        h = zlib.crc32(row["id"].encode())
        chosen = [_by_topic(row, slugs) or slugs[h % len(slugs)]]
        if h % 5 == 0:
            chosen.append(slugs[(h // 7) % len(slugs)])
        if known and row["id"] in known:
            chosen = list(known[row["id"]][:1])
        if kind == "taxonomy_order":
            chosen = [slugs[i % len(slugs)]]
        labels.append({"id": row["id"], "categories": list(dict.fromkeys(chosen))})
    if kind == "unknown_slug" and labels:
        labels[0]["categories"] = ["quantum-cooking"]
    if kind == "unsent_id":
        labels.append({"id": UNSENT_ID, "categories": [slugs[0]]})
    if kind == "missing" and labels:
        labels.pop(0)
    if kind == "all_categories" and labels:
        labels = [{"id": labels[0]["id"], "categories": all_slugs}]
    if kind == "duplicate_id" and labels:
        labels.append(dict(labels[0]))
    return {"papers": labels}


def report(body: dict[str, Any], kind: str = "ok") -> dict[str, Any]:
    rows = data_rows(body)
    found = LANGUAGE.search(str(body["messages"][0]["content"]))
    korean = bool(found and found.group(1) == "ko") and kind != "wrong_language"
    ids = [r["id"] for r in rows[:3]]
    if kind == "unsent_id":
        ids = [UNSENT_ID, *ids]
    if korean:
        findings = [f"논문 [{i}]은 새로운 방법으로 성능을 크게 높였습니다." for i in ids]
        notable = [{"arxiv_id": i, "line": f"{i} 논문은 중요한 결과를 보여 줍니다."} for i in ids]
        conclusion = (
            f"오늘 {len(rows)}편의 논문이 이 분야의 빠른 발전을 보여 줍니다. "
            "앞으로의 연구가 기대됩니다."
        )
        themes, keywords = ["효율적인 학습", "평가 방법"], ["벤치마크", "데이터", "확장성"]
    else:
        findings = [f"Paper [{i}] improves results with a new method." for i in ids]
        notable = [{"arxiv_id": i, "line": f"{i} shows an important result."} for i in ids]
        conclusion = (
            f"Today's {len(rows)} papers show fast progress in this field. "
            "Watch for follow-up work."
        )
        themes, keywords = ["efficient training", "evaluation"], ["benchmark", "data", "scaling"]
    if kind == "copied":
        notable = [{"arxiv_id": r["id"], "line": r["abstract"][:200]} for r in rows[:3]]
    if kind == "no_citation":
        findings = [re.sub(r" ?\[[^\]]*\]", "", f) for f in findings]
        notable = []
    return {
        "themes": themes,
        "keywords": keywords,
        "findings": findings,
        "notable": notable,
        "conclusion": conclusion,
    }


def as_text(data: dict[str, Any]) -> str:
    """A report in the plain-text format, loosely written as a small model would."""
    lines = ["Here is the report.", "", "## Themes"]
    lines += [f"- {t}" for t in data["themes"]]
    lines += ["", "**Keywords:**", ", ".join(data["keywords"]), "", "3. Findings"]
    lines += [f"* {f}" for f in data["findings"]]
    lines += ["", "NOTABLE"]
    lines += [f"- [{n['arxiv_id']}] {n['line']}" for n in data["notable"]]
    lines += ["", f"Conclusion: {data['conclusion']}"]
    return "\n".join(lines)


def answer_text(body: dict[str, Any], kind: str, content: str, known: dict[str, list[str]]) -> str:
    task = task_of(body)
    if task in ("note", "conclusion", "translate") and kind not in ("raw", "empty"):
        return small_answer(body, task, kind)
    if kind == "raw":
        return content
    if kind == "empty":
        return ""
    if kind == "invalid_json":
        return "I am not able to answer in JSON right now."
    if kind == "wrong_shape":
        if task == "classify":
            return json.dumps({"labels": {"2411.00001": "nlp"}})
        return json.dumps({"themes": "one string", "summary": "no other keys"})
    if kind == "loop":
        first = data_rows(body)[0]["id"] if data_rows(body) else "2411.00001"
        return f'{{"papers": [{{"id": "{first}", "categories": [' + '"computer-vision", ' * 2000
    data = classification(body, kind, known) if task == "classify" else report(body, kind)
    if task == "report" and wants_text(body):
        return as_text(data)
    text = json.dumps(data, ensure_ascii=False)
    if kind == "fenced":
        return f"```json\n{text}\n```"
    if kind == "fenced_trailing":
        return f"Sure! Here it is:\n```json\n{text}\n```\nLet me know if you need anything else."
    if kind == "second_object":
        return f'{text}\n{{"note": "I hope this helps", "papers": []}}'
    return text
