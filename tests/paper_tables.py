"""Reading a table's cells out of a paper's text (shared/papers/*.txt), independently of the presets.

The texts are conversions of PDFs: a table is a header line and one line per row, cells separated by tabs, with
markup left over (``<b>``, ``<math>``, ``$``, ``\\pm``). A table is found by its caption (``Table 1: ...``), which
comes before or after its lines. Its column labels are those of the nearest tab-separated line that holds every
expected label, either alone or joined with the line above or below it, which some tables use as a second
header level (``FashionMNIST`` over ``image (MSE)``, ``label (PFC)``; ``Heart (mixed)`` over ``categorical``,
``numerical``); a label spans the empty cells to its right. The rows are the tab-separated lines after the
header, up to the first line that is not one. A table whose header starts with an empty cell and ``Method``
groups its rows under a dataset named in the first column; its cells are read as ``<dataset> <column>``.
"""

from __future__ import annotations

import re
from pathlib import Path

MARKUP = re.compile(r"</?b>|</?math>|\$|\*\*")
SPACES = re.compile(r"\s+")


def clean(cell: str) -> str:
    """A printed cell without markup: ``<b><math>0.237 \\pm 0.001</math></b>`` -> ``0.237 ± 0.001``."""
    text = MARKUP.sub("", cell).replace("\\pm", "±").replace("\\Delta", "Δ")
    return SPACES.sub(" ", text).strip()


def cells_of(line: str) -> list[str]:
    return [clean(c) for c in line.split("\t")]


def spanned(labels: list[str]) -> list[str]:
    """Each empty label after the first column takes the label to its left (a label spanning columns)."""
    out = list(labels)
    for j in range(2, len(out)):
        if not out[j]:
            out[j] = out[j - 1]
    return out


def joined(upper: list[str], lower: list[str]) -> list[str]:
    n = max(len(upper), len(lower))
    upper, lower = spanned(upper + [""] * (n - len(upper))), lower + [""] * (n - len(lower))
    return [" ".join(part for part in (u, d) if part) for u, d in zip(upper, lower, strict=True)]


def header_at(lines: list[str], i: int, columns: list[str]) -> tuple[list[str], int] | None:
    """The column labels of a header at line ``i`` holding every one of ``columns``, and the line its rows start
    after; None if there is none."""
    if "\t" not in lines[i]:
        return None
    here = cells_of(lines[i])
    options = [(here, i)]
    if i + 1 < len(lines) and "\t" in lines[i + 1]:
        options.append((joined(here, cells_of(lines[i + 1])), i + 1))
    if i > 0 and "\t" in lines[i - 1]:
        options.append((joined(cells_of(lines[i - 1]), here), i))
    for labels, last in options:
        grouped = labels[:2] == ["", "Method"]
        if all(c in labels or (grouped and any(c.endswith(f" {label}") for label in labels[2:] if label)) for c in columns):
            return labels, last
    return None


def _rows_end(lines: list[str], last: int) -> int:
    """The first line after a header's rows (the header's rows start after line ``last``)."""
    end = last + 1
    while end < len(lines) and "\t" in lines[end]:
        end += 1
    return end


def _captioned_elsewhere(lines: list[str], last: int, caption_at: int) -> bool:
    """Whether a table found after our caption is followed at once by another table's caption: two tables with the
    same columns, each captioned below (MVAE's Tables 8 and 9), where the next one's header is nearest ours."""
    if last < caption_at:
        return False
    after = [clean(line) for line in lines[_rows_end(lines, last):_rows_end(lines, last) + 3]]
    return any(re.match(r"Table \d+:", line) for line in after)


def read_table(path: Path, caption: str, columns: list[str], window: int = 40) -> dict[str, dict[str, str]]:
    """Row label -> column label -> cleaned cell text of the table whose caption line starts with ``caption``
    (e.g. ``Table 1:``), for the header that holds every one of ``columns``."""
    lines = path.read_text().splitlines()
    at = [i for i, line in enumerate(lines) if clean(line).startswith(caption)]
    if len(at) != 1:
        raise LookupError(f"{path.name}: {len(at)} lines start with {caption!r}")
    start = at[0]
    nearest = sorted(range(max(0, start - window), min(len(lines), start + window)), key=lambda i: abs(i - start))
    headers = (header_at(lines, i, columns) for i in nearest)
    found = next((h for h in headers if h is not None and not _captioned_elsewhere(lines, h[1], start)), None)
    if found is None:
        raise LookupError(f"{path.name}: no header with {columns} within {window} lines of {caption!r}")
    header, last = found
    table: dict[str, dict[str, str]] = {}
    grouped = header[:2] == ["", "Method"]  # rows grouped by a dataset in the first column (VSAE long Table 5)
    group = ""
    for line in lines[last + 1:_rows_end(lines, last)]:
        cells = cells_of(line)
        if grouped:
            group = cells[0] or group
            row = table.setdefault(cells[1], {})
            row.update({f"{group} {header[j]}": cells[j] for j in range(2, min(len(header), len(cells))) if header[j]})
        else:
            table[cells[0]] = {header[j]: cells[j] for j in range(1, min(len(header), len(cells))) if header[j]}
    return table
