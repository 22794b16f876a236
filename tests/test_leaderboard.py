import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from imputebench import leaderboard as lb
from imputebench.cli import app
from imputebench.runner.store import ResultRow, ResultStore
from imputebench.runner.trials import Trial


def rows() -> pd.DataFrame:
    base = dict(protocol="vaeac", mechanism="mcar", ratio=0.5, status="ok", wall_time_s=1.0)
    records = []
    for seed, (mean_nrmse, mice_nrmse) in enumerate([(1.0, 0.8), (1.2, 0.6), (1.1, 0.7)]):
        records += [
            {**base, "dataset": "yeast", "model": "mean", "seed": seed, "metric.nrmse": mean_nrmse, "metric.pfc": np.nan},
            {**base, "dataset": "yeast", "model": "mice", "seed": seed, "metric.nrmse": mice_nrmse, "metric.pfc": np.nan},
            {**base, "dataset": "zoo", "model": "mean", "seed": seed, "metric.nrmse": np.nan, "metric.pfc": 0.3},
            {**base, "dataset": "zoo", "model": "mice", "seed": seed, "metric.nrmse": np.nan, "metric.pfc": 0.4},
        ]
    records.append({**base, "dataset": "zoo", "model": "mice", "seed": 9, "status": "failed", "metric.nrmse": np.nan, "metric.pfc": np.nan})
    return pd.DataFrame(records)


def test_summary_means_stds_and_ranks():
    summary = lb.summarise(rows()).set_index(["dataset", "model", "metric"])
    assert summary.loc[("yeast", "mice", "nrmse"), "mean"] == pytest.approx(0.7)
    assert summary.loc[("yeast", "mice", "nrmse"), "std"] == pytest.approx(0.1)
    assert summary.loc[("yeast", "mice", "nrmse"), "rank"] == 1
    assert summary.loc[("zoo", "mean", "pfc"), "rank"] == 1
    assert summary.loc[("zoo", "mice", "pfc"), "n_seeds"] == 3  # the failed seed does not count
    assert ("yeast", "mean", "pfc") not in summary.index


def test_markdown_bolds_the_best_per_column_and_csv_round_trips():
    summary = lb.summarise(rows())
    text = lb.to_markdown(summary)
    assert "**0.700 ± 0.100**" in text and "**0.300 ± 0.000**" in text
    assert "1.100 ± 0.100" in text and "**1.100" not in text
    assert "yeast (NRMSE)" in text and "zoo (PFC)" in text
    back = pd.read_csv(__import__("io").StringIO(lb.to_csv(summary)))
    assert len(back) == len(summary) and set(back.columns) >= {"mean", "std", "rank", "n_seeds"}


def test_empty_store_gives_a_friendly_table():
    assert "No finished trials" in lb.to_markdown(lb.summarise(rows().iloc[:0]))


def test_image_error_shows_four_decimals_so_models_near_the_mean_image_differ():
    base = dict(protocol="vsae", mechanism="mcar", ratio=0.5, status="ok", wall_time_s=1.0, dataset="mnist_mnist", seed=0)
    frame = pd.DataFrame([{**base, "model": "mean", "metric.mse": 0.13541}, {**base, "model": "vsae", "metric.mse": 0.13687}])
    text = lb.to_markdown(lb.summarise(frame))
    assert "**0.1354**" in text and "0.1369" in text


def test_models_are_tested_against_the_best_paired_on_seed():
    summary = lb.summarise(rows()).set_index(["dataset", "model", "metric"])
    assert np.isnan(summary.loc[("yeast", "mice", "nrmse"), "p_vs_best"])  # the best itself
    assert summary.loc[("yeast", "mean", "nrmse"), "p_vs_best"] == pytest.approx(0.25)  # 3 pairs, all worse: 2/2**3
    assert summary.loc[("zoo", "mice", "pfc"), "n_pairs"] == 3  # the failed seed 9 pairs with nothing
    text = lb.to_markdown(lb.summarise(rows()))
    assert not re.search(r"[0-9]\** \*", text) and "0.25 for the 3 seeds here" in text  # no cell marked


def test_a_difference_over_six_seeds_is_marked_and_ties_are_not():
    base = dict(protocol="vsae", mechanism="mcar", ratio=0.5, status="ok", wall_time_s=1.0, dataset="yeast")
    records = []
    for seed in range(6):
        records += [{**base, "seed": seed, "model": "a", "metric.nrmse": 0.5 + 0.01 * seed},
                    {**base, "seed": seed, "model": "b", "metric.nrmse": 0.6 + 0.02 * seed},
                    {**base, "seed": seed, "model": "c", "metric.nrmse": 0.5 + 0.01 * seed}]
    summary = lb.summarise(pd.DataFrame(records)).set_index("model")
    assert summary.loc["b", "p_vs_best"] == pytest.approx(2 / 2**6)
    assert summary.loc["c", "p_vs_best"] == 1.0  # identical scores: no evidence of a difference
    text = lb.to_markdown(summary.reset_index())
    assert "0.650 ± 0.037 *" in text and "0.525 ± 0.019 *" not in text


def test_paired_p_value_is_symmetric_and_needs_no_normality():
    best, other = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), np.array([0.2, 0.25, 0.9, 0.41, 0.7, 5.0])
    assert lb.paired_p_value(best, other) == pytest.approx(lb.paired_p_value(other, best))
    assert lb.paired_p_value(best, other) == pytest.approx(0.03125)


def test_one_seed_says_there_is_no_test():
    base = dict(protocol="vsae", mechanism="mcar", ratio=0.5, status="ok", wall_time_s=1.0, dataset="yeast", seed=0)
    frame = pd.DataFrame([{**base, "model": "a", "metric.nrmse": 0.5}, {**base, "model": "b", "metric.nrmse": 0.9}])
    summary = lb.summarise(frame)
    assert summary["p_vs_best"].isna().all() and "one seed here: no test" in lb.to_markdown(summary)


def table_rows(text: str, header: str) -> dict[str, list[str]]:
    """The Markdown table under ``header``: first cell (model, or 'model' for the header) -> the other cells."""
    lines = text.split(header, 1)[1].split("\n\n")[1].splitlines()
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if not line.startswith("|:")]
    return {row[0]: row[1:] for row in cells}


def grid() -> pd.DataFrame:
    """Models a and b on yeast under 2 mechanisms × 2 ratios, 2 seeds; b is better only under mcar 0.5."""
    records = []
    for mechanism, ratio, a, b in [("mar", 0.2, 0.4, 0.6), ("mar", 0.5, 0.5, 0.7), ("mcar", 0.2, 0.3, 0.5), ("mcar", 0.5, 0.6, 0.2)]:
        for seed in range(2):
            base = dict(protocol="vsae", dataset="yeast", mechanism=mechanism, ratio=ratio, seed=seed, status="ok", wall_time_s=1.0)
            records += [{**base, "model": "a", "metric.nrmse": a + 0.1 * seed}, {**base, "model": "b", "metric.nrmse": b + 0.1 * seed}]
    return pd.DataFrame(records)


def test_by_mechanism_and_ratio_puts_the_four_cells_across():
    summary = lb.summarise(grid())
    text = lb.to_markdown(summary, by=["mechanism", "ratio"])
    table = table_rows(text, "### protocol `vsae`, dataset `yeast`: NRMSE by mechanism, ratio")
    assert table["model"] == ["mar, 0.2", "mar, 0.5", "mcar, 0.2", "mcar, 0.5", "mean rank", "seeds", "failures"]
    assert table["a"] == ["**0.450 ± 0.071**", "**0.550 ± 0.071**", "**0.350 ± 0.071**", "0.650 ± 0.071", "1.25", "2", "0"]
    assert table["b"][:4] == ["0.650 ± 0.071", "0.750 ± 0.071", "0.550 ± 0.071", "**0.250 ± 0.071**"]
    assert table["b"][4] == "1.75" and list(table)[1:] == ["a", "b"]  # rows by mean rank: (1+1+1+2)/4 against (2+2+2+1)/4


def test_by_csv_is_the_wide_twin_of_the_table():
    summary = lb.summarise(grid())
    wide = pd.read_csv(__import__("io").StringIO(lb.to_csv(summary, by=["ratio"]))).set_index(["mechanism", "model"])
    assert list(wide.columns) == ["protocol", "dataset", "metric", "0.2 mean", "0.2 std", "0.5 mean", "0.5 std",
                                  "mean rank", "seeds", "failures"]
    means = summary.set_index(["mechanism", "ratio", "model"])["mean"]
    for (mechanism, model), line in wide.iterrows():
        assert line["0.2 mean"] == pytest.approx(means[(mechanism, 0.2, model)])
        assert line["0.5 mean"] == pytest.approx(means[(mechanism, 0.5, model)])
    assert wide.loc[("mcar", "b"), "mean rank"] == 1.5


def test_by_rejects_unknown_and_repeated_fields():
    with pytest.raises(ValueError, match="unknown field 'seed'; choose from protocol, dataset, mechanism, ratio"):
        lb.to_markdown(lb.summarise(grid()), by=["ratio", "seed"])
    with pytest.raises(ValueError, match="name each field once"):
        lb.to_csv(lb.summarise(grid()), by=["ratio", "ratio"])


def ranked() -> pd.DataFrame:
    """a, b, c on three datasets (one seed); c failed on iris, so only yeast and zoo have every model."""
    base = dict(protocol="vsae", mechanism="mcar", ratio=0.5, seed=0, wall_time_s=1.0, status="ok")
    scores = {"yeast": {"a": 0.1, "b": 0.2, "c": 0.3}, "zoo": {"a": 0.2, "b": 0.3, "c": 0.1}, "iris": {"a": 0.1, "b": 0.2}}
    records = [{**base, "dataset": d, "model": m, "metric.nrmse": v} for d, models in scores.items() for m, v in models.items()]
    return pd.DataFrame([*records, {**base, "dataset": "iris", "model": "c", "status": "failed", "metric.nrmse": np.nan}])


def test_overall_rank_averages_only_groups_where_every_model_has_a_score():
    overall = lb.overall_ranks(lb.summarise(ranked())).set_index("model")
    # yeast ranks a 1, b 2, c 3; zoo a 2, b 3, c 1; iris (a 1, b 2) is left out: c has no score there
    assert overall["mean_rank"].to_dict() == {"a": 1.5, "c": 2.0, "b": 2.5}
    assert (overall["groups"] == 2).all() and (overall["of"] == 3).all()
    assert overall["scored_in"].to_dict() == {"a": 3, "c": 2, "b": 3}
    assert overall.loc["c", "failures"] == 1
    table = table_rows(lb.to_markdown(lb.summarise(ranked())), "### overall, protocol `vsae`")
    assert table["model"] == ["mean rank", "groups", "scored in", "failures"]
    assert table["c"] == ["2", "2", "2 / 3", "1"] and list(table)[1:] == ["a", "c", "b"]


def test_a_model_that_failed_every_attempt_still_shows_its_failures():
    summary = lb.summarise(ranked())
    iris = summary[(summary["dataset"] == "iris") & (summary["model"] == "c")]
    assert len(iris) == 1 and iris["metric"].isna().all() and iris["n_seeds"].item() == 0
    text = lb.to_markdown(summary)
    table = table_rows(text, "### protocol `vsae`, mechanism `mcar`, missing ratio 0.5")
    assert table["model"] == ["iris (NRMSE)", "yeast (NRMSE)", "zoo (NRMSE)", "mean rank", "seeds", "failures"]
    assert table["c"][0] == "–" and table["c"][-2:] == ["0", "1"]
    assert "0 diverged, 1 failed, 0 timeout" in text


def test_models_trained_on_complete_data_are_marked_and_a_retired_model_is_not():
    base = dict(protocol="vsae", mechanism="mcar", ratio=0.5, seed=0, wall_time_s=1.0, status="ok", dataset="iris")
    frame = pd.DataFrame([{**base, "model": model, "metric.nrmse": score}
                          for model, score in (("cvae_data", 0.5), ("cvae_mask", 0.6), ("retired_model", 0.7))])
    summary = lb.summarise(frame).set_index("model")
    assert summary["complete_data"].to_dict() == {"cvae_data": True, "cvae_mask": False, "retired_model": False}
    marked = set(table_rows(lb.to_markdown(summary.reset_index()), "### overall, protocol `vsae`")) - {"model"}
    assert marked == {"cvae_data †", "cvae_mask", "retired_model"}


def test_failure_counts_from_trial_rows():
    counts = lb.failure_counts(rows()).set_index(["dataset", "model"])
    assert counts.loc[("zoo", "mice"), "failures"] == 1 and counts.loc[("zoo", "mice"), "status.failed"] == 1
    assert counts.loc[("yeast", "mean"), "failures"] == 0
    assert {"status.diverged", "status.failed", "status.timeout"} <= set(counts.columns)


def test_failure_counts_from_attempts_count_retries_of_trials_that_finished():
    attempt = dict(protocol="vaeac", dataset="yeast", mechanism="mcar", ratio=0.5, model="mean", seed=0, reason=None)
    attempts = pd.DataFrame([{**attempt, "config_hash": "k0", "attempt": 1, "status": "timeout"},
                             {**attempt, "config_hash": "k0", "attempt": 2, "status": "failed"},
                             {**attempt, "config_hash": "k0", "attempt": 3, "status": "ok"},
                             {**attempt, "config_hash": "k1", "attempt": 1, "status": "ok", "model": "mice"}])
    summary = lb.summarise(rows(), attempts=attempts).set_index(["dataset", "model", "metric"])
    assert summary.loc[("yeast", "mean", "nrmse"), ["status.timeout", "status.failed", "failures"]].tolist() == [1, 1, 2]
    assert summary.loc[("zoo", "mice", "pfc"), "failures"] == 0  # the attempts, not the rows, are counted
    assert summary.loc[("yeast", "mean", "nrmse"), "n_seeds"] == 3  # the retried trial's ok result still counts
    text = lb.to_markdown(summary.reset_index())
    assert table_rows(text, "missing ratio 0.5")["mean"][-1] == "2" and "0 diverged, 1 failed, 1 timeout" in text
    assert "failures" in lb.to_csv(summary.reset_index()).splitlines()[0]


@pytest.fixture
def grid_store(tmp_path) -> str:
    """:func:`grid` written to a store, as ``imputebench run`` would."""
    path = str(tmp_path / "results.sqlite")
    with ResultStore(path) as store:
        for row in grid().to_dict("records"):
            trial = Trial(row["model"], row["dataset"], row["mechanism"], row["ratio"], row["seed"], row["protocol"])
            store.write(ResultRow(trial, "ok", None, metrics={"nrmse": row["metric.nrmse"]}, wall_time_s=1.0))
    return path


def test_cli_leaderboard_by_pivots_and_rejects_unknown_fields(grid_store):
    runner = CliRunner()
    board = runner.invoke(app, ["leaderboard", "--store", grid_store, "--by", "mechanism,ratio"])
    assert board.exit_code == 0, board.output
    assert "| mar, 0.2 " in board.output and "**0.250 ± 0.071**" in board.output
    wide = runner.invoke(app, ["leaderboard", "--store", grid_store, "--by", "ratio", "--format", "csv"])
    assert wide.exit_code == 0 and wide.output.startswith("protocol,dataset,mechanism,metric,model,0.2 mean,0.2 std")
    wrong = runner.invoke(app, ["leaderboard", "--store", grid_store, "--by", "mechanism,seed"])
    assert wrong.exit_code == 2 and "--by unknown field 'seed'" in " ".join(wrong.output.split())
