"""Imputation error against the missing ratio, one line per model (VSAE papers/000 Figure 2).

Each line is one ``label`` of the summary: a model, or with ``configs="all"`` a model under one of its
configurations (``vae (max_epochs=5)``), so no point pools configurations. Each point is its mean over the
seeds of one configuration at one ratio, with its standard deviation (ddof=1) as the
error bar, from :func:`imputebench.leaderboard.summarise`. One figure per (protocol, mechanism,
dataset, metric) that has at least two ratios.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

CURVE = ["protocol", "mechanism", "dataset", "metric"]


def ratio_curve(block: pd.DataFrame, title: str) -> Figure:
    """``block``: summary lines of one curve group (columns label, ratio, mean, std); one line per label."""
    figure = Figure(figsize=(5.0, 3.6))
    axis = figure.subplots()
    for label, line in block.sort_values("ratio").groupby("label", sort=True):
        axis.errorbar(line["ratio"], line["mean"], yerr=line["std"].fillna(0.0), marker="o", capsize=3, label=label)
    axis.set_xlabel("missing ratio")
    axis.set_ylabel(block["metric"].iloc[0].upper())
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def ratio_curves(summary: pd.DataFrame) -> dict[str, Figure]:
    """File stem -> figure, for every curve group of ``summary`` with two or more ratios."""
    figures = {}
    for (protocol, mechanism, dataset, metric), block in summary.groupby(CURVE, sort=True):
        if block["ratio"].nunique() < 2:
            continue
        stem = f"ratio_{dataset}_{metric}_{protocol}_{mechanism}"
        figures[stem] = ratio_curve(block, f"{dataset}, {mechanism}, protocol {protocol}")
    return figures
