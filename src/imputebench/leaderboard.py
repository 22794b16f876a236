"""Leaderboards from stored result rows: mean ± std over seeds, ranks, best in bold.

A *group* is one comparison: (protocol, dataset, mechanism, ratio). Within a
group every model is ranked on each primary metric (NRMSE for numeric features,
PFC for categorical ones, the summed per-pixel MSE for image modalities; lower is better; and, for trials that
asked for them, the post-imputation prediction's R² or accuracy and the label accuracy, higher is better) and the model's rank is the mean of
its per-metric ranks. Only rows with status ``ok`` count; ``n_seeds`` says how
many seeds each mean rests on, so a model that failed on some seeds shows it.

One configuration per mean: a trial's ``setting`` (a hash of its identity without the seed: the model's
full configuration, the data's hash, mechanism, ratio, protocol, numerics) says which trials may be pooled,
and mean, std, ``n_seeds``, ranks, tests and failure counts are each taken over the trials of one setting.
A store that saw the same model in the same group under several settings (``--max-epochs 5``, then 6)
shows by default only the setting run most recently in each (group, model) (``configs="latest"``; the
footer counts the trials it hides, ``older_trials`` per line); ``configs="all"`` (``--config all``) shows
each setting as its own line and competitor, labelled by the identity fields in which it differs from
the model's other settings in that group: ``vae (max_epochs=5)``. Frames without a ``setting`` column
(old callers) count each (group, model) as one setting.

Each model is also tested against its group's best on the same metric: a two-sided Wilcoxon
signed-rank test on the per-seed scores, paired on seed (a seed fixes a cell's split and mask for
every model, so the pairs share their data). With n pairs the smallest two-sided p is 2 / 2**n:
0.25 for 3 seeds, and below 0.05 only from 6 seeds on.

Failures are counted, not hidden: every line carries its (group, model, setting)'s number of attempts whose
status is not ``ok`` (``failures``, and one ``status.<status>`` column per status), and a model with no
finished trial in a group keeps one line there (no metric, ``n_seeds`` 0) so its failures show.

Layouts: by default one table per (protocol, mechanism, ratio) with datasets across; ``by`` names
the group fields that run across instead (``by=["ratio"]``: missing ratios across, as VSAE Table 2),
one table per remaining combination and metric. Both end with an overall rank per protocol. Tables
list each line by its ``label`` (the model's name unless it has several settings in a group).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from imputebench.metric_directions import DOWNSTREAM_METRICS, HIGHER_IS_BETTER, LABEL_ACCURACY
from imputebench.model_catalog import trained_on_complete_data

PRIMARY_METRICS = ("nrmse", "pfc", "mse", *DOWNSTREAM_METRICS.values(), LABEL_ACCURACY)
SIGNIFICANCE = 0.05
GROUP = ["protocol", "dataset", "mechanism", "ratio"]
CELL = [*GROUP, "model"]  # where settings compete for the one line ``configs="latest"`` keeps
LINE = [*CELL, "setting", "label"]  # one competitor: a model under one setting
CONFIG_VIEWS = ("latest", "all")
FAILURE_STATUSES = ("diverged", "failed", "timeout")  # always given a column, so the CSV's columns do not depend on the data
SUMMARY_COLUMNS = [*GROUP, "model", "label", "metric", "mean", "std", "n_seeds", "wall_time_s", "rank", "complete_data",
                   "p_vs_best", "n_pairs", "setting"]
HASH = re.compile(r"[0-9a-f]{16,}")  # a hash in an identity, shortened to 8 digits in labels


def summarise(rows: pd.DataFrame, attempts: pd.DataFrame | None = None, configs: str = "latest") -> pd.DataFrame:
    """Long form: one line per (group, model, setting, metric) with mean, std (ddof=1), n_seeds, rank and failure
    counts, ``label`` (the name tables show), ``setting`` and ``older_trials`` (the trials of the line's
    (group, model) under other settings that ``configs="latest"`` left out).

    ``rows`` holds one row per trial (its last outcome); ``attempts``, when the store keeps them, one row per
    attempt, so a trial that failed twice before succeeding counts 2 failures. Without ``attempts`` the
    failures are the trials of ``rows`` whose status is not ``ok``. ``configs``: ``latest`` keeps per
    (group, model) the setting finished last, ``all`` every setting as its own line.
    """
    settings = shown_settings(rows, attempts, configs)
    rows = _kept(rows, settings)
    failures = failure_counts(rows if attempts is None else _kept(attempts, settings))
    return _with_failures(_scores(rows), failures, settings)


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``setting`` column: a frame without one counts each (group, model) as one setting."""
    return frame if "setting" in frame.columns else frame.assign(setting="")


def _kept(frame: pd.DataFrame, settings: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` (trials or attempts) whose setting is shown, with its ``label``."""
    return _keyed(frame).merge(settings[[*CELL, "setting", "label"]], on=[*CELL, "setting"])


def shown_settings(rows: pd.DataFrame, attempts: pd.DataFrame | None, configs: str = "latest") -> pd.DataFrame:
    """One line per (group, model, setting) to show, with its ``label`` and ``older_trials``: every setting of
    ``rows`` and ``attempts`` for ``configs="all"``, per (group, model) the one finished last for ``latest``
    (the largest ``finished_at`` of its trials and attempts, whatever their status; between equal or unknown
    times, the setting whose trial comes last in ``rows``: the store's order of writing)."""
    if configs not in CONFIG_VIEWS:
        raise ValueError(f"unknown configs {configs!r}; choose from {', '.join(CONFIG_VIEWS)}")
    frames = [rows.assign(order=np.arange(len(rows))), *([] if attempts is None else [attempts.assign(order=-1)])]
    seen = pd.concat([_keyed(frame).reindex(columns=[*CELL, "setting", "finished_at", "identity", "order"])
                      for frame in frames])
    seen["finished_at"] = pd.to_datetime(seen["finished_at"], utc=True, errors="coerce", format="ISO8601")
    settings = seen.groupby([*CELL, "setting"]).agg(finished_at=("finished_at", "max"), order=("order", "max"),
                                                    identity=("identity", "first"))
    trials = _keyed(rows).groupby([*CELL, "setting"]).size()
    settings = settings.assign(trials=trials.reindex(settings.index, fill_value=0)).reset_index()
    if configs == "latest":
        older = settings.groupby(CELL)["trials"].transform("sum") - settings["trials"]
        settings = settings.assign(older_trials=older).sort_values(["finished_at", "order"], na_position="first")
        settings = settings.groupby(CELL).tail(1)
    else:
        settings = settings.assign(older_trials=0)
    settings = settings.assign(label=_labels_of_settings(settings), older_trials=settings["older_trials"].astype(int))
    return settings[[*CELL, "setting", "label", "older_trials"]]


def identity_fields(identity: object) -> dict[str, str]:
    """A trial's ``identity`` JSON flattened to dotted keys (``data.sha256``) -> value text, without ``seed``;
    config fields bare (``max_epochs``), hashes shortened to 8 digits. Not JSON text: no fields."""
    if not isinstance(identity, str):
        return {}
    tree = {key: value for key, value in json.loads(identity).items() if key != "seed"}
    return {key.removeprefix("config."): _value_text(value) for key, value in _flat(tree).items()}


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested dicts as one dict with dotted keys; other values (lists too) are leaves."""
    flat = {}
    for key, value in tree.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def _value_text(value: object) -> str:
    """An identity value as a label shows it: strings bare (hashes to 8 digits), the rest as JSON (null, 0.001)."""
    if isinstance(value, str):
        return value[:8] if HASH.fullmatch(value) else value
    return json.dumps(value)


def _labels_of_settings(settings: pd.DataFrame) -> pd.Series:
    """Per line of ``settings``: the model's name, followed for a model with several settings in its (group,
    model) by the identity fields in which they differ, sorted by key: ``vae (lr=0.001, max_epochs=6)``.
    Settings no field tells apart (no identity known) add their setting's first 8 digits."""
    fields = pd.DataFrame(list(settings["identity"].map(identity_fields)), index=settings.index).fillna("–")
    cells = [settings[field] for field in CELL]
    varies = fields.groupby(cells).transform("nunique") > 1 if len(fields.columns) else fields.astype(bool)
    differing = fields.where(varies).rename_axis("line").reset_index().melt(id_vars="line", var_name="key")
    differing = differing.dropna(subset=["value"]).sort_values(["line", "key"])
    parts = (differing["key"] + "=" + differing["value"]).groupby(differing["line"]).agg(", ".join)
    parts = parts.reindex(settings.index, fill_value="")
    several = settings.groupby(CELL)["setting"].transform("size") > 1
    alike = several & settings.assign(parts=parts).duplicated([*CELL, "parts"], keep=False)
    parts = parts.where(~alike, parts.where(parts == "", parts + ", ") + "setting=" + settings["setting"].str[:8])
    return settings["model"].where(parts == "", settings["model"] + " (" + parts + ")")


def failure_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (group, model, setting) of ``frame`` (trials or attempts): how many rows have each status other than
    ``ok`` (``status.<status>``, at least one column per :data:`FAILURE_STATUSES`) and their total, ``failures``."""
    frame = _keyed(frame)
    frame = frame if "label" in frame.columns else frame.assign(label=frame["model"])
    statuses = sorted(set(FAILURE_STATUSES) | set(frame["status"]) - {"ok"})
    counts = frame.groupby(LINE)["status"].value_counts().unstack("status", fill_value=0)
    counts = counts.reindex(columns=statuses, fill_value=0).astype(int).add_prefix("status.")
    return counts.assign(failures=counts.sum(axis=1)).reset_index().rename_axis(columns=None)


def _with_failures(stats: pd.DataFrame, failures: pd.DataFrame, settings: pd.DataFrame) -> pd.DataFrame:
    """``stats`` with ``failures`` merged on (group, model, setting), plus one metric-less line for each that
    failed every attempt: dropping it would make a model that always crashes look merely absent. Then each
    line's ``older_trials`` from ``settings``; the summary's own columns first, the failure counts after."""
    absent = failures.merge(stats[LINE].drop_duplicates(), on=LINE, how="left", indicator=True)
    absent = absent.loc[absent["_merge"] == "left_only", LINE]
    absent = absent.assign(n_seeds=0, n_pairs=0, complete_data=absent["model"].map(trained_on_complete_data))
    lines = pd.concat([stats, absent], ignore_index=True) if not absent.empty else stats
    lines = lines.merge(failures, on=LINE, how="left")
    counts = [c for c in failures.columns if c.startswith("status.")] + ["failures"]
    lines[counts] = lines[counts].fillna(0).astype(int)
    lines = lines.merge(settings[[*CELL, "setting", "older_trials"]], on=[*CELL, "setting"], how="left")
    lines = lines[[*SUMMARY_COLUMNS, *counts, "older_trials"]]
    return lines.sort_values([*GROUP, "metric", "rank", "label"]).reset_index(drop=True)


def _scores(rows: pd.DataFrame) -> pd.DataFrame:
    """The ``ok`` rows' statistics per (group, model, setting, metric): mean, std, n_seeds, rank, test against the best."""
    ok = rows[rows["status"] == "ok"]
    metric_cols = [f"metric.{m}" for m in PRIMARY_METRICS if f"metric.{m}" in ok.columns]
    if ok.empty or not metric_cols:
        return pd.DataFrame(columns=SUMMARY_COLUMNS).astype({"ratio": float})  # float, as the failures it is merged with
    long = ok.melt(id_vars=[*LINE, "seed", "wall_time_s"], value_vars=metric_cols, var_name="metric")
    long = long.dropna(subset=["value"])
    long["metric"] = long["metric"].str.removeprefix("metric.")
    stats = (
        long.groupby([*LINE, "metric"])
        .agg(mean=("value", "mean"), std=("value", "std"), n_seeds=("seed", "nunique"), wall_time_s=("wall_time_s", "mean"))
        .reset_index()
    )
    stats["metric_rank"] = _loss(stats).groupby([stats[c] for c in [*GROUP, "metric"]]).rank(method="min")
    stats["rank"] = stats.groupby(LINE)["metric_rank"].transform("mean")
    stats["complete_data"] = stats["model"].map(trained_on_complete_data)
    stats = stats.merge(_tests_against_best(long), on=[*GROUP, "metric", "label"], how="left")
    return stats.drop(columns="metric_rank")


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
    """Per (group, metric, label): ``p_vs_best`` and ``n_pairs`` (seeds both lines finished) against the line
    with the best mean (the lowest error, the highest score); NaN p for the best itself and for fewer than 2 pairs. Each label is one setting, so
    only seeds of one configuration pair."""
    out = []
    for key, block in long.groupby([*GROUP, "metric"]):
        scores = block.pivot_table(index="seed", columns="label", values="value")  # (seeds, labels)
        best = _loss(block).groupby(block["label"]).mean().idxmin()  # the summary's best mean over seeds
        for label in scores.columns:
            pairs = scores[[best, label]].dropna().to_numpy()  # (n_pairs, 2)
            p = np.nan if label == best or len(pairs) < 2 else paired_p_value(pairs[:, 0], pairs[:, 1])
            out.append({**dict(zip([*GROUP, "metric"], key)), "label": label, "p_vs_best": p, "n_pairs": len(pairs)})
    return pd.DataFrame(out)


def check_by(by: Sequence[str]) -> list[str]:
    """``by`` as a list of group fields to run across, or a ValueError naming the valid ones: a typo must not
    quietly give another layout."""
    unknown = [field for field in by if field not in GROUP]
    if unknown or not by or len(set(by)) != len(by):
        named = f"unknown field {unknown[0]!r}" if unknown else f"{','.join(by) or 'nothing'}: name each field once"
        raise ValueError(f"by {named}; choose from {', '.join(GROUP)}")
    return list(by)


def to_csv(summary: pd.DataFrame, by: Sequence[str] | None = None) -> str:
    """The long summary; with ``by``, the wide form of :func:`to_markdown`'s ``by`` tables: one line per
    (remaining fields, metric, model), columns ``<label> mean`` and ``<label> std`` per column of the table."""
    frame = summary if by is None else _wide(summary, check_by(by))
    return frame.to_csv(index=False, float_format="%.6g")


DECIMALS = {"mse": 4}  # image error per pixel, ~0.135: four decimals, as VSAE Tables 4-5; others three


def _cell(mean: float, std: float, best: bool, places: int = 3, p_vs_best: float = np.nan) -> str:
    text = f"{mean:.{places}f}" if pd.isna(std) else f"{mean:.{places}f} ± {std:.{places}f}"
    mark = " *" if p_vs_best < SIGNIFICANCE else ""
    return (f"**{text}**" if best else text) + mark


def to_markdown(summary: pd.DataFrame, by: Sequence[str] | None = None) -> str:
    """One table per (protocol, mechanism, ratio) with models × 'dataset (metric)', or with ``by`` one table per
    remaining combination and metric with models × the ``by`` fields; best per column in bold. Then the overall
    rank per protocol and a footer saying how to read them."""
    by = None if by is None else check_by(by)
    if summary.empty:
        return "_No finished trials to show._\n"
    sections = list(_dataset_sections(summary) if by is None else _by_sections(summary, by))
    return "\n".join([*sections, _overall_section(summary)]) + "\n" + _footer(summary, by)


def _dataset_sections(summary: pd.DataFrame) -> Iterator[str]:
    """The default layout: per (protocol, mechanism, ratio), datasets (and their metrics) across."""
    fields = ["protocol", "mechanism", "ratio"]
    for values, block in summary.groupby(fields, sort=True):
        block = block.assign(column=block["dataset"] + " (" + block["metric"].str.upper() + ")").sort_values("column")
        ranks = block.groupby(["label", "dataset"])["rank"].first().groupby("label").mean()
        yield f"### {_describe(fields, values)}\n\n" + _model_table(block, ranks) + "\n"


def _by_sections(summary: pd.DataFrame, by: list[str]) -> Iterator[str]:
    for rest, values, metric, table in _by_tables(summary, by):
        where = f"{_describe(rest, values)}: " if rest else ""
        header = f"### {where}{metric.upper()} by {', '.join(by)}\n\n"
        yield header + _model_table(table, _column_ranks(table)) + "\n"


def _by_tables(summary: pd.DataFrame, by: list[str]) -> Iterator[tuple[list[str], tuple, str, pd.DataFrame]]:
    """(remaining fields, their values, metric, lines) per table of the ``by`` layout, lines sorted by ``by`` and
    labelled with their column; each column is one group. Models that failed every attempt in one of the table's
    groups come along (metric-less lines) so their failures count; groups where no model finished have no column."""
    rest = [field for field in GROUP if field not in by]
    for values, block in [((), summary)] if not rest else summary.groupby(rest, sort=True):
        scored, failed = block[block["metric"].notna()], block[block["metric"].isna()]
        for metric, lines in scored.groupby("metric", sort=True):
            in_table = pd.MultiIndex.from_frame(failed[GROUP]).isin(pd.MultiIndex.from_frame(lines[GROUP]))
            table = pd.concat([lines, failed[in_table]]).sort_values(by)
            yield rest, values, metric, table.assign(column=_labels(table, by))


def _labels(lines: pd.DataFrame, fields: list[str]) -> pd.Series:
    """Column label of each line: its values of ``fields``, ratios as 0.5, joined by ', '."""
    parts = [lines[field].map("{:g}".format) if field == "ratio" else lines[field].astype(str) for field in fields]
    return pd.concat(parts, axis=1).agg(", ".join, axis=1)


def _describe(fields: Sequence[str], values: Sequence) -> str:
    """A table's header: ``protocol `vsae`, mechanism `mcar`, missing ratio 0.5``."""
    return ", ".join(f"missing ratio {value:g}" if field == "ratio" else f"{field} `{value}`"
                     for field, value in zip(fields, values))


def _column_ranks(table: pd.DataFrame) -> pd.Series:
    """Each label's rank (best mean = 1) in every column where it has a score, averaged; NaN for none."""
    scored = table[table["metric"].notna()]
    ranks = _loss(scored).groupby(scored["column"]).rank(method="min").groupby(scored["label"]).mean()
    return ranks.reindex(sorted(table["label"].unique()))


def _per_model(lines: pd.DataFrame, ranks: pd.Series) -> pd.DataFrame:
    """Each label's mean rank, fewest seeds and failed attempts over ``lines``, best mean rank first."""
    failures = lines.drop_duplicates([*GROUP, "label"]).groupby("label")["failures"].sum()
    per_model = pd.DataFrame({"mean rank": ranks, "seeds": lines.groupby("label")["n_seeds"].min(), "failures": failures})
    return per_model.loc[ranks.sort_values().index]


def _model_table(lines: pd.DataFrame, ranks: pd.Series) -> str:
    """Labels × ``lines['column']`` (in the order of ``lines``): mean ± std, bold best per column, * where worse
    than it; – where a label has no score; then :func:`_per_model`'s columns and † for complete-data models."""
    scored = lines[lines["metric"].notna()]
    loss = _loss(scored)
    best = loss == loss.groupby(scored["column"]).transform("min")
    places = scored["metric"].map(lambda metric: DECIMALS.get(metric, 3))
    text = [_cell(*cell) for cell in zip(scored["mean"], scored["std"], best, places, scored["p_vs_best"])]
    per_model = _per_model(lines, ranks)
    table = scored.assign(text=text).pivot(index="label", columns="column", values="text")
    table = table.reindex(index=per_model.index, columns=scored["column"].unique()).fillna("–")
    table["mean rank"] = per_model["mean rank"].map(_rank_text)
    table[["seeds", "failures"]] = per_model[["seeds", "failures"]].astype(str)
    table.index = pd.Index(_marked(table.index, lines), name="model")
    return table.reset_index().to_markdown(index=False)


def _marked(labels: Iterable[str], lines: pd.DataFrame) -> list[str]:
    """Labels with † after those of models trained on complete data, whose scores are not comparable with the
    rest's; ``lines`` (columns label and model) says whose model each label is."""
    models = lines.drop_duplicates("label").set_index("label")["model"]
    return [f"{label} †" if trained_on_complete_data(models[label]) else label for label in labels]


def _rank_text(rank: float) -> str:
    return "–" if pd.isna(rank) else f"{rank:.2f}"


def _wide(summary: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The ``by`` tables as numbers, stacked: the CSV twin of :func:`_by_sections` (``model``: the line's label)."""
    frames = []
    for rest, values, metric, table in _by_tables(summary, by):
        cells = table[table["metric"].notna()].pivot(index="label", columns="column", values=["mean", "std"])
        cells.columns = [f"{label} {stat}" for stat, label in cells.columns]
        per_model = _per_model(table, _column_ranks(table))
        frame = per_model.join(cells).rename_axis("model").reset_index()
        frames.append(frame.assign(**dict(zip(rest, values)), metric=metric))
    first = [field for field in GROUP if field not in by] + ["metric", "model"]
    if not frames:
        return pd.DataFrame(columns=[*first, "mean rank", "seeds", "failures"])
    scored = summary[summary["metric"].notna()].sort_values(by)
    cells = [f"{label} {stat}" for label in _labels(scored, by).unique() for stat in ("mean", "std")]
    return pd.concat(frames, ignore_index=True)[first + cells + ["mean rank", "seeds", "failures"]]


def overall_ranks(summary: pd.DataFrame) -> pd.DataFrame:
    """Per protocol and label: ``mean_rank``, its rank averaged over the (dataset, mechanism, ratio) groups in
    which every label of the protocol has a score (``groups`` of them), ``scored_in`` groups out of ``of``, and
    ``failures``; ``model`` names the label's model. Averaging each label over the groups it happens to have
    would rank a model skipped on the hard datasets above one that ran them all; with no complete group
    ``mean_rank`` is NaN."""
    lines = summary.drop_duplicates([*GROUP, "label"])
    frames = []
    for protocol, block in lines.groupby("protocol", sort=True):
        ranks = block.set_index([*GROUP[1:], "label"])["rank"].unstack("label")  # (groups, labels); NaN: no score
        complete = ranks.dropna()
        by_label = block.groupby("label")
        frames.append(pd.DataFrame({
            "protocol": protocol, "model": by_label["model"].first(), "mean_rank": complete.mean(),
            "groups": len(complete), "scored_in": ranks.notna().sum(), "of": len(ranks),
            "failures": by_label["failures"].sum(),
        }).rename_axis("label").reset_index().sort_values(["mean_rank", "label"]))
    columns = ["protocol", "model", "label", "mean_rank", "groups", "scored_in", "of", "failures"]
    return pd.concat(frames, ignore_index=True)[columns]


def _overall_section(summary: pd.DataFrame) -> str:
    sections = []
    for protocol, block in overall_ranks(summary).groupby("protocol", sort=True):
        table = pd.DataFrame({
            "model": _marked(block["label"], block), "mean rank": block["mean_rank"].map(_rank_text),
            "groups": block["groups"].astype(str),
            "scored in": block["scored_in"].astype(str) + " / " + block["of"].astype(str),
            "failures": block["failures"].astype(str),
        })
        sections.append(f"### overall, protocol `{protocol}`\n\n" + table.to_markdown(index=False) + "\n")
    return "\n".join(sections)


def _loss(lines: pd.DataFrame) -> pd.Series:
    """Each line's ``mean`` (``value`` in per-seed frames) turned lower-is-better: a score (R², accuracy) negated."""
    values = lines["mean"] if "mean" in lines else lines["value"]
    return values.where(~lines["metric"].isin(HIGHER_IS_BETTER), -values)


def _direction_note(summary: pd.DataFrame) -> str:
    scores = sorted(set(summary["metric"].dropna()) & HIGHER_IS_BETTER)
    return f"lower is better, except {', '.join(m.upper() for m in scores)} (higher)" if scores else "lower is better"


def _footer(summary: pd.DataFrame, by: list[str] | None) -> str:
    columns = f"a table's columns ({', '.join(by)})" if by else "datasets and metrics"
    ranks = f"rank averaged over {columns}"
    return (
        f"Mean ± std (ddof=1) over the seeds of one configuration; {_direction_note(summary)}; bold = best in its column; "
        f"{ranks}; "
        "† = trained on complete data (as the VSAE tables mark their last rows); * = worse than its "
        f"column's best by a two-sided Wilcoxon signed-rank test paired on seed (p < {SIGNIFICANCE:g}). With n seeds the "
        f"smallest possible p is 2/2^n ({_pairs_note(summary)}), so fewer than 6 seeds can show no *.\n"
        "Overall: per protocol, a model's rank in each (dataset, mechanism, ratio) averaged over the `groups` in which "
        "every model listed has a score, so no model is ranked on an easier subset; `scored in` counts the groups "
        "where it has one. `seeds` = fewest finished seeds in a column (0: none finished).\n"
        f"{_failure_note(summary)}\n{_configuration_note(summary)}"
    )


def _configuration_note(summary: pd.DataFrame) -> str:
    """The footer's configuration line: how many trials of older configurations are hidden, and how lines of
    several configurations are labelled; nothing when every model has one configuration per group."""
    hidden = int(summary.drop_duplicates([*GROUP, "label"])["older_trials"].sum())
    notes = []
    if (summary["label"] != summary["model"]).any():
        notes.append("A model run under several configurations in a group has one line per configuration, labelled "
                     "by the fields in which they differ.")
    if hidden:
        trials = "1 trial" if hidden == 1 else f"{hidden} trials"
        notes.append(f"{trials} of older configurations not shown (the latest configuration of each model per "
                     "group is): `--config all` shows them.")
    return "".join(f"{note}\n" for note in notes)


def _failure_note(summary: pd.DataFrame) -> str:
    """The footer's failure line: attempts whose status is not ok, by status, over the whole leaderboard."""
    counts = summary.drop_duplicates([*GROUP, "label"]).filter(like="status.").sum()
    if not counts.any():
        return "`failures` = attempts whose status is not ok: none here."
    by_status = ", ".join(f"{count} {status.removeprefix('status.')}" for status, count in counts.items())
    return f"`failures` = attempts whose status is not ok: {by_status}."
