"""Papers a reader likes, read from a BibTeX or RIS export (Zotero, Mendeley, JabRef...).

Only each entry's title and abstract are taken, LaTeX made plain (``newsletter.latex``);
the file itself is never stored. A file that cannot be read whole is refused with the
line to look at, rather than half-read: a reader who uploads 200 papers and gets 150
would not know which are missing. bibtexparser and rispy are imported on first use, so
commands that never read a file do not pay for them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from newsletter.errors import InterestsError
from newsletter.latex import readable
from subscribers.interests import MAX_PAPERS, LikedPaper, check_papers

#: Largest file read: 500 entries with abstracts take about 1.5 MB; anything much larger is
#: a whole library (or not a reference file at all).
MAX_FILE_BYTES = 2 * 1024 * 1024

_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: |$)")
_BRACES = re.compile(r"(?<!\\)[{}]")


def parse_bibtex(data: bytes) -> list[LikedPaper]:
    """The titled entries of a BibTeX file, or an ``InterestsError`` saying what to fix."""
    from bibtexparser.entrypoint import parse_string
    from bibtexparser.model import DuplicateBlockKeyBlock

    text = _decode(data, "BibTeX")
    # The parser logs the broken line's content; a reader's file stays out of our logs.
    logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)
    try:
        library = parse_string(text)
    except Exception as exc:  # a parser bug on odd input is still the file's problem to fix
        raise InterestsError(
            f"this BibTeX file could not be read ({type(exc).__name__}); export it again "
            "from your reference manager, or upload it as RIS"
        ) from exc
    broken = [b for b in library.failed_blocks if not isinstance(b, DuplicateBlockKeyBlock)]
    if broken:
        line = (broken[0].start_line or 0) + 1
        raise InterestsError(
            f"this BibTeX file is malformed near line {line} ({len(broken)} broken "
            f"entr{'y' if len(broken) == 1 else 'ies'}: an unclosed brace or quote?); "
            "nothing was changed. Fix it or export it again"
        )
    papers = []
    for entry in library.entries:
        fields = {key.lower(): value for key, value in entry.fields_dict.items()}
        title = fields.get("title")
        abstract = fields.get("abstract")
        papers.append(
            LikedPaper(
                _plain(str(title.value)) if title else "",
                _plain(str(abstract.value)) if abstract else "",
            )
        )
    return _checked(papers, "BibTeX", "@article{key, title = {...}, ...}")


def parse_ris(data: bytes) -> list[LikedPaper]:
    """The titled records of a RIS file, or an ``InterestsError`` saying what to fix."""
    import rispy

    text = _decode(data, "RIS").replace("\r\n", "\n").replace("\r", "\n")
    _check_ris_structure(text)
    try:
        records = rispy.loads(text)
    except Exception as exc:  # a parser bug on odd input is still the file's problem to fix
        raise InterestsError(
            f"this RIS file could not be read ({type(exc).__name__}); export it again "
            "from your reference manager, or upload it as BibTeX"
        ) from exc
    papers = []
    for record in records:
        title = _first(record, "title", "primary_title", "translated_title", "short_title")
        abstract = _first(record, "abstract", "notes_abstract")
        papers.append(LikedPaper(title, abstract))
    return _checked(papers, "RIS", "TY  - JOUR / TI  - ... / ER  - ")


def parse_upload(data: bytes, filename: str = "") -> list[LikedPaper]:
    """A BibTeX or RIS file told apart by its name (.bib, .ris) or else by its first line."""
    name = filename.lower()
    parse: Callable[[bytes], list[LikedPaper]] | None = None
    if name.endswith((".bib", ".bibtex")):
        parse = parse_bibtex
    elif name.endswith(".ris"):
        parse = parse_ris
    else:
        first = next((ln.strip() for ln in data[:4096].splitlines() if ln.strip()), b"")
        first = first.removeprefix(b"\xef\xbb\xbf")
        if first.startswith(b"@") or first.startswith(b"%"):
            parse = parse_bibtex
        elif _RIS_TAG.match(first.decode("utf-8", "replace")):
            parse = parse_ris
    if parse is None:
        raise InterestsError(
            "this is not a BibTeX (.bib) or RIS (.ris) file; export your papers in one of "
            "these formats (e.g. Zotero: right-click a collection, Export Collection...)"
        )
    return parse(data)


def _decode(data: bytes, kind: str) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise InterestsError(
            f"this {kind} file is {len(data) / 1e6:.1f} MB; the limit is "
            f"{MAX_FILE_BYTES // (1024 * 1024)} MB. Export fewer papers (at most "
            f"{MAX_PAPERS}), without notes or attachments"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InterestsError(
            f"this {kind} file is not UTF-8 text (line {line}); export it again choosing "
            "the UTF-8 (Unicode) character encoding"
        ) from exc
    if "\x00" in text:
        raise InterestsError(f"this is a binary file, not a {kind} export")
    return text


def _check_ris_structure(text: str) -> None:
    """Every record opens with ``TY`` and closes with ``ER``: rispy drops a record that
    never closes, and a reader must not lose papers without being told."""
    opened = 0
    for number, line in enumerate(text.split("\n"), start=1):
        match = _RIS_TAG.match(line)
        if match is None:
            if line.strip() and not opened:
                raise InterestsError(
                    f"line {number} of this RIS file is outside any record (records start "
                    "with 'TY  - '); nothing was changed. Is it a RIS export?"
                )
            continue
        tag = match.group(1)
        if tag == "TY":
            if opened:
                raise InterestsError(
                    f"the RIS record starting on line {opened} has no end ('ER  - ') before "
                    f"the next one on line {number}; nothing was changed"
                )
            opened = number
        elif not opened:
            raise InterestsError(
                f"line {number} of this RIS file has a {tag} tag outside any record "
                "(records start with 'TY  - '); nothing was changed"
            )
        elif tag == "ER":
            opened = 0
    if opened:
        raise InterestsError(
            f"the RIS record starting on line {opened} has no end ('ER  - '); the file "
            "looks cut off. Nothing was changed"
        )


def _first(record: dict[str, object], *keys: str) -> str:
    for key in keys:
        value = record.get(key)
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        if value:
            return str(value)
    return ""


def _plain(value: str) -> str:
    """LaTeX as readers read it; BibTeX's case-keeping braces (``{BERT}``) dropped."""
    return _BRACES.sub("", readable(value))


def _checked(papers: list[LikedPaper], kind: str, shape: str) -> list[LikedPaper]:
    if not papers:
        raise InterestsError(
            f"no entries found in this {kind} file (expected e.g. {shape}); is it the right file?"
        )
    kept = list(check_papers(papers))
    if not kept:
        raise InterestsError(
            f"none of the {len(papers)} entries in this {kind} file has a title; export "
            "them again with their titles"
        )
    return kept
