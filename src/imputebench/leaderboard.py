"""Leaderboards from stored result rows: mean ± std over seeds, ranks, best in bold.

A *group* is one comparison: (protocol, dataset, mechanism, ratio). Within a
group every model is ranked on each primary metric (NRMSE for numeric features,
PFC for categorical ones, the summed per-pixel MSE for image modalities; lower is better) and the model's rank is the mean of
its per-metric ranks. Only rows with status ``ok`` count; ``n_seeds`` says how
many seeds each mean rests on, so a model that failed on some seeds shows it.
"""

from __future__ import annotations

import pandas as pd

from imputebench.models.registry import UnknownNameError, get_model

PRIMARY_METRICS = ("nrmse", "pfc", "mse")
GROUP = ["protocol", "dataset", "mechanism", "ratio"]


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Long form: one line per (group, model, metric) with mean, std (ddof=1), n_seeds and rank."""
    ok = rows[rows["status"] == "ok"]
    metric_cols = [f"metric.{m}" for m in PRIMARY_METRICS if f"metric.{m}" in ok.columns]
    if ok.empty or not metric_cols:
        return pd.DataFrame(columns=[*GROUP, "model", "metric", "mean", "std", "n_seeds", "rank", "wall_time_s", "complete_data"])
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
    return stats.drop(columns="metric_rank").sort_values([*GROUP, "metric", "rank", "model"]).reset_index(drop=True)


def _complete_data(model: str) -> bool:
    try:
        return get_model(model).trained_on_complete_data
    except UnknownNameError:  # a row of a model this version no longer has
        return False


def to_csv(summary: pd.DataFrame) -> str:
    return summary.to_csv(index=False, float_format="%.6g")


DECIMALS = {"mse": 4}  # image error per pixel, ~0.135: four decimals, as VSAE Tables 4-5; others three


def _cell(mean: float, std: float, best: bool, places: int = 3) -> str:
    text = f"{mean:.{places}f}" if pd.isna(std) else f"{mean:.{places}f} ± {std:.{places}f}"
    return f"**{text}**" if best else text


def to_markdown(summary: pd.DataFrame) -> str:
    """One table per (protocol, mechanism, ratio): models × 'dataset (metric)', best per column in bold."""
    if summary.empty:
        return "_No finished trials to show._\n"
    sections = []
    for (protocol, mechanism, ratio), block in summary.groupby(["protocol", "mechanism", "ratio"], sort=True):
        block = block.assign(column=block["dataset"] + " (" + block["metric"].str.upper() + ")")
        block = block.assign(best=block["mean"] == block.groupby("column")["mean"].transform("min"))
        places = block["metric"].map(lambda metric: DECIMALS.get(metric, 3))
        block = block.assign(text=[_cell(*cell) for cell in zip(block["mean"], block["std"], block["best"], places)])
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
        "metrics; † = trained on complete data (as the VSAE tables mark their last rows).\n"
    )
    return "\n".join(sections) + "\n" + footer
