"""Articles from a CSV file: UTF-8, a header row naming the columns, one
article per row. Every row is checked before anything is written; a file with
any bad row imports nothing, and each problem names its line and column.

Columns (any order; ``title`` and ``summary`` required, the others optional):
``title, summary, documents, fees, place, processing_time, legal_basis,
topic, hotline, published``. ``hotline`` is the owner's id (empty: the
``--hotline`` given, else shared by every hotline); ``published`` is
yes/no (also 1/0, true/false, có/không; empty: yes).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ivr.knowledge.folding import fold
from ivr.knowledge.models import TEXT_FIELDS
from ivr.knowledge.service import PROBLEM_TEXTS, ArticleDraft

logger = logging.getLogger(__name__)

COLUMNS = ("title", *TEXT_FIELDS, "topic", "hotline", "published")
REQUIRED = ("title", "summary")
_YES = frozenset({"", "1", "yes", "y", "true", "co", "x"})
_NO = frozenset({"0", "no", "n", "false", "khong"})
MAX_ROWS = 20_000

# Every problem a file can have, by kind (the console translates the same texts).
CSV_PROBLEM_TEXTS: Mapping[str, str] = {
    **PROBLEM_TEXTS,
    "not_utf8": "not UTF-8 text (save the file as CSV UTF-8)",
    "no_rows": "the file is empty",
    "unreadable": "unreadable CSV: {detail}",
    "unknown_column": "unknown column; known: {known}",
    "twice": "column given twice",
    "missing_column": "the header has no {name} column",
    "extra_fields": "{count} fields; the header has {expected}",
    "unknown_hotline": "unknown hotline {value}; known: {known}",
    "unknown_topic": "unknown topic {value}; known: {known}",
    "yes_or_no": "{value}: write yes or no",
    "same_title": "the same title as line {line}",
    "too_many": "more than {limit} articles in one file",
}


@dataclass(frozen=True)
class CsvProblem:
    line: int  # 1-based line of the file where the row starts
    column: int  # 1-based; 0 when the problem is the whole row or file
    field: str
    kind: str
    values: Mapping[str, object] = dataclasses.field(default_factory=dict)

    @property
    def message(self) -> str:
        return CSV_PROBLEM_TEXTS[self.kind].format(**self.values)

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.column:
            where += f", column {self.column} ({self.field})"
        return f"{where}: {self.message}"


class CsvImportError(ValueError):
    """The file cannot be imported; ``problems`` lists every bad line and column."""

    def __init__(self, source: str, problems: list[CsvProblem]) -> None:
        self.source = source
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"{source}: nothing imported: {shown}{more}")


def decode(data: bytes, source: str) -> str:
    """The file's text; a byte that is not UTF-8 is reported with its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvImportError(source, [CsvProblem(line, 0, "", "not_utf8")]) from None


def parse_articles(
    text: str,
    *,
    source: str = "CSV",
    default_hotline: str | None = None,
    hotlines: Collection[str] | None = None,
    topics: Collection[str] | None = None,
) -> list[ArticleDraft]:
    """Check every row and return the drafts, or raise :class:`CsvImportError`
    listing every problem. ``hotlines``/``topics``: the ids a row may name
    (None: anything)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvImportError(source, [CsvProblem(1, 0, "", "no_rows")]) from None
    except csv.Error as exc:
        problem = CsvProblem(1, 0, "", "unreadable", {"detail": str(exc)})
        raise CsvImportError(source, [problem]) from None
    names = [name.strip().lower() for name in header]
    problems: list[CsvProblem] = []
    for index, name in enumerate(names, start=1):
        if name not in COLUMNS:
            columns = {"known": ", ".join(COLUMNS)}
            problems.append(CsvProblem(1, index, name, "unknown_column", columns))
        elif names.index(name) != index - 1:
            problems.append(CsvProblem(1, index, name, "twice"))
    for required in REQUIRED:
        if required not in names:
            problems.append(CsvProblem(1, 0, required, "missing_column", {"name": required}))
    if problems:
        raise CsvImportError(source, problems)

    drafts: list[ArticleDraft] = []
    seen: dict[tuple[str | None, str], int] = {}
    while True:
        start = reader.line_num + 1  # a quoted field may span lines: report the first
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(CsvProblem(start, 0, "", "unreadable", {"detail": str(exc)}))
            break
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) > len(names):
            counts = {"count": len(row), "expected": len(names)}
            problems.append(CsvProblem(start, len(names) + 1, "", "extra_fields", counts))
            continue
        values = dict(zip(names, (cell.strip() for cell in row), strict=False))
        wrong: list[tuple[str, str, dict[str, object]]] = []  # (column, kind, values)
        hotline = values.get("hotline") or default_hotline
        if values.get("hotline") and hotlines is not None and hotline not in hotlines:
            known = ", ".join(sorted(hotlines)) or "-"
            wrong.append(("hotline", "unknown_hotline", {"value": hotline, "known": known}))
        topic = values.get("topic") or None
        if topic is not None and topics is not None and topic not in topics:
            known = ", ".join(sorted(topics)) or "-"
            wrong.append(("topic", "unknown_topic", {"value": topic, "known": known}))
        published_text = fold(values.get("published", ""))
        if published_text not in _YES | _NO:
            wrong.append(("published", "yes_or_no", {"value": values["published"]}))
        draft = ArticleDraft(
            title=values.get("title", ""),
            summary=values.get("summary", ""),
            documents=values.get("documents", ""),
            fees=values.get("fees", ""),
            place=values.get("place", ""),
            processing_time=values.get("processing_time", ""),
            legal_basis=values.get("legal_basis", ""),
            topic=topic,
            hotline_id=hotline,
            published=published_text not in _NO,
        )
        wrong.extend((p.field, p.kind, dict(p.values)) for p in draft.problems())
        key = (hotline, fold(draft.title))
        if draft.title and key in seen:
            wrong.append(("title", "same_title", {"line": seen[key]}))
        seen.setdefault(key, start)
        problems.extend(CsvProblem(start, names.index(f) + 1, f, k, v) for f, k, v in wrong)
        if not wrong:
            drafts.append(draft)
        if len(drafts) > MAX_ROWS:
            problems.append(CsvProblem(start, 0, "", "too_many", {"limit": MAX_ROWS}))
            break
    if problems:
        raise CsvImportError(source, problems)
    return drafts
