"""Metrics against independent NumPy references; streaming, masking and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imputebench.metrics import (
    METRICS,
    NRMSE,
    PFC,
    MinMaxRMSE,
    ModalityMSE,
    minmax_rmse,
    modality_mse,
    nrmse,
    pfc,
)

SEEDS = [0, 1, 2, 3]


# --- independent NumPy references -------------------------------------------------------
def ref_nrmse(p: np.ndarray, t: np.ndarray, h: np.ndarray, normaliser: str = "std") -> float:
    values = []
    for j in range(t.shape[1]):
        rows = h[:, j]
        if not rows.any():
            continue
        rmse = np.sqrt(np.mean((p[rows, j] - t[rows, j]) ** 2))
        norm = np.std(t[:, j]) if normaliser == "std" else np.ptp(t[:, j])
        values.append(rmse / norm)
    return float(np.mean(values))


def ref_minmax_rmse(p: np.ndarray, t: np.ndarray, h: np.ndarray) -> float:
    lo, hi = t.min(axis=0), t.max(axis=0)
    ps, ts = (p - lo) / (hi - lo), (t - lo) / (hi - lo)
    return float(np.sqrt(np.sum(((ps - ts) ** 2)[h]) / h.sum()))


def ref_pfc(p: np.ndarray, t: np.ndarray, h: np.ndarray) -> float:
    return float(np.mean([np.mean(p[h[:, j], j] != t[h[:, j], j]) for j in range(t.shape[1]) if h[:, j].any()]))


def ref_modality_mse(p: np.ndarray, t: np.ndarray, h: np.ndarray, groups) -> np.ndarray:
    out = []
    for m, cols in enumerate(groups):
        rows = h[:, m]
        out.append(np.mean((p[np.ix_(rows, cols)] - t[np.ix_(rows, cols)]) ** 2) if rows.any() else np.nan)
    return np.array(out)


# --- data -------------------------------------------------------------------------------
def numeric_case(seed: int, n: int = 120, k: int = 5):
    rng = np.random.default_rng(seed)
    target = rng.normal(loc=rng.uniform(-5, 5, k), scale=rng.uniform(0.5, 3, k), size=(n, k))
    preds = target + rng.normal(scale=0.7, size=(n, k))
    held = rng.random((n, k)) < rng.uniform(0.1, 0.6)
    held[:, -1] = False  # a feature with nothing held out is left out of the average
    return torch.from_numpy(preds), torch.from_numpy(target), torch.from_numpy(held)


def categorical_case(seed: int, n: int = 150, k: int = 4):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 4, size=(n, k))
    preds = np.where(rng.random((n, k)) < 0.6, target, rng.integers(0, 4, size=(n, k)))
    held = rng.random((n, k)) < 0.4
    return torch.from_numpy(preds), torch.from_numpy(target), torch.from_numpy(held)


def np_(*tensors):
    return [t.numpy() for t in tensors]


# --- functional vs reference ------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("normaliser", ["std", "range"])
def test_nrmse_matches_reference(seed, normaliser):
    p, t, h = numeric_case(seed)
    expected = ref_nrmse(*np_(p, t, h), normaliser)
    assert float(nrmse(p, t, h, normaliser=normaliser)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_minmax_rmse_matches_reference(seed):
    p, t, h = numeric_case(seed)
    assert float(minmax_rmse(p, t, h)) == pytest.approx(ref_minmax_rmse(*np_(p, t, h)), rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_pfc_matches_reference(seed):
    p, t, h = categorical_case(seed)
    expected = ref_pfc(*np_(p, t, h))
    assert float(pfc(p, t, h)) == pytest.approx(expected, rel=1e-6)
    # float codes (as decoded by a model) give the same answer
    assert float(pfc(p.double() + 0.2, t.double(), h)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_modality_mse_matches_reference(seed):
    rng = np.random.default_rng(seed)
    groups = [[0, 1, 2, 3], [4, 5], [6, 7, 8]]
    t = rng.normal(size=(80, 9))
    p = t + rng.normal(size=(80, 9))
    h = rng.random((80, 3)) < 0.5
    got = modality_mse(torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(h), groups)
    assert got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), ref_modality_mse(p, t, h, groups), rtol=1e-6)


def test_modality_mse_none_held_for_one_modality():
    h = torch.tensor([[True, False], [True, False]])
    out = modality_mse(torch.ones(2, 4), torch.zeros(2, 4), h, [[0, 1], [2, 3]])
    assert out[0] == 1.0 and torch.isnan(out[1])
    with pytest.raises(ValueError, match="no modality is held out"):
        modality_mse(torch.ones(2, 4), torch.zeros(2, 4), torch.zeros(2, 2, dtype=torch.bool), [[0, 1], [2, 3]])


# --- streaming --------------------------------------------------------------------------
NUMERIC_CLASSES = [
    (lambda k: NRMSE(k), lambda p, t, h: nrmse(p, t, h)),
    (lambda k: NRMSE(k, normaliser="range"), lambda p, t, h: nrmse(p, t, h, normaliser="range")),
    (lambda k: MinMaxRMSE(k), minmax_rmse),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("make, functional", NUMERIC_CLASSES)
def test_numeric_batches_equal_one_shot(seed, make, functional):
    p, t, h = numeric_case(seed)
    metric = make(t.shape[1])
    for chunk in torch.tensor_split(torch.arange(len(t)), [17, 70]):  # 3 uneven chunks
        metric.update(p[chunk], t[chunk], h[chunk])
    assert float(metric.compute()) == pytest.approx(float(functional(p, t, h)), rel=1e-6)
    metric.reset()
    metric.update(p, t, h)
    assert float(metric.compute()) == pytest.approx(float(functional(p, t, h)), rel=1e-6)


@pytest.mark.parametrize("make, functional", NUMERIC_CLASSES)
def test_merge_state_as_in_ddp(make, functional):
    """Two "processes" each see half the rows; merging states equals the one-shot value."""
    p, t, h = numeric_case(5)
    first, second = make(t.shape[1]), make(t.shape[1])
    first.update(p[:50], t[:50], h[:50])
    second.update(p[50:], t[50:], h[50:])
    second.update(p[:0], t[:0], h[:0])  # an empty batch is harmless
    first.merge_state(second)
    assert float(first.compute()) == pytest.approx(float(functional(p, t, h)), rel=1e-6)


def test_nrmse_compute_after_list_states_are_synced():
    """After a DDP gather the 'cat' list states arrive as one tensor."""
    p, t, h = numeric_case(6)
    metric = NRMSE(t.shape[1])
    metric.update(p[:60], t[:60], h[:60])
    metric.update(p[60:], t[60:], h[60:])
    for name in ("part_count", "part_mean", "part_m2"):
        setattr(metric, name, torch.cat(getattr(metric, name)))
    assert float(metric.compute()) == pytest.approx(float(nrmse(p, t, h)), rel=1e-6)


def test_forward_returns_batch_value_and_accumulates():
    p, t, h = numeric_case(7)
    metric = NRMSE(t.shape[1])
    batch_value = metric(p[:60], t[:60], h[:60])
    assert float(batch_value) == pytest.approx(float(nrmse(p[:60], t[:60], h[:60])), rel=1e-6)
    metric(p[60:], t[60:], h[60:])
    assert float(metric.compute()) == pytest.approx(float(nrmse(p, t, h)), rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_pfc_batches(seed):
    p, t, h = categorical_case(seed)
    metric = PFC(t.shape[1])
    for chunk in torch.tensor_split(torch.arange(len(t)), 3):
        metric.update(p[chunk], t[chunk], h[chunk])
    assert float(metric.compute()) == pytest.approx(ref_pfc(*np_(p, t, h)), rel=1e-6)


def test_modality_mse_batches():
    rng = np.random.default_rng(0)
    groups = [[0, 1, 2], [3, 4]]
    t, p = torch.from_numpy(rng.normal(size=(90, 5))), torch.from_numpy(rng.normal(size=(90, 5)))
    h = torch.from_numpy(rng.random((90, 2)) < 0.5)
    metric = ModalityMSE(groups)
    for chunk in torch.tensor_split(torch.arange(90), 3):
        metric.update(p[chunk], t[chunk], h[chunk])
    np.testing.assert_allclose(metric.compute().numpy(), ref_modality_mse(*np_(p, t, h), groups), rtol=1e-6)


def test_std_is_numerically_safe():
    """Values around 1e4 with a tiny spread: naive sum / sum-of-squares would lose it."""
    rng = np.random.default_rng(0)
    t = 1e4 + rng.normal(scale=1e-3, size=(3000, 3))
    p = t + rng.normal(scale=1e-3, size=t.shape)
    h = rng.random(t.shape) < 0.3
    expected = ref_nrmse(p, t, h)
    pt, tt, ht = torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(h)
    assert float(nrmse(pt, tt, ht)) == pytest.approx(expected, rel=1e-5)
    metric = NRMSE(3)
    for chunk in torch.tensor_split(torch.arange(3000), 7):
        metric.update(pt[chunk], tt[chunk], ht[chunk])
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-5)


# --- only held-out entries count --------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_observed_entries_ignored(seed):
    p, t, h = numeric_case(seed)
    garbage = torch.where(h, p, torch.full_like(p, float("nan")))
    shifted = torch.where(h, p, p + 1e6)
    for fn in (nrmse, minmax_rmse, lambda *a: nrmse(*a, normaliser="range")):
        reference = float(fn(p, t, h))
        assert float(fn(garbage, t, h)) == reference
        assert float(fn(shifted, t, h)) == reference
    cp, ct, ch = categorical_case(seed)
    assert float(pfc(torch.where(ch, cp, cp + 1), ct, ch)) == float(pfc(cp, ct, ch))


def test_non_finite_target_outside_held_out_is_skipped():
    p, t, h = numeric_case(8)
    t_nan = t.clone()
    t_nan[0, 0] = float("nan")  # a value missing in the raw data, never scored
    h[0, 0] = False
    value = float(nrmse(p, t_nan, h))
    # the std of feature 0 is taken over its finite rows only
    pn, tn, hn = np_(p, t, h)
    stds = tn.std(axis=0)
    stds[0] = tn[1:, 0].std()
    rmses = [np.sqrt(np.mean((pn[hn[:, j], j] - tn[hn[:, j], j]) ** 2)) / stds[j] for j in range(4)]
    assert value == pytest.approx(np.mean(rmses), rel=1e-6)
    h[0, 0] = True
    with pytest.raises(ValueError, match="finite true value"):
        nrmse(p, t_nan, h)


# --- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("normaliser", ["std", "range"])
def test_constant_feature_raises(normaliser):
    p, t, h = numeric_case(9)
    t[:, 2] = 3.7
    h[5, 2] = True
    with pytest.raises(ValueError, match="constant feature 2: NRMSE would divide by zero"):
        nrmse(p, t, h, normaliser=normaliser)
    metric = NRMSE(t.shape[1], normaliser=normaliser)
    metric.update(p, t, h)
    with pytest.raises(ValueError, match="constant feature 2"):
        metric.compute()
    with pytest.raises(ValueError, match="constant feature 2"):
        minmax_rmse(p, t, h)
    h[:, 2] = False  # a constant feature that is not scored does not matter
    assert np.isfinite(float(nrmse(p, t, h, normaliser=normaliser)))


def test_nothing_held_out_raises():
    p, t, h = numeric_case(10)
    none = torch.zeros_like(h)
    for fn in (nrmse, minmax_rmse):
        with pytest.raises(ValueError, match="no entry is held out"):
            fn(p, t, none)
    cp, ct, ch = categorical_case(10)
    with pytest.raises(ValueError, match="no entry is held out"):
        pfc(cp, ct, torch.zeros_like(ch))


def test_bad_inputs():
    p, t, h = numeric_case(11)
    with pytest.raises(TypeError, match="bool"):
        nrmse(p, t, h.float())
    with pytest.raises(ValueError, match="shape"):
        nrmse(p[:, :2], t, h)
    with pytest.raises(ValueError, match="normaliser"):
        nrmse(p, t, h, normaliser="iqr")
    with pytest.raises(ValueError, match="expected 3 features"):
        NRMSE(3).update(p, t, h)


def test_metric_registry():
    assert {"nrmse", "nrmse_range", "minmax_rmse", "pfc"} <= set(METRICS)
    p, t, h = numeric_case(12)
    for name, (factory, kind) in METRICS.items():
        if kind != "numeric":
            continue
        metric = factory(t.shape[1])
        assert metric.higher_is_better is False and metric.is_differentiable is False
        metric.update(p, t, h)
        assert np.isfinite(float(metric.compute())), name
    assert float(METRICS["nrmse_range"].factory(t.shape[1])(p, t, h)) == pytest.approx(
        float(nrmse(p, t, h, normaliser="range")), rel=1e-6
    )
    assert METRICS["pfc"].applies_to == "categorical"


def test_reference_rows_set_the_normaliser():
    target = torch.tensor([[1.0, 5.0], [1.0, 6.0]])  # first feature constant in the scored rows
    preds = target + 1.0
    held_out = torch.tensor([[True, True], [False, False]])
    reference = torch.tensor([[0.0, 4.0], [2.0, 8.0]])  # std 1 and 2, range 2 and 4
    assert float(nrmse(preds, target, held_out, reference=reference)) == pytest.approx((1 / 1 + 1 / 2) / 2)
    assert float(nrmse(preds, target, held_out, "range", reference=reference)) == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert float(minmax_rmse(preds, target, held_out, reference=reference)) == pytest.approx(((0.25 + 0.0625) / 2) ** 0.5)
    with pytest.raises(ValueError, match="constant feature 0"):
        nrmse(preds, target, held_out)
    with pytest.raises(ValueError, match="columns"):
        nrmse(preds, target, held_out, reference=reference[:, :1])


def test_metric_classes_with_a_reference_stream_the_functional_scores():
    """The runner scores with the classes (evaluate.score): streamed over chunks, normalised by a
    reference table's statistics, they give the functional cores' numbers."""
    from imputebench.metrics import METRICS, minmax_rmse, nrmse

    torch.manual_seed(0)
    target, reference = torch.randn(50, 3), torch.randn(200, 3) * 2
    preds, held_out = target + torch.randn(50, 3), torch.rand(50, 3) < 0.4
    for name, expected in (
        ("nrmse", nrmse(preds, target, held_out, reference=reference)),
        ("nrmse_range", nrmse(preds, target, held_out, normaliser="range", reference=reference)),
        ("minmax_rmse", minmax_rmse(preds, target, held_out, reference=reference)),
    ):
        metric = METRICS[name].factory(3, reference=reference)
        for rows in torch.arange(50).split(17):
            metric.update(preds[rows], target[rows], held_out[rows])
        assert torch.allclose(metric.compute(), expected), name
        assert not torch.allclose(expected, METRICS[name].factory(3)(preds, target, held_out))  # the reference matters
