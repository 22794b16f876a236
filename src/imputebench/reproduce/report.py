"""A preset's result files: every cell of the paper's table with ours, the paper's, the difference and the verdict.

:func:`cell_results` reads our value of each cell from the stored rows of exactly the trials the preset planned
(their keys: no other setting can be pooled in), :func:`write_report` writes ``<preset>.md`` (the table in the
paper's layout, then every cell with its reason) and ``<preset>.csv`` (one line per cell).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imputebench.reproduce.preset import Preset
from imputebench.reproduce.verdict import VERDICTS, Ours, Verdict, judge, not_comparable

CSV_COLUMNS = ("preset", "budget", "row", "column", "model", "dataset", "metric", "mechanism", "ratio", "ours_mean",
               "ours_std", "ours_n", "paper", "paper_value", "paper_error", "difference", "tolerance", "verdict",
               "reason", "setting")


@dataclass(frozen=True)
class CellResult:
    row: str
    column: str
    model: str | None
    dataset: str | None
    metric: str | None
    ours: Ours | None
    paper: str | None  # as printed; None for our reference rows
    verdict: Verdict | None  # None for our reference rows
    setting: str = ""


@dataclass(frozen=True)
class RunFacts:
    """What the report says about the run: the command, commits, hardware and times."""

    command: str
    budget: str
    elapsed_s: float  # this command's wall time (a resumed run did part of the work earlier)


def ours_of(frame: pd.DataFrame, metric: str) -> Ours | None:
    """Mean, std (ddof 1) and count of ``metric`` over the ``ok`` rows of ``frame`` (one trial each)."""
    column = f"metric.{metric}"
    if frame.empty or column not in frame:
        return None
    values = frame.loc[frame["status"] == "ok", column].dropna().astype(float)
    if values.empty:
        return None
    return Ours(float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan"), len(values))


def cell_results(preset: Preset, frame: pd.DataFrame, keys: dict[tuple[str, str], set[str]]) -> list[CellResult]:
    """Every (row, column) of the preset, the paper's rows first, then our reference models; ``keys`` maps a
    cell to the trial keys that serve it."""
    out = []
    labels = [*preset.rows, *(f"{m} (ours)" for m in preset.reference_models)]
    for label in labels:
        row = preset.rows.get(label)
        model = row.model if row is not None else label.removesuffix(" (ours)")
        for column, spec in preset.columns.items():
            paper = preset.paper_values.get((label, column))
            rows = frame[frame["config_hash"].isin(keys.get((label, column), set()))]
            ours = ours_of(rows, spec.metric) if spec.metric else None
            setting = ",".join(sorted(set(rows["setting"]))) if "setting" in rows and not rows.empty else ""
            if row is None or paper is None:  # our reference model, or a cell the paper leaves empty: no verdict
                verdict = None
            elif row.unavailable:
                verdict = not_comparable(row.unavailable)
            elif spec.unavailable or spec.incomparable:
                verdict = not_comparable(spec.unavailable or spec.incomparable)
            else:
                verdict = judge(paper, ours, preset.paper_runs, preset.higher_is_better)
            out.append(CellResult(label, column, model, spec.dataset, spec.metric, ours,
                                  None if paper is None else paper.text, verdict, setting))
    return out


def verdict_counts(cells: list[CellResult]) -> dict[str, int]:
    counts = Counter(c.verdict.label for c in cells if c.verdict is not None)
    return {v: counts.get(v, 0) for v in VERDICTS}


def summary_line(cells: list[CellResult]) -> str:
    counts = verdict_counts(cells)
    return ", ".join(f"{n} {label}" for label, n in counts.items()) + f" (of {sum(counts.values())} cells)"


def _ours_text(ours: Ours | None) -> str:
    if ours is None:
        return "–"
    if ours.n < 2:
        return f"{ours.mean:.4g} (n={ours.n})"
    return f"{ours.mean:.4g} ± {ours.std:.2g} (n={ours.n})"


def _table_cell(cell: CellResult) -> str:
    if cell.verdict is None:
        return _ours_text(cell.ours)
    ours = "–" if cell.ours is None else f"{cell.ours.mean:.4g}"
    return f"{ours} / {cell.paper or '–'}: {cell.verdict.label}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(preset: Preset, cells: list[CellResult], frame: pd.DataFrame, facts: RunFacts) -> str:
    budget = preset.budgets[facts.budget]
    commits = sorted(set(frame["git_commit"])) if not frame.empty else []
    hardware = sorted(set(frame["hardware"])) if not frame.empty else []
    trial_hours = float(frame["wall_time_s"].fillna(0).sum()) / 3600 if not frame.empty else 0.0
    mechanisms = sorted({preset.column_setting(c) for c, s in preset.columns.items() if s.dataset is not None})
    lines = [
        f"# {preset.table} of {preset.paper}: reproduced cell by cell",
        "",
        f"> {preset.caption}",
        "",
        f"Written by `imputebench reproduce` from the stored rows of this preset's trials; the numbers are unedited. "
        f"The verdict rule is in `results/reproduce/README.md`.",
        "",
        f"- **Verdicts**: {summary_line(cells)}.",
        f"- **Command**: `{facts.command}`",
        f"- **Budget**: `{facts.budget}`: {budget.seeds} seeds"
        + (f", at most {budget.max_epochs} epochs per deep model" if budget.max_epochs else ", every model's own schedule")
        + "".join(f"; {model} {epochs} epochs" for model, epochs in sorted(budget.model_epochs.items()))
        + f". {budget.note}",
        f"- **Protocol** `{preset.protocol}`; "
        + "; ".join(f"mechanism `{m}`, missing ratio {r:g}" for m, r in mechanisms)
        + (". The paper prints no spread (one number a cell): our seed spread stands in for it."
           if all(v.error == 0 and not v.is_delta for v in preset.paper_values.values())
           else f". The paper's ± is a standard deviation over {preset.paper_runs} runs."),
        f"- **Commit**: {', '.join(f'`{c}`' for c in commits) or '–'}",
        f"- **Hardware**: {'; '.join(hardware) or '–'}",
        f"- **Wall time**: {trial_hours:.2f} h of trials (the sum of the stored trials' wall times); this command "
        f"ran {facts.elapsed_s / 60:.1f} min (a resumed preset ran the rest earlier).",
        f"- **Preset**: `{preset.source}` (the paper: {preset.paper_file}).",
        "",
        "## The table: ours / the paper's",
        "",
        "Ours is the mean over seeds; the paper's as printed. Rows marked (ours) are our references, not in the paper; a "
        "cell the paper leaves empty shows ours alone, without a verdict.",
        "",
        "| | " + " | ".join(preset.columns) + " |",
        "|---|" + "---|" * len(preset.columns),
    ]
    by_row: dict[str, list[CellResult]] = {}
    for cell in cells:
        by_row.setdefault(cell.row, []).append(cell)
    for label, row_cells in by_row.items():
        lines.append(f"| {_escape(label)} | " + " | ".join(_escape(_table_cell(c)) for c in row_cells) + " |")
    lines += [
        "",
        "## Every cell",
        "",
        "| Row | Column | Dataset | Metric | Ours (mean ± std, n) | Paper | Ours − paper | Tolerance | Verdict | Reason |",
        "|---|---|---|---|---|---|---:|---:|---|---|",
    ]
    for c in cells:
        if c.verdict is None:
            continue
        v = c.verdict
        lines.append(" | ".join([
            f"| {_escape(c.row)}", _escape(c.column), c.dataset or "–", c.metric or "–", _ours_text(c.ours),
            c.paper or "–", "–" if v.difference is None else f"{v.difference:+.4g}",
            "–" if v.tolerance is None else f"{v.tolerance:.3g}", v.label, _escape(v.reason)]) + " |")
    caveats = [f"- {label}: {spec.caveat}" for label, spec in {**preset.rows, **preset.columns}.items() if spec.caveat]
    if preset.notes or caveats:
        lines += ["", "## Notes", "", *(f"- {note}" for note in preset.notes), *caveats]
    return "\n".join(lines) + "\n"


def write_report(preset: Preset, cells: list[CellResult], frame: pd.DataFrame, facts: RunFacts, out: Path) -> tuple[Path, Path]:
    """``<out>/<preset>.md`` and ``.csv``; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    md, table = out / f"{preset.name}.md", out / f"{preset.name}.csv"
    md.write_text(markdown(preset, cells, frame, facts))
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for c in cells:
            mechanism, ratio = preset.column_setting(c.column)
            paper = preset.paper_values.get((c.row, c.column))
            v = c.verdict
            writer.writerow([
                preset.name, facts.budget, c.row, c.column, c.model or "", c.dataset or "", c.metric or "", mechanism,
                ratio, *(("", "", 0) if c.ours is None else (c.ours.mean, c.ours.std, c.ours.n)), c.paper or "",
                "" if paper is None else paper.value, "" if paper is None else paper.error,
                "" if v is None or v.difference is None else v.difference,
                "" if v is None or v.tolerance is None else v.tolerance, "" if v is None else v.label,
                "" if v is None else v.reason, c.setting])
    return md, table
