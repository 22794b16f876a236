import re

import numpy as np
import pandas as pd
import pytest

from imputebench import leaderboard as lb


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
