"""Classical baselines (mean/mode, MICE, MissForest) and the missingpy compatibility layer."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

from imputebench.data.table import MaskedTable
from imputebench.models.classical import MiceImputer, MissForestImputer
from imputebench.models.missingpy_compat import load_missforest
from imputebench.models.registry import get_model
from imputebench.schema import Feature, FeatureSchema

MODELS = ("mean", "mice", "missforest")
#: Small forests keep the tests fast; the quality margin does not need 100 trees.
FAST = {"mean": {}, "mice": {}, "missforest": {"n_estimators": 25, "n_jobs": 1}}


# --- synthetic tables ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    table: MaskedTable
    truth: np.ndarray  # (n, d) complete feature values (standardised numerics, codes)


def correlated_values(n: int, rng: np.random.Generator, n_numeric: int = 4, categorical: bool = True) -> np.ndarray:
    """Numerics driven by two latent factors; categoricals determined (noisily) by the numerics."""
    latent = rng.normal(size=(n, 2))
    numeric = latent @ rng.normal(size=(2, n_numeric)) + 0.3 * rng.normal(size=(n, n_numeric))
    if not categorical:
        return numeric
    score = numeric[:, 0] + 0.2 * rng.normal(size=n)
    three = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))  # 3 categories
    two = (numeric[:, 1] + numeric[:, 2] + 0.3 * rng.normal(size=n) > 0).astype(float)
    return np.column_stack([numeric, three, two])


def mixed_schema(n_numeric: int = 4, categorical: bool = True) -> FeatureSchema:
    features = [Feature(f"x{j}") for j in range(n_numeric)]
    if categorical:
        features += [Feature("c3", "categorical", ("a", "b", "c")), Feature("c2", "categorical", ("no", "yes"))]
    return FeatureSchema(tuple(features))


def masked_table(values: np.ndarray, observed: np.ndarray, schema: FeatureSchema) -> MaskedTable:
    """Feature values + feature-level mask -> encoded MaskedTable with hidden entries 0."""
    shown = torch.as_tensor(np.where(observed, values, np.nan), dtype=torch.float32)
    mask = schema.expand(torch.as_tensor(observed))
    x = torch.where(mask, schema.one_hot(shown), torch.zeros(()))
    return MaskedTable(x, mask, schema)


def make_splits(
    n_train: int, n_test: int, seed: int = 0, rate: float = 0.2, categorical: bool = True
) -> tuple[Split, Split, FeatureSchema]:
    """Train/test splits with MCAR masks, numerics standardised with observed training statistics."""
    rng = np.random.default_rng(seed)
    schema = mixed_schema(categorical=categorical)
    values = correlated_values(n_train + n_test, rng, categorical=categorical)
    observed = rng.random(values.shape) >= rate
    numeric = list(schema.numeric_indices)
    train_numeric = np.where(observed[:n_train, numeric], values[:n_train, numeric], np.nan)
    values[:, numeric] = (values[:, numeric] - np.nanmean(train_numeric, 0)) / np.nanstd(train_numeric, 0)
    splits = [
        Split(masked_table(values[rows], observed[rows], schema), values[rows])
        for rows in (slice(0, n_train), slice(n_train, None))
    ]
    return splits[0], splits[1], schema


def with_junk(table: MaskedTable, seed: int = 1) -> MaskedTable:
    """The same table with its hidden entries (0 by contract) replaced by random junk."""
    junk = 100 * torch.randn(table.x.shape, generator=torch.Generator().manual_seed(seed))
    return dataclasses.replace(table, x=torch.where(table.observed, table.x, junk))


def build(name: str, seed: int = 0, **options):
    return get_model(name)(seed=seed, **{**FAST[name], **options})


def hidden_errors(imputed: torch.Tensor, split: Split) -> tuple[float, float]:
    """(numeric RMSE, categorical error rate) over the hidden entries of ``split``."""
    table = split.table
    values = table.schema.collapse(imputed).double().numpy()
    hidden = ~table.observed_features.numpy()
    numeric, categorical = list(table.schema.numeric_indices), list(table.schema.categorical_indices)
    diff = (values - split.truth)[:, numeric][hidden[:, numeric]]
    wrong = (values != split.truth)[:, categorical][hidden[:, categorical]]
    return float(np.sqrt(np.mean(diff**2))), float(wrong.mean())


@pytest.fixture(scope="module")
def small() -> tuple[Split, Split, FeatureSchema]:
    return make_splits(160, 80, seed=3)


@pytest.fixture(scope="module")
def medium() -> tuple[Split, Split, FeatureSchema]:
    return make_splits(400, 200, seed=5)


# --- the Imputer contract -------------------------------------------------------------------------------


def assert_one_hot(encoded: torch.Tensor, schema: FeatureSchema) -> None:
    for j in schema.categorical_indices:
        block = encoded[:, schema.slices[j]]
        assert bool(((block == 0) | (block == 1)).all()), f"feature {schema.names[j]}: not 0/1"
        assert bool((block.sum(dim=1) == 1).all()), f"feature {schema.names[j]}: not one-hot"


@pytest.mark.parametrize("name", MODELS)
def test_contract(name: str, small) -> None:
    train, test, schema = small
    out = build(name).fit(train.table).impute(test.table)

    assert out.shape == test.table.x.shape and out.dtype == test.table.x.dtype
    assert out.device == test.table.x.device
    assert torch.equal(out[test.table.observed], test.table.x[test.table.observed])
    assert bool(torch.isfinite(out).all())
    assert_one_hot(out, schema)
    assert json.loads(json.dumps(build(name).config())) == build(name).config()

    again = build(name).fit(train.table).impute(test.table)
    assert torch.equal(out, again), "not deterministic under the same seed"

    leaky = build(name).fit(with_junk(train.table, 1)).impute(with_junk(test.table, 2))
    assert torch.equal(out, leaky), "hidden entries of x influenced the output"

    double = MaskedTable(test.table.x.double(), test.table.observed, schema)
    out64 = build(name).fit(train.table).impute(double)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_impute_training_split(name: str, small) -> None:
    """The training split itself, with junk in its hidden entries, imputes like the clean one."""
    train, _, schema = small
    model = build(name).fit(train.table)
    out = model.impute(train.table)
    assert torch.equal(out[train.table.observed], train.table.x[train.table.observed])
    assert_one_hot(out, schema)
    assert torch.equal(out, model.impute(with_junk(train.table)))


def test_missforest_does_not_stack_the_training_split_twice(small, monkeypatch) -> None:
    train, test, _ = small
    model = build("missforest").fit(train.table)
    sizes: list[int] = []
    run = model._run
    monkeypatch.setattr(model, "_run", lambda values: sizes.append(len(values)) or run(values))
    model.impute(train.table)
    model.impute(test.table)
    assert sizes == [train.table.n_rows, train.table.n_rows + test.table.n_rows]


# --- quality -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def medium_errors(medium) -> dict[str, tuple[float, float]]:
    train, test, _ = medium
    return {name: hidden_errors(build(name).fit(train.table).impute(test.table), test) for name in MODELS}


@pytest.mark.parametrize("name", ["mice", "missforest"])
def test_beats_mean_imputation(name: str, medium_errors) -> None:
    rmse, pfc = medium_errors[name]
    mean_rmse, mean_pfc = medium_errors["mean"]
    assert rmse < 0.6 * mean_rmse, medium_errors
    assert pfc < 0.6 * mean_pfc, medium_errors


def nrmse(imputed: np.ndarray, truth: np.ndarray, hidden: np.ndarray) -> float:
    """VAEAC A.2: per feature RMSE over hidden entries / feature std, averaged over features."""
    per_feature = [
        np.sqrt(np.mean((imputed[hidden[:, j], j] - truth[hidden[:, j], j]) ** 2)) / truth[:, j].std()
        for j in range(truth.shape[1])
    ]
    return float(np.mean(per_feature))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # sklearn's: 10 rounds, no early stop
def test_mice_matches_sklearn_iterative_imputer_on_numeric_data() -> None:
    """On an all-numeric table our MICE is scikit-learn's IterativeImputer (fancyimpute's MICE)."""
    train, test, _ = make_splits(500, 250, seed=7, rate=0.3, categorical=False)
    ours = MiceImputer(seed=0, sample_posterior=False, n_imputations=1).fit(train.table).impute(test.table).double().numpy()
    train_values, test_values = (s.table.feature_values().double().numpy() for s in (train, test))
    theirs = IterativeImputer(max_iter=10, random_state=0).fit(train_values).transform(test_values)

    hidden = np.isnan(test_values)
    ours_score, theirs_score = nrmse(ours, test.truth, hidden), nrmse(theirs, test.truth, hidden)
    assert abs(ours_score - theirs_score) <= 0.02 * theirs_score, (ours_score, theirs_score)
    # Same algorithm, same fitted sequence: the imputations agree up to float32 output rounding.
    np.testing.assert_allclose(ours[hidden], theirs[hidden], atol=1e-4)


# --- MICE options ----------------------------------------------------------------------------------------


def test_mice_posterior_draws(small) -> None:
    train, test, schema = small
    pooled = MiceImputer(seed=0, sample_posterior=True, n_imputations=3).fit(train.table).impute(test.table)
    again = MiceImputer(seed=0, sample_posterior=True, n_imputations=3).fit(train.table).impute(test.table)
    other = MiceImputer(seed=1, sample_posterior=True, n_imputations=3).fit(train.table).impute(test.table)
    point = MiceImputer(seed=0, sample_posterior=False, n_imputations=1).fit(train.table).impute(test.table)
    assert torch.equal(pooled, again)
    assert not torch.equal(pooled, other) and not torch.equal(pooled, point)
    assert torch.equal(pooled[test.table.observed], test.table.x[test.table.observed])
    assert_one_hot(pooled, schema)
    with pytest.raises(ValueError, match="sample_posterior"):
        MiceImputer(n_imputations=3, sample_posterior=False)


# --- the missingpy compatibility layer -----------------------------------------------------------------------


def test_missingpy_compat_layer() -> None:
    forest = load_missforest()
    assert load_missforest() is forest  # idempotent
    import missingpy  # works once the layer has run

    assert missingpy.MissForest is forest
    assert "sklearn.neighbors.base" not in sys.modules  # the temporary alias is gone

    # missingpy's own docstring example, with its defaults (criterion "mse", max_features "auto").
    nan = float("nan")
    example = forest(random_state=1337).fit_transform([[1, 2, nan], [3, 4, 3], [nan, 6, 5], [8, 8, 7]])
    np.testing.assert_allclose(example[[0, 2], [2, 0]], [3.92, 2.71], atol=0.005)

    rng = np.random.default_rng(0)
    values = rng.normal(size=(60, 4))
    values[:, 3] = values[:, 0] > 0
    hidden = rng.random(values.shape) < 0.2
    completed = forest(n_estimators=10, n_jobs=1, random_state=0).fit_transform(
        np.where(hidden, np.nan, values), cat_vars=[3]
    )
    assert np.isfinite(completed).all() and np.array_equal(completed[~hidden], values[~hidden])
    assert set(np.unique(completed[:, 3])) <= {0.0, 1.0}


# --- edge cases ----------------------------------------------------------------------------------------------------


def single_category(split: Split, feature: int, code: float) -> MaskedTable:
    """``split`` with every value of ``feature`` set to ``code`` (same mask)."""
    values = split.truth.copy()
    values[:, feature] = code
    return masked_table(values, split.table.observed_features.numpy(), split.table.schema)


@pytest.mark.parametrize("name", MODELS)
def test_single_observed_category(name: str, small) -> None:
    """A categorical feature observed in one category only (MissForest also learns from the
    new split's observed entries, so they hold the same single category)."""
    train, test, schema = small
    c3 = schema.names.index("c3")
    new = single_category(test, c3, 1.0)
    out = build(name).fit(single_category(train, c3, 1.0)).impute(new)
    hidden = ~new.observed_features[:, c3]
    assert hidden.any()
    assert bool((schema.collapse(out)[hidden, c3] == 1).all())
    assert_one_hot(out, schema)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("feature", ["x2", "c2"])
def test_unobserved_training_column_is_rejected(name: str, feature: str, small) -> None:
    train, _, schema = small
    observed = train.table.observed_features.numpy().copy()
    observed[:, schema.names.index(feature)] = False
    with pytest.raises(ValueError, match=repr(feature)):
        build(name).fit(masked_table(train.truth, observed, schema))


def test_impute_before_fit_and_schema_mismatch(small) -> None:
    train, _, _ = small
    numeric_only, _, _ = make_splits(50, 10, categorical=False)
    for name in MODELS:
        with pytest.raises(RuntimeError, match="fit"):
            build(name).impute(train.table)
        with pytest.raises(ValueError, match="schema"):
            build(name).fit(train.table).impute(numeric_only.table)


def test_missforest_config_defaults() -> None:
    assert MissForestImputer().config() == {
        "max_iter": 10,
        "n_estimators": 100,
        "max_features": [1.0, "sqrt"],
        "criterion": ["squared_error", "gini"],
    }
