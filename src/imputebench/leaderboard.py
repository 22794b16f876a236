"""Leaderboards from stored result rows: mean ± std over seeds, ranks, best in bold.

A *group* is one comparison: (protocol, dataset, mechanism, ratio). Within a
group every model is ranked on each primary metric (NRMSE for numeric features,
PFC for categorical ones, the summed per-pixel MSE for image modalities; lower is better) and the model's rank is the mean of
its per-metric ranks. Only rows with status ``ok`` count; ``n_seeds`` says how
many seeds each mean rests on, so a model that failed on some seeds shows it.

Each model is also tested against its group's best on the same metric: a two-sided Wilcoxon
signed-rank test on the per-seed scores, paired on seed (a seed fixes a cell's split and mask for
every model, so the pairs share their data). With n pairs the smallest two-sided p is 2 / 2**n:
0.25 for 3 seeds, and below 0.05 only from 6 seeds on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from imputebench.models.registry import UnknownNameError, get_model

PRIMARY_METRICS = ("nrmse", "pfc", "mse")
SIGNIFICANCE = 0.05
GROUP = ["protocol", "dataset", "mechanism", "ratio"]


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Long form: one line per (group, model, metric) with mean, std (ddof=1), n_seeds and rank."""
    ok = rows[rows["status"] == "ok"]
    metric_cols = [f"metric.{m}" for m in PRIMARY_METRICS if f"metric.{m}" in ok.columns]
    if ok.empty or not metric_cols:
        return pd.DataFrame(columns=[*GROUP, "model", "metric", "mean", "std", "n_seeds", "rank", "wall_time_s", "complete_data",
                                     "p_vs_best", "n_pairs"])
    long = ok.melt(id_vars=[*GROUP, "model", "seed", "wall_time_s"], value_vars=metric_cols, var_name="metric")
    long = long.dropna(subset=["value"])
    long["metric"] = long["metric"].str.removeprefix("metric.")
    stats = (
        long.groupby([*GROUP, "model", "metric"])
        .agg(mean=("value", "mean"), std=("value", "std"), n_seeds=("seed", "nunique"), wall_time_s=("wall_time_s", "mean"))
        .reset_index()
    )
    stats["metric_rank"] = stats.groupby([*GROUP, "metric"])["mean"].rank(method="min")
    stats["rank"] = stats.groupby([*GROUP, "model"])["metric_rank"].transform("mean")
    stats["complete_data"] = stats["model"].map(_complete_data)
    stats = stats.merge(_tests_against_best(long), on=[*GROUP, "metric", "model"], how="left")
    return stats.drop(columns="metric_rank").sort_values([*GROUP, "metric", "rank", "model"]).reset_index(drop=True)


def paired_p_value(best: np.ndarray, other: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of ``other - best`` over paired seeds; 1.0 when every difference is 0."""
    differences = other - best
    if not differences.any():
        return 1.0
    return float(wilcoxon(differences).pvalue)


def _pairs_note(summary: pd.DataFrame) -> str:
    """The smallest two-sided Wilcoxon p reachable with the most pairs in ``summary``, in words."""
    n = int(summary["n_pairs"].max())
    return f"{2.0 / 2**n:g} for the {n} seeds here" if n >= 2 else "one seed here: no test"


def _tests_against_best(long: pd.DataFrame) -> pd.DataFrame:
    """Per (group, metric, model): ``p_vs_best`` and ``n_pairs`` (seeds both models finished) against the
    model with the lowest mean; NaN p for the best itself and for fewer than 2 pairs."""
    out = []
    for key, block in long.groupby([*GROUP, "metric"]):
        scores = block.pivot_table(index="seed", columns="model", values="value")  # (seeds, models)
        best = block.groupby("model")["value"].mean().idxmin()  # the summary's best: lowest mean over seeds
        for model in scores.columns:
            pairs = scores[[best, model]].dropna().to_numpy()  # (n_pairs, 2)
            p = np.nan if model == best or len(pairs) < 2 else paired_p_value(pairs[:, 0], pairs[:, 1])
            out.append({**dict(zip([*GROUP, "metric"], key)), "model": model, "p_vs_best": p, "n_pairs": len(pairs)})
    return pd.DataFrame(out)


def _complete_data(model: str) -> bool:
    try:
        return get_model(model).trained_on_complete_data
    except UnknownNameError:  # a row of a model this version no longer has
        return False


def to_csv(summary: pd.DataFrame) -> str:
    return summary.to_csv(index=False, float_format="%.6g")


DECIMALS = {"mse": 4}  # image error per pixel, ~0.135: four decimals, as VSAE Tables 4-5; others three


def _cell(mean: float, std: float, best: bool, places: int = 3, p_vs_best: float = np.nan) -> str:
    text = f"{mean:.{places}f}" if pd.isna(std) else f"{mean:.{places}f} ± {std:.{places}f}"
    mark = " *" if p_vs_best < SIGNIFICANCE else ""
    return (f"**{text}**" if best else text) + mark


def to_markdown(summary: pd.DataFrame) -> str:
    """One table per (protocol, mechanism, ratio): models × 'dataset (metric)', best per column in bold."""
    if summary.empty:
        return "_No finished trials to show._\n"
    sections = []
    for (protocol, mechanism, ratio), block in summary.groupby(["protocol", "mechanism", "ratio"], sort=True):
        block = block.assign(column=block["dataset"] + " (" + block["metric"].str.upper() + ")")
        block = block.assign(best=block["mean"] == block.groupby("column")["mean"].transform("min"))
        places = block["metric"].map(lambda metric: DECIMALS.get(metric, 3))
        cells = zip(block["mean"], block["std"], block["best"], places, block["p_vs_best"])
        block = block.assign(text=[_cell(*cell) for cell in cells])
        table = block.pivot(index="model", columns="column", values="text").fillna("–")
        ranks = block.groupby(["model", "dataset"])["rank"].first().groupby("model").mean()
        table["mean rank"] = ranks.map("{:.2f}".format)
        seeds = block.groupby("model")["n_seeds"].min()
        table["seeds"] = seeds.astype(str)
        table = table.loc[ranks.sort_values().index]
        table.index = pd.Index([f"{m} †" if _complete_data(m) else m for m in table.index], name="model")
        header = f"### protocol `{protocol}`, mechanism `{mechanism}`, missing ratio {ratio:g}\n\n"
        sections.append(header + table.reset_index().to_markdown(index=False) + "\n")
    footer = (
        "Mean ± std (ddof=1) over seeds; lower is better; bold = best in its column; rank averaged over datasets and "
        "metrics; † = trained on complete data (as the VSAE tables mark their last rows); * = worse than its "
        f"column's best by a two-sided Wilcoxon signed-rank test paired on seed (p < {SIGNIFICANCE:g}). With n seeds the "
        f"smallest possible p is 2/2^n ({_pairs_note(summary)}), so fewer than 6 seeds can show no *.\n"
    )
    return "\n".join(sections) + "\n" + footer
