"""Reading a table's cells out of a paper's text (shared/papers/*.txt), independently of the presets.

The texts are conversions of PDFs: a table is a header line and one line per row, cells separated by tabs, with
markup left over (``<b>``, ``<math>``, ``$``, ``\\pm``). A table is found by its caption (``Table 1: ...``), which
comes before or after its lines; its header is the nearest tab-separated line that holds every expected column
label, and its rows are the tab-separated lines that follow the header up to the first line that is not one.
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


def read_table(path: Path, caption: str, columns: list[str], window: int = 40) -> dict[str, dict[str, str]]:
    """Row label -> column label -> cleaned cell text of the table whose caption line starts with ``caption``
    (e.g. ``Table 1:``), for the header that holds every one of ``columns``."""
    lines = path.read_text().splitlines()
    at = [i for i, line in enumerate(lines) if clean(line).startswith(caption)]
    if len(at) != 1:
        raise LookupError(f"{path.name}: {len(at)} lines start with {caption!r}")
    start = at[0]
    candidates = sorted(range(max(0, start - window), min(len(lines), start + window)), key=lambda i: abs(i - start))
    for i in candidates:
        header = [clean(c) for c in lines[i].split("\t")]
        if "\t" in lines[i] and all(c in header for c in columns):
            break
    else:
        raise LookupError(f"{path.name}: no header with {columns} within {window} lines of {caption!r}")
    table = {}
    for line in lines[i + 1:]:
        if "\t" not in line:
            break
        cells = [clean(c) for c in line.split("\t")]
        table[cells[0]] = {header[j]: cells[j] for j in range(1, min(len(header), len(cells))) if header[j]}
    return table
