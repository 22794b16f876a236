"""Post-imputation prediction (VAEAC Table 2): a linear or logistic regression on the imputed rows."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from helpers import correlated_dataset
from imputebench import leaderboard as lb
from imputebench.cli import app
from imputebench.data.dataset import Dataset
from imputebench.downstream import downstream_score, task_of
from imputebench.runner.trials import Trial
from imputebench.schema import Feature, FeatureSchema

runner = CliRunner()


def linear_table(n: int = 600, classes: bool = False, seed: int = 0) -> Dataset:
    """Two real features; the target is their sum plus a little noise (or its sign, as class labels)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, 2))  # (n, 2)
    response = values.sum(1) + 0.1 * rng.normal(size=n)  # (n,)
    target = np.where(response > 0, "pos", "neg") if classes else response
    return Dataset("linear", values, FeatureSchema((Feature("u"), Feature("v"))), target=target)


def score_with(dataset: Dataset, fit: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Score imputations given in feature units (the two numeric features encode as themselves here)."""
    n_fit = len(fit)
    return downstream_score(dataset, np.arange(n_fit), torch.from_numpy(fit), np.arange(n_fit, n_fit + len(test)),
                            torch.from_numpy(test))


def test_the_true_values_predict_well_and_a_blind_imputation_does_not():
    data = linear_table()
    truth = data.values
    blind = np.zeros_like(truth)  # every entry imputed by the mean (0): nothing left to predict from
    good = score_with(data, truth[:450], truth[450:])
    bad = score_with(data, truth[:450], blind[450:])
    assert set(good) == {"downstream_r2"}
    assert good["downstream_r2"] > 0.98  # noise is 0.1 of a response of std 1.4
    assert bad["downstream_r2"] < 0.01
    half = truth[450:].copy()
    half[:, 1] = 0.0  # one feature of two lost: about half the variance explained
    assert 0.3 < score_with(data, truth[:450], half)["downstream_r2"] < 0.7


def test_class_labels_are_scored_by_accuracy():
    data = linear_table(classes=True)
    scores = score_with(data, data.values[:450], data.values[450:])
    assert set(scores) == {"downstream_accuracy"} and scores["downstream_accuracy"] > 0.95
    flipped = score_with(data, data.values[:450], -data.values[450:])  # every test object on the wrong side
    assert flipped["downstream_accuracy"] < 0.05


def test_a_test_class_unseen_in_training_counts_as_an_error():
    data = linear_table(classes=True)
    target = data.target.copy()
    sure = 450 + np.flatnonzero(np.abs(data.values[450:].sum(1)) > 1.0)[:10]  # far from the boundary: right before
    target[sure] = "never seen"
    changed = Dataset("linear", data.values, data.schema, target=target)
    before = score_with(data, data.values[:450], data.values[450:])["downstream_accuracy"]
    after = score_with(changed, data.values[:450], data.values[450:])["downstream_accuracy"]
    assert after == pytest.approx(before - 10 / 150)


def test_a_table_without_target_or_with_images_is_refused_by_name():
    with pytest.raises(ValueError, match="'toy' has no prediction target"):
        task_of(correlated_dataset())
    one_class = Dataset("same", np.zeros((20, 2)) + np.arange(20)[:, None], FeatureSchema((Feature("u"), Feature("v"))),
                        target=np.array(["a"] * 20))
    with pytest.raises(ValueError, match="one class"):
        score_with(one_class, one_class.values[:15], one_class.values[15:])


def test_asking_for_prediction_makes_another_trial_and_leaves_the_others_keys_alone():
    plain = Trial("mean", "iris", "mcar", 0.5, 0, "vaeac")
    asked = Trial("mean", "iris", "mcar", 0.5, 0, "vaeac", evaluation=("downstream",))
    assert "evaluation" not in plain.identity  # keys stored before evaluations existed stay valid
    assert asked.identity["evaluation"] == ["downstream"] and asked.key != plain.key and asked.setting != plain.setting


def test_the_leaderboard_bolds_and_ranks_the_highest_score_first():
    base = dict(protocol="vaeac", dataset="iris", mechanism="mcar", ratio=0.5, status="ok", wall_time_s=1.0)
    frame = pd.DataFrame([{**base, "model": model, "seed": seed, "metric.downstream_accuracy": accuracy + 0.01 * seed}
                          for model, accuracy in (("mean", 0.6), ("mice", 0.9)) for seed in range(3)])
    summary = lb.summarise(frame).set_index(["model", "metric"])
    assert summary.loc[("mice", "downstream_accuracy"), "rank"] == 1
    assert summary.loc[("mean", "downstream_accuracy"), "rank"] == 2
    text = lb.to_markdown(lb.summarise(frame))
    assert "**0.910 ± 0.010**" in text and "higher" in text


def test_run_evaluate_downstream_stores_the_score_and_refuses_a_table_without_target(tmp_path):
    store = tmp_path / "s.sqlite"
    refused = runner.invoke(app, ["run", "--models", "mean", "--datasets", "digits_pairs", "--evaluate", "downstream",
                                  "--store", str(store)])
    assert refused.exit_code == 2 and "'digits_pairs' has no prediction target" in refused.output
    assert not store.exists()
    unknown = runner.invoke(app, ["run", "--models", "mean", "--datasets", "iris", "--evaluate", "downstrem",
                                  "--store", str(store)])
    assert unknown.exit_code == 2 and "unknown evaluation 'downstrem'" in unknown.output and not store.exists()
    ran = runner.invoke(app, ["run", "--models", "mean", "--datasets", "iris", "--evaluate", "downstream", "--protocol",
                              "vaeac", "--seeds", "2", "--store", str(store)])
    assert ran.exit_code == 0, ran.output
    with sqlite3.connect(store) as db:
        stored = [row[0] for row in db.execute("SELECT metrics FROM trials WHERE status = 'ok'")]
    assert len(stored) == 2 and all('"downstream_accuracy"' in metrics for metrics in stored)
