"""Missingness mechanisms: boolean masks with **True = observed**.

Every mechanism has the signature ``mechanism(x, ratio, rng, **options) -> (n, d) bool``:

* ``x`` is a float array ``(n, d)`` in *feature space* without NaN. The caller passes
  numeric features standardised and categorical features as their integer codes cast
  to float, so for a categorical feature the "value" the MAR/MNAR mechanisms see is
  its code (standardised inside the mechanism where a mechanism standardises).
* ``ratio`` r is the expected fraction of missing entries over the whole array,
  in the open interval (0, 1) (``unpaired`` also takes 0: every row paired, see :func:`validate_ratio_for`).
* ``rng`` is an explicit :class:`numpy.random.Generator`; no global random state is used.

Mechanisms (see ``docs/models.md``, "Missingness mechanisms"):

* :func:`mcar` - independent Bernoulli(r) per entry.
* :func:`mar` - logistic MAR of Muzellec et al. 2020, "Missing data imputation using
  optimal transport" (``MAR_mask`` in their code): a random subset of features is always
  observed, the others are missing with a probability that is a logistic function of the
  always-observed ones.
* :func:`mnar_selfmask` - self-masking logistic MNAR: an entry's missing probability is a
  logistic function of its own value (Muzellec et al.'s ``MNAR_self_mask_logistic``).
* :func:`mnar_quantile` - quantile censoring MNAR: values beyond a per-feature quantile are
  masked with high probability, the rest with low probability.
* :func:`unpaired` - weak supervision (MVAE section 5.1): a share r of the rows keeps one column
  (one modality) only; its ``ratio`` is the share of unpaired rows, not of missing entries.

:func:`make_mask` is the single entry point of the runner; :func:`mask_hash` fingerprints
a mask for the result store.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from numbers import Real

import numpy as np
from scipy.special import expit, logit

from imputebench.errors import UnknownNameError
from imputebench.schema import FeatureSchema

Mechanism = Callable[..., np.ndarray]

_BISECTION_STEPS = 64


# --- helpers ----------------------------------------------------------------------------
#: mechanisms that also run at ratio 0, which hides nothing: ``unpaired`` at 0 pairs every row, MVAE's "100%"
#: column (Tables 8-9), a setting scored by an evaluation (label accuracy), not by imputation metrics
ZERO_RATIO_MECHANISMS = frozenset({"unpaired"})


def validate_ratio(ratio: object, *, allow_zero: bool = False) -> float:
    """Return ``ratio`` as a float after checking it lies in the open interval (0, 1), or in [0, 1)
    with ``allow_zero``."""
    interval = "[0, 1)" if allow_zero else "(0, 1)"
    if isinstance(ratio, (bool, np.bool_)) or not isinstance(ratio, Real):
        raise ValueError(f"missing ratio must be a real number in {interval}, got {ratio!r}")
    value = float(ratio)
    if not (0.0 <= value < 1.0 if allow_zero else 0.0 < value < 1.0):  # also rejects NaN
        hint = "" if allow_zero or value != 0.0 else f" (0, which hides nothing, is only for {', '.join(sorted(ZERO_RATIO_MECHANISMS))})"
        raise ValueError(f"missing ratio must lie in the {'half-open' if allow_zero else 'open'} interval {interval}, got {ratio!r}{hint}")
    return value


def validate_ratio_for(mechanism: str, ratio: object) -> float:
    """:func:`validate_ratio` for ``mechanism``: 0 is allowed for the :data:`ZERO_RATIO_MECHANISMS` only."""
    return validate_ratio(ratio, allow_zero=_ALIASES.get(mechanism, mechanism) in ZERO_RATIO_MECHANISMS)


def _check_x(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"x must be a non-empty 2-D array (n, d), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("x must be finite: a mechanism sees complete data (no NaN/inf)")
    return arr


def _standardise(x: np.ndarray) -> np.ndarray:
    """Column-wise z-scores ``(n, k)``; a constant column becomes all zeros."""
    std = x.std(axis=0)  # (k,)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _fit_intercepts(logits: np.ndarray, rate: float | np.ndarray) -> np.ndarray:
    """Per-column intercepts ``b`` with ``mean_i sigmoid(logits[i, j] + b[j]) == rate``.

    Bisection, vectorised across columns: the mean is increasing in ``b`` and, for any
    column, the root lies in ``[logit(rate) - max_i logits, logit(rate) - min_i logits]``.
    """
    target = logit(np.broadcast_to(np.asarray(rate, dtype=np.float64), logits.shape[1:]))  # (k,)
    lo = target - logits.max(axis=0)  # (k,) mean <= rate here
    hi = target - logits.min(axis=0)  # (k,) mean >= rate here
    rate_k = expit(target)  # (k,)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)  # (k,)
        too_high = expit(logits + mid).mean(axis=0) > rate_k  # (k,)
        hi = np.where(too_high, mid, hi)
        lo = np.where(too_high, lo, mid)
    return 0.5 * (lo + hi)


# --- mechanisms -------------------------------------------------------------------------
def mcar(x: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Missing completely at random: each entry is missing independently with probability r.

    >>> m = mcar(np.zeros((1000, 10)), 0.3, np.random.default_rng(0))
    >>> m.dtype, m.shape, round(float(1 - m.mean()), 1)
    (dtype('bool'), (1000, 10), 0.3)
    """
    r = validate_ratio(ratio)
    x = _check_x(x)
    return rng.random(x.shape) >= r  # (n, d) True = observed


def mar(x: np.ndarray, ratio: float, rng: np.random.Generator, observed_fraction: float = 0.3) -> np.ndarray:
    """Logistic missing-at-random mask (Muzellec et al. 2020, ``MAR_mask``).

    ``ceil(observed_fraction * d)`` features (clipped to ``[1, d - 1]``), chosen at random,
    are always observed. Each other feature j is missing with probability
    ``sigmoid(z_obs @ W[:, j] + b_j)`` where ``z_obs`` are the always-observed features
    standardised column-wise, ``W ~ N(0, 1)`` and each logit column is rescaled to unit
    standard deviation (as Muzellec et al. do). ``b_j`` is fitted by bisection so the
    expected missing rate on each masked feature is ``r * d / (d - n_observed)``, making
    the expected overall ratio r. Raises ``ValueError`` when that rate would reach 1.

    >>> x = np.random.default_rng(1).normal(size=(2000, 10))
    >>> m = mar(x, 0.3, np.random.default_rng(0))
    >>> int(m.all(axis=0).sum()), round(float(1 - m.mean()), 2)
    (3, 0.3)
    """
    r = validate_ratio(ratio)
    x = _check_x(x)
    n, d = x.shape
    if d < 2:
        raise ValueError("MAR needs at least 2 features (one always observed, one masked)")
    if not 0.0 <= observed_fraction <= 1.0:
        raise ValueError(f"observed_fraction must lie in [0, 1], got {observed_fraction!r}")
    n_obs = min(max(math.ceil(observed_fraction * d), 1), d - 1)
    rate = r * d / (d - n_obs)
    if rate >= 1.0:
        raise ValueError(
            f"ratio {r} is too high for MAR with observed_fraction={observed_fraction}: "
            f"{n_obs} of {d} features are always observed, so the other features would need "
            f"a missing rate of {rate:.3f} >= 1; the largest feasible ratio is below {(d - n_obs) / d:.3f}"
        )
    perm = rng.permutation(d)
    idx_obs, idx_nas = np.sort(perm[:n_obs]), np.sort(perm[n_obs:])
    weights = rng.standard_normal((n_obs, d - n_obs))  # (n_obs, d_na)
    logits = _standardise(x[:, idx_obs]) @ weights  # (n, d_na)
    scale = logits.std(axis=0)  # (d_na,)
    logits = logits / np.where(scale > 0, scale, 1.0)
    probs = expit(logits + _fit_intercepts(logits, rate))  # (n, d_na) P(missing)
    observed = np.ones((n, d), dtype=bool)
    observed[:, idx_nas] = rng.random((n, d - n_obs)) >= probs
    return observed


def mnar_selfmask(
    x: np.ndarray,
    ratio: float,
    rng: np.random.Generator,
    strength: float = 2.0,
    random_sign: bool = True,
) -> np.ndarray:
    """Self-masking logistic MNAR (Muzellec et al. 2020, ``MNAR_self_mask_logistic``).

    Entry (i, j) is missing with probability ``sigmoid(w_j * z_ij + b_j)`` where ``z_ij``
    is the entry's own value standardised within feature j, ``|w_j| ~ strength *
    Uniform(0.5, 1.5)`` with a random sign per feature (positive when ``random_sign`` is
    False: large values go missing), and ``b_j`` is fitted by bisection so every feature's
    expected missing rate is r. A constant feature degenerates to MCAR(r).

    >>> x = np.random.default_rng(1).normal(size=(2000, 5))
    >>> m = mnar_selfmask(x, 0.5, np.random.default_rng(0), random_sign=False)
    >>> round(float(1 - m.mean()), 2), bool(x[~m].mean() > x[m].mean() + 1)
    (0.5, True)
    """
    r = validate_ratio(ratio)
    x = _check_x(x)
    n, d = x.shape
    magnitude = abs(strength) * rng.uniform(0.5, 1.5, size=d)  # (d,)
    sign = np.where(rng.random(d) < 0.5, -1.0, 1.0) if random_sign else np.ones(d)
    logits = _standardise(x) * (sign * magnitude)  # (n, d)
    probs = expit(logits + _fit_intercepts(logits, r))  # (n, d) P(missing)
    return rng.random((n, d)) >= probs


def mnar_quantile(x: np.ndarray, ratio: float, rng: np.random.Generator, leak: float = 0.1) -> np.ndarray:
    """Quantile-censoring MNAR: the values beyond a per-feature quantile go missing.

    Construction, per feature j: pick a side at random (upper or lower tail) and rank the
    n values from the far end of that side, breaking ties (e.g. equal category codes)
    uniformly at random, so exactly ``k = round(r * n)`` entries form the censored tail.
    Censored entries are missing with probability ``p_high = 1 - leak * (1 - r)``, the
    others with ``p_low = (r * n - k * p_high) / (n - k)`` (``= leak * r`` when r·n is an
    integer), so the expected missing count of every feature is exactly r·n. Equivalently,
    each entry follows deterministic censoring with probability ``1 - leak`` and MCAR(r)
    otherwise: ``leak=0`` is pure censoring, ``leak=1`` is MCAR. If ``p_low`` would be
    negative it is set to 0 and ``p_high = r * n / k``.

    >>> x = np.random.default_rng(1).normal(size=(2000, 5))
    >>> m = mnar_quantile(x, 0.3, np.random.default_rng(0))
    >>> round(float(1 - m.mean()), 2)
    0.3
    """
    r = validate_ratio(ratio)
    x = _check_x(x)
    if not 0.0 <= leak <= 1.0:
        raise ValueError(f"leak must lie in [0, 1], got {leak!r}")
    n, d = x.shape
    k = min(max(round(r * n), 0), n)
    if k in (0, n):  # tiny n: no tail can be separated, fall back to MCAR(r)
        p_high = p_low = r
    else:
        p_high = 1.0 - leak * (1.0 - r)
        p_low = (r * n - k * p_high) / (n - k)
        if p_low < 0.0:
            p_low, p_high = 0.0, r * n / k
    upper = rng.random(d) < 0.5  # (d,) censor the upper tail of these features
    value = np.where(upper, x, -x)  # (n, d) larger = closer to the censored end
    order = np.lexsort((rng.random((n, d)), value), axis=0)  # (n, d) ascending, random tie-break
    rank = np.empty((n, d), dtype=np.int64)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(n)[:, None], (n, d)), axis=0)
    probs = np.where(rank >= n - k, p_high, p_low)  # (n, d) P(missing)
    return rng.random((n, d)) >= probs


def unpaired(x: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Weak supervision (MVAE, Wu & Goodman 2018, section 5.1): a share r of the rows is unpaired and keeps
    exactly one of its columns; every other row keeps all of them. Drawn per modality (images with a label),
    an unpaired row keeps its image or its label.

    Here ``ratio`` is the share of unpaired rows, not of missing entries: with M columns the share of
    missing entries is r (M - 1) / M. MVAE's "fraction of paired examples" is 1 - r; r = 0 pairs every row
    (the "100%" column) and hides nothing. As the paper reserves
    "a fraction of the dataset as multi-modal examples" and splits "the remaining data" into one dataset
    per modality, exactly round(r n) rows are unpaired, chosen at random, and they keep their columns in
    turn (as many image-only as label-only rows, give or take one).

    >>> m = unpaired(np.zeros((1000, 2)), 0.9, np.random.default_rng(0))
    >>> int((m.sum(1) == 1).sum()), int(m.all(1).sum()), int((~m[:, 0]).sum())
    (900, 100, 450)
    """
    r = validate_ratio(ratio, allow_zero=True)
    n, d = _check_x(x).shape
    rows = rng.permutation(n)[: int(round(r * n))]  # the unpaired rows, in random order
    mask = np.ones((n, d), dtype=bool)
    mask[rows] = False
    mask[rows, np.arange(len(rows)) % d] = True  # each keeps one column, the columns in turn
    return mask


MECHANISMS: dict[str, Mechanism] = {
    "mcar": mcar,
    "mar": mar,
    "mnar": mnar_selfmask,  # the default MNAR
    "mnar_selfmask": mnar_selfmask,
    "mnar_quantile": mnar_quantile,
    "unpaired": unpaired,
}
_ALIASES = {"mnar": "mnar_selfmask"}


def get_mechanism(name: str) -> Mechanism:
    """The mechanism function registered as ``name``."""
    try:
        return MECHANISMS[name]
    except (KeyError, TypeError):
        raise UnknownNameError(f"unknown mechanism {name!r}; known: {', '.join(sorted(MECHANISMS))}") from None


# --- modality level ---------------------------------------------------------------------
def expand_modality_mask(mask_nm: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """Modality-level mask ``(n, M)`` -> feature-level mask ``(n, d)``."""
    mask_nm = np.asarray(mask_nm, dtype=bool)
    n_mod = len(schema.modality_groups)
    if mask_nm.ndim != 2 or mask_nm.shape[1] != n_mod:
        raise ValueError(f"modality mask must have shape (n, {n_mod}), got {mask_nm.shape}")
    return mask_nm[:, list(schema.feature_modality)]  # (n, d)


def modality_summary(x: np.ndarray, schema: FeatureSchema, chunk_rows: int = 4096) -> np.ndarray:
    """``(n, M)``: per row, the mean over each modality of its column-standardised features
    (a constant column counts as 0), what the MAR/MNAR mechanisms see of a modality.

    Computed as ``x @ W - c`` over row chunks, with ``W[j, m] = 1 / (std_j |m|)`` for the features
    j of modality m: an image table (uint8, thousands of columns) is never copied in float.
    """
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != len(schema):
        raise ValueError(f"x must be a non-empty (n, {len(schema)}) array, got shape {x.shape}")
    total, squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for start in range(0, len(x), chunk_rows):
        part = x[start : start + chunk_rows].astype(np.float64)  # (c, d)
        if not np.isfinite(part).all():
            raise ValueError("x must be finite: a mechanism sees complete data (no NaN/inf)")
        total += part.sum(axis=0)
        squares += (part * part).sum(axis=0)
    mean = total / len(x)  # (d,)
    std = np.sqrt(np.maximum(squares / len(x) - mean * mean, 0.0))  # (d,)
    membership = np.eye(len(schema.modality_groups))[list(schema.feature_modality)]  # (d, M)
    inv_std = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)  # (d,) 0 for a constant column
    weights = membership * inv_std[:, None] / membership.sum(axis=0)  # (d, M)
    offset = mean @ weights  # (M,)
    return np.concatenate([x[s : s + chunk_rows].astype(np.float64) @ weights for s in range(0, len(x), chunk_rows)]) - offset


def modality_mask(
    x: np.ndarray,
    schema: FeatureSchema,
    mechanism: str,
    ratio: float,
    rng: np.random.Generator,
    *,
    keep_one: bool = False,
    **options: object,
) -> np.ndarray:
    """Feature-level mask ``(n, d)`` whose modalities are observed or missing as a whole.

    The mask is drawn at the modality level ``(n, M)``: for ``"mcar"`` one Bernoulli(r)
    per (row, modality); for the other mechanisms the mechanism is applied to a per-modality
    summary, the mean of the modality's column-standardised features (so MNAR depends on the
    modality's own content and MAR on the always-observed modalities). The expected ratio
    over (row, modality) cells is r; over features it is r too when all modalities have the
    same width. ``keep_one=True`` re-observes one modality, chosen uniformly, in every row
    that lost all of them; this lowers the ratio by (rows fully missing) / (n·M), i.e. by
    r**M / M under MCAR.
    """
    r = validate_ratio_for(mechanism, ratio)
    fn = get_mechanism(mechanism)
    mask_nm = fn(modality_summary(x, schema), r, rng, **options)  # (n, M)
    if keep_one:
        lost = ~mask_nm.any(axis=1)  # (n,)
        pick = rng.integers(mask_nm.shape[1], size=int(lost.sum()))
        mask_nm[np.flatnonzero(lost), pick] = True
    return expand_modality_mask(mask_nm, schema)


# --- hashing and the runner's entry point -----------------------------------------------
def mask_hash(mask: np.ndarray) -> str:
    """sha256 hex digest of a boolean mask's shape and bits (``np.packbits``, big-endian).

    Independent of dtype layout, platform and Python's hash seed.

    >>> mask_hash(np.ones((2, 3), dtype=bool)) == mask_hash(np.ones((2, 3), dtype=bool))
    True
    >>> mask_hash(np.ones((2, 3), dtype=bool)) == mask_hash(np.ones((3, 2), dtype=bool))
    False
    """
    arr = np.ascontiguousarray(np.asarray(mask, dtype=bool))
    digest = hashlib.sha256()
    digest.update(("bool:" + "x".join(str(s) for s in arr.shape) + ";").encode("ascii"))
    digest.update(np.packbits(arr.ravel(), bitorder="big").tobytes())
    return digest.hexdigest()


def _stream_key(mechanism: str, ratio: float) -> int:
    """A stable 64-bit integer from the (canonical) mechanism name and the ratio."""
    text = f"{_ALIASES.get(mechanism, mechanism)}:{ratio!r}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def make_mask(
    x: np.ndarray,
    mechanism: str,
    ratio: float,
    seed: int,
    *,
    schema: FeatureSchema | None = None,
    per_modality: bool = False,
    **options: object,
) -> np.ndarray:
    """The runner's entry point: an ``(n, d)`` bool mask (True = observed), reproducible.

    The generator is ``default_rng(SeedSequence([seed, key]))`` where ``key`` comes from
    the sha256 of ``f"{mechanism}:{ratio!r}"`` (aliases resolved, so ``"mnar"`` and
    ``"mnar_selfmask"`` give the same mask), so each (mechanism, ratio, seed) has its own
    stream. ``per_modality=True`` draws whole modalities (see :func:`modality_mask`) and
    needs ``schema``; extra ``options`` go to the mechanism.

    >>> x = np.random.default_rng(0).normal(size=(50, 4))
    >>> bool((make_mask(x, "mar", 0.2, seed=3) == make_mask(x, "mar", 0.2, seed=3)).all())
    True
    """
    r = validate_ratio_for(mechanism, ratio)
    fn = get_mechanism(mechanism)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _stream_key(mechanism, r)]))
    if per_modality:
        if schema is None:
            raise ValueError("per_modality=True needs a schema with modality groups")
        return modality_mask(x, schema, mechanism, r, rng, **options)
    x = _check_x(x)
    if schema is not None and x.shape[1] != len(schema):
        raise ValueError(f"x has {x.shape[1]} features but the schema has {len(schema)}")
    return fn(x, r, rng, **options)
