"""Missingness mechanisms: ratios, MAR/MNAR structure, determinism, hashing, modalities."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from imputebench.masks import (
    MECHANISMS,
    ZERO_RATIO_MECHANISMS,
    expand_modality_mask,
    get_mechanism,
    make_mask,
    mar,
    mask_hash,
    mcar,
    mnar_quantile,
    mnar_selfmask,
    modality_mask,
)
from imputebench.models.registry import UnknownNameError
from imputebench.schema import Feature, FeatureSchema

TOL = 0.02


def correlated_gaussian(n: int = 2000, d: int = 10, rho: float = 0.5, seed: int = 0) -> np.ndarray:
    """``(n, d)`` equicorrelated standard Gaussians."""
    cov = np.full((d, d), rho) + (1 - rho) * np.eye(d)
    return np.random.default_rng(seed).standard_normal((n, d)) @ np.linalg.cholesky(cov).T


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return correlated_gaussian()


def missing_ratio(mask: np.ndarray) -> float:
    return float(1.0 - mask.mean())


# --- ratios -----------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("fn", [mcar, mnar_selfmask, mnar_quantile])
def test_realised_ratio(x, fn, ratio):
    for seed in range(3):
        mask = fn(x, ratio, np.random.default_rng(seed))
        assert mask.dtype == bool and mask.shape == x.shape
        assert abs(missing_ratio(mask) - ratio) < TOL


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.6])
def test_mar_realised_ratio(x, ratio):
    for seed in range(3):
        mask = mar(x, ratio, np.random.default_rng(seed))
        assert abs(missing_ratio(mask) - ratio) < TOL


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_quantile_ratio_with_ties(ratio):
    rng = np.random.default_rng(7)
    x = np.column_stack([
        rng.integers(0, 3, size=5000).astype(float),  # 3 category codes: massive ties
        np.zeros(5000),  # a constant column: all values tied
        rng.standard_normal(5000),
    ])
    mask = mnar_quantile(x, ratio, np.random.default_rng(1))
    for j in range(x.shape[1]):
        assert abs(missing_ratio(mask[:, j]) - ratio) < TOL, j


@pytest.mark.parametrize("ratio", [0.3, 0.5])
def test_quantile_censors_one_tail(x, ratio):
    mask = mnar_quantile(x, ratio, np.random.default_rng(3), leak=0.0)
    for j in range(x.shape[1]):
        missing, seen = x[~mask[:, j], j], x[mask[:, j], j]
        # pure censoring: the two sets are separated by the quantile
        assert missing.min() >= seen.max() or missing.max() <= seen.min()


def test_mar_infeasible_ratio(x):
    with pytest.raises(ValueError, match="too high for MAR"):
        mar(x, 0.7, np.random.default_rng(0))  # 7 maskable features would need rate 1.0
    with pytest.raises(ValueError, match="at least 2 features"):
        mar(x[:, :1], 0.2, np.random.default_rng(0))


# --- MAR / MNAR structure ---------------------------------------------------------------
def partial_correlations(x: np.ndarray, mask: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """For each feature not in ``obs``: corr of its missingness indicator with the noise
    ``e`` of ``x_k = a . x_obs + e`` after regressing both on ``[1, x_obs]``."""
    design = np.column_stack([np.ones(len(x)), x[:, obs]])  # (n, 1 + n_obs)
    out = []
    for k in np.setdiff1d(np.arange(x.shape[1]), obs):
        e = x[:, k] - design @ np.linalg.lstsq(design, x[:, k], rcond=None)[0]
        ind = (~mask[:, k]).astype(float)
        res = ind - design @ np.linalg.lstsq(design, ind, rcond=None)[0]
        out.append(np.corrcoef(res, e)[0, 1])
    return np.abs(np.array(out))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mar_depends_only_on_always_observed(seed):
    x = correlated_gaussian(n=5000, seed=10 + seed)
    mask = mar(x, 0.3, np.random.default_rng(seed))
    obs = np.flatnonzero(mask.all(axis=0))
    assert len(obs) == math.ceil(0.3 * x.shape[1])
    assert mask[:, obs].all()
    # given x_obs, missingness carries no information about the masked values' own noise
    assert partial_correlations(x, mask, obs).max() < 0.07  # ~5 sigma at n = 5000
    # ... while it does depend on x_obs (it is not MCAR)
    design = np.column_stack([np.ones(len(x)), x[:, obs]])
    r2 = []
    for k in np.setdiff1d(np.arange(x.shape[1]), obs):
        ind = (~mask[:, k]).astype(float)
        res = ind - design @ np.linalg.lstsq(design, ind, rcond=None)[0]
        r2.append(1 - res.var() / ind.var())
    assert np.mean(r2) > 0.05


@pytest.mark.parametrize("fn", [mnar_selfmask, mnar_quantile])
def test_mnar_fails_the_mar_test(fn):
    """The same test detects dependence on the masked values for the MNAR mechanisms."""
    x = correlated_gaussian(n=5000, seed=20)
    obs = np.array([0, 4, 7])
    mask = fn(x, 0.3, np.random.default_rng(0))
    assert partial_correlations(x, mask, obs).min() > 0.2


def test_selfmask_depends_on_own_value(x):
    mask = mnar_selfmask(x, 0.4, np.random.default_rng(0), random_sign=False)
    for j in range(x.shape[1]):  # positive weights: large values go missing
        assert x[~mask[:, j], j].mean() - x[mask[:, j], j].mean() > 0.5
    signed = mnar_selfmask(x, 0.4, np.random.default_rng(1))
    for j in range(x.shape[1]):  # random signs: the means still differ substantially
        assert abs(x[~signed[:, j], j].mean() - x[signed[:, j], j].mean()) > 0.5


# --- determinism and hashing ------------------------------------------------------------
def test_make_mask_reproducible(x):
    for mechanism in ("mcar", "mar", "mnar", "mnar_selfmask", "mnar_quantile"):
        a, b = make_mask(x, mechanism, 0.3, seed=5), make_mask(x, mechanism, 0.3, seed=5)
        assert np.array_equal(a, b) and mask_hash(a) == mask_hash(b)
        assert not np.array_equal(a, make_mask(x, mechanism, 0.3, seed=6))


def test_streams_differ_by_mechanism_and_ratio(x):
    noise = np.zeros_like(x)  # on constant data every mechanism is a pure function of the stream
    base = make_mask(noise, "mcar", 0.3, seed=0)
    assert not np.array_equal(base, make_mask(noise, "mcar", 0.30000001, seed=0))
    assert not np.array_equal(base, make_mask(noise, "mnar_selfmask", 0.3, seed=0))
    assert np.array_equal(make_mask(x, "mnar", 0.3, seed=0), make_mask(x, "mnar_selfmask", 0.3, seed=0))
    assert np.array_equal(make_mask(x, "mcar", np.float64(0.3), seed=0), make_mask(x, "mcar", 0.3, seed=0))


def test_mask_hash():
    mask = make_mask(correlated_gaussian(n=100, d=7), "mcar", 0.5, seed=0)
    digest = mask_hash(mask)
    assert len(digest) == 64 and digest == mask_hash(mask.copy())
    flipped = mask.copy()
    flipped[37, 3] = ~flipped[37, 3]
    assert mask_hash(flipped) != digest
    assert mask_hash(mask.reshape(7, 100)) != digest  # same bits, other shape
    assert mask_hash(np.asfortranarray(mask)) == digest
    # golden value: platform-independent (shape header + packed bits)
    assert mask_hash(np.eye(3, dtype=bool)) == hashlib.sha256(b"bool:3x3;" + bytes([0b10001000, 0b10000000])).hexdigest()


# --- argument checks --------------------------------------------------------------------
BAD_RATIOS = [0, 1, 0.0, 1.0, -0.1, 1.5, float("nan"), True, "0.3", None]


@pytest.mark.parametrize(("mechanism", "ratio"), [
    (m, r) for m in sorted(MECHANISMS) for r in BAD_RATIOS
    if not (m in ZERO_RATIO_MECHANISMS and type(r) in (int, float) and r == 0)  # 0 pairs every row: test_all_paired.py
])
def test_bad_ratio(x, mechanism, ratio):
    with pytest.raises(ValueError, match="ratio"):
        get_mechanism(mechanism)(x, ratio, np.random.default_rng(0))
    with pytest.raises(ValueError, match="ratio"):
        make_mask(x, mechanism, ratio, seed=0)


def test_unknown_mechanism(x):
    with pytest.raises(UnknownNameError, match="unknown mechanism 'mnr'; known: mar, mcar, mnar"):
        get_mechanism("mnr")
    with pytest.raises(UnknownNameError):
        make_mask(x, "MCAR", 0.3, seed=0)


def test_nan_input_rejected():
    x = np.ones((5, 3))
    x[1, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        mcar(x, 0.3, np.random.default_rng(0))


# --- modality level ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_schema() -> FeatureSchema:
    features = tuple(Feature(f"p{j}") for j in range(12))
    return FeatureSchema(features, modalities=(("left", tuple(range(6))), ("right", tuple(range(6, 12)))))


def test_expand_modality_mask(image_schema):
    mask_nm = np.array([[True, False], [False, True]])
    expanded = expand_modality_mask(mask_nm, image_schema)
    assert expanded.shape == (2, 12)
    assert expanded[0, :6].all() and not expanded[0, 6:].any()
    assert not expanded[1, :6].any() and expanded[1, 6:].all()


@pytest.mark.parametrize("mechanism", ["mcar", "mnar_selfmask", "mnar_quantile", "mar"])
def test_modality_mask_whole_modalities(image_schema, mechanism):
    x = correlated_gaussian(n=5000, d=12, seed=3)
    ratio = 0.2 if mechanism == "mar" else 0.4  # MAR with M=2: one modality always observed
    mask = modality_mask(x, image_schema, mechanism, ratio, np.random.default_rng(0))
    for _, members in image_schema.modality_groups:
        block = mask[:, list(members)]
        assert (block.all(axis=1) | ~block.any(axis=1)).all()  # all-or-nothing per modality
    assert abs(missing_ratio(mask[:, [0, 6]]) - ratio) < TOL


def test_modality_mask_keep_one(image_schema):
    x = correlated_gaussian(n=5000, d=12, seed=4)
    mask = modality_mask(x, image_schema, "mcar", 0.5, np.random.default_rng(0), keep_one=True)
    assert mask.any(axis=1).all()
    # shifted down by r**M / M = 0.125
    assert abs(missing_ratio(mask) - (0.5 - 0.125)) < TOL


def test_make_mask_per_modality(image_schema):
    x = correlated_gaussian(n=300, d=12)
    mask = make_mask(x, "mcar", 0.3, seed=1, schema=image_schema, per_modality=True)
    assert np.array_equal(mask[:, :6], np.repeat(mask[:, :1], 6, axis=1))
    with pytest.raises(ValueError, match="schema"):
        make_mask(x, "mcar", 0.3, seed=1, per_modality=True)


def test_singleton_modalities_default():
    schema = FeatureSchema(tuple(Feature(f"f{j}") for j in range(4)))
    x = correlated_gaussian(n=3000, d=4)
    mask = modality_mask(x, schema, "mcar", 0.3, np.random.default_rng(0))
    assert mask.shape == (3000, 4) and abs(missing_ratio(mask) - 0.3) < TOL


# --- weak supervision (MVAE section 5.1) ------------------------------------------------
@pytest.mark.parametrize("ratio", [0.001, 0.5, 0.99])
def test_unpaired_rows_keep_one_modality_in_turn_and_the_rest_keep_both(image_schema, ratio):
    x = correlated_gaussian(n=4000, d=12, seed=5)
    mask = make_mask(x, "unpaired", ratio, seed=2, schema=image_schema, per_modality=True)
    left, right = mask[:, 0], mask[:, 6]
    assert np.array_equal(mask[:, :6], np.repeat(mask[:, :1], 6, axis=1))  # whole modalities
    assert (left | right).all()  # no row loses both
    unpaired = left != right
    assert unpaired.sum() == round(ratio * 4000)  # exactly the share asked for
    assert abs(int((left & ~right).sum()) - int((right & ~left).sum())) <= 1  # image-only vs label-only
    again = make_mask(x, "unpaired", ratio, seed=2, schema=image_schema, per_modality=True)
    other = make_mask(x, "unpaired", ratio, seed=3, schema=image_schema, per_modality=True)
    assert np.array_equal(mask, again) and not np.array_equal(mask, other)
