"""Render rows of strings as a fixed-width terminal table or a Markdown table."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(rows: Sequence[Sequence[str]], *, numeric: bool = True,
               rule: bool = True) -> list[str]:
    """Lines of a table whose first row is the header.

    :param numeric: right-align every column but the first (numbers); otherwise
        left-align all of them.
    :param rule: draw a rule under the header.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(widths[i]) if numeric and i else cell.ljust(widths[i])
                       for i, cell in enumerate(row)).rstrip() for row in rows]
    if rule:
        lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def markdown_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a Markdown table whose first row is the header."""
    return ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0]),
            *("| " + " | ".join(row) + " |" for row in rows[1:])]
