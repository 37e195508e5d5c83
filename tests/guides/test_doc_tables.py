"""Every table in docs/ renders as one table: a row is never cut off from its table by
a blank line or a paragraph (it would render as a paragraph of pipes), and every row
has as many cells as its header."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
_DELIMITER = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


def _cells(row: str) -> int:
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


def _table_rows(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of the rows outside fenced code blocks."""
    rows, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("|"):
            rows.append((number, line))
    return rows


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_table_row_belongs_to_a_table(page: Path) -> None:
    rows = _table_rows(page.read_text())
    numbers = {n for n, _ in rows}
    by_number = dict(rows)
    stray, uneven = [], []
    header_cells = 0
    for number, line in rows:
        if number - 1 not in numbers:  # the first row of a block: a header
            if not _DELIMITER.match(by_number.get(number + 1, "")):
                stray.append(f"line {number}: {line[:60]}")
            header_cells = _cells(line)
        elif _cells(line) != header_cells:
            uneven.append(f"line {number}: {_cells(line)} cells, not {header_cells}")
    assert stray == [], "rows outside a table (a blank line or text cut them off)"
    assert uneven == []
