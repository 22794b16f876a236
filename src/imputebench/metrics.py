"""Imputation metrics, scored on **held-out entries only**, in torchmetrics style.

Each metric is a pure functional core (``nrmse``, ``minmax_rmse``, ``pfc``,
``modality_mse``) plus a thin :class:`torchmetrics.Metric` class accumulating the same
statistics across batches and processes (DDP). ``held_out`` is a bool tensor, True where
the entry was hidden from the model and has a known true value; every other entry of
``preds`` is ignored (selected with ``torch.where``, so even NaN there changes nothing).

Definitions (``docs/models.md``, "Metrics"):

* NRMSE (VAEAC, Ivanov et al. 2019, appendix A.2): per numeric feature, the RMSE over its
  held-out entries divided by the feature's standard deviation; averaged over features.
* min-max RMSE (GAIN, Yoon et al. 2018, public code): RMSE over all held-out entries after
  min-max scaling every feature with the min/max of the true data.
* PFC: per categorical feature, the fraction of held-out entries imputed with the wrong
  category; averaged over features.
* modality MSE (VSAE, Gong et al. 2021, appendix C.2/C.3): per modality, the mean squared
  error per element over the samples whose modality is held out.

Statistics of ``target`` (std, min, max) are taken over all its rows, observed and held
out; non-finite target entries (values missing in the raw data, never scored) are skipped.
Results are returned in ``torch.get_default_dtype()``; accumulation is in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal, NamedTuple

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

Normaliser = Literal["std", "range"]
_F64 = torch.float64


# --- shared statistics ------------------------------------------------------------------
def _check(preds: Tensor, target: Tensor, held_out: Tensor, num_features: int | None = None) -> Tensor:
    """Validate shapes/dtypes; return ``held_out`` as given (bool)."""
    if target.ndim != 2 or preds.shape != target.shape or held_out.shape != target.shape:
        raise ValueError(
            f"preds {tuple(preds.shape)}, target {tuple(target.shape)} and held_out "
            f"{tuple(held_out.shape)} must share one (n, k) shape"
        )
    if held_out.dtype != torch.bool:
        raise TypeError("held_out must be a bool tensor (True = hidden from the model, scored)")
    if num_features is not None and target.shape[1] != num_features:
        raise ValueError(f"expected {num_features} features, got {target.shape[1]}")
    if not torch.isfinite(target[held_out].to(_F64)).all():
        raise ValueError("every held-out entry needs a finite true value in target")
    return held_out


def _sq_err(preds: Tensor, target: Tensor, held_out: Tensor) -> tuple[Tensor, Tensor]:
    """Per feature: sum of squared errors over held-out entries and their count, ``(k,)`` each."""
    diff = preds.to(_F64) - target.to(_F64)  # (n, k)
    sq = torch.where(held_out, diff * diff, torch.zeros_like(diff))  # (n, k)
    return sq.sum(0), held_out.sum(0).to(_F64)


def _moments(target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per feature: count, mean and M2 = sum of squared deviations over finite entries (two-pass)."""
    t = target.to(_F64)  # (n, k)
    finite = torch.isfinite(t)
    count = finite.sum(0).to(_F64)  # (k,)
    mean = torch.where(finite, t, 0.0).sum(0) / count.clamp_min(1.0)  # (k,)
    m2 = torch.where(finite, (t - mean) ** 2, 0.0).sum(0)  # (k,)
    return count, mean, m2


def _merge_variance(count: Tensor, mean: Tensor, m2: Tensor) -> Tensor:
    """Population variance from per-part moments ``(B, k)`` (Chan, Golub & LeVeque 1979)."""
    total = count.sum(0)  # (k,)
    grand = (count * mean).sum(0) / total.clamp_min(1.0)  # (k,)
    m2_all = m2.sum(0) + (count * (mean - grand) ** 2).sum(0)  # (k,)
    return m2_all / total


def _extrema(target: Tensor) -> tuple[Tensor, Tensor]:
    """Per feature min and max over finite entries, ``(k,)`` each."""
    t = target.to(_F64)
    finite = torch.isfinite(t)
    inf = torch.full((1, t.shape[1]), float("inf"), dtype=_F64, device=t.device)  # (1, k) pads empty batches
    low = torch.cat([torch.where(finite, t, inf), inf])  # (n + 1, k)
    high = torch.cat([torch.where(finite, t, -inf), -inf])  # (n + 1, k)
    return low.amin(0), high.amax(0)


def _used_features(count: Tensor, t_min: Tensor, t_max: Tensor, what: str) -> Tensor:
    """Mask of features with >= 1 held-out entry; raises on none, or on a constant one."""
    used = count > 0  # (k,)
    if not bool(used.any()):
        raise ValueError("no entry is held out: nothing to score")
    constant = torch.nonzero(used & ~(t_max > t_min)).flatten()
    if constant.numel():
        raise ValueError(f"constant feature {int(constant[0])}: {what} would divide by zero")
    return used


def _nrmse_compute(sse: Tensor, count: Tensor, norm: Tensor, t_min: Tensor, t_max: Tensor) -> Tensor:
    used = _used_features(count, t_min, t_max, "NRMSE")
    per_feature = torch.sqrt(sse[used] / count[used]) / norm[used]  # (k_used,)
    return per_feature.mean().to(torch.get_default_dtype())


def _minmax_compute(sse: Tensor, count: Tensor, t_min: Tensor, t_max: Tensor) -> Tensor:
    used = _used_features(count, t_min, t_max, "min-max scaling")
    scaled = sse[used] / (t_max[used] - t_min[used]) ** 2  # (k_used,)
    return torch.sqrt(scaled.sum() / count[used].sum()).to(torch.get_default_dtype())


def _reference(target: Tensor, reference: Tensor | None) -> Tensor:
    """The rows whose statistics normalise the error ``(m, k)``: ``target`` unless given."""
    if reference is None:
        return target
    if reference.ndim != 2 or reference.shape[1] != target.shape[1]:
        raise ValueError(f"reference {tuple(reference.shape)} must have target's {target.shape[1]} columns")
    return reference


def _check_normaliser(normaliser: str) -> None:
    if normaliser not in ("std", "range"):
        raise ValueError(f"unknown normaliser {normaliser!r}; known: range, std")


# --- functional cores -------------------------------------------------------------------
def nrmse(
    preds: Tensor, target: Tensor, held_out: Tensor, normaliser: Normaliser = "std", reference: Tensor | None = None
) -> Tensor:
    """Normalised RMSE over numeric features ``(n, k)``, held-out entries only (VAEAC A.2).

    Per feature j: RMSE over its held-out entries divided by the population std (ddof=0) of
    ``reference[:, j]`` over all rows (``"std"``), or by its max - min (``"range"``); averaged
    over the features with at least one held-out entry. A constant scored feature raises.
    ``reference`` ``(m, k)`` defaults to ``target``; pass the whole table to normalise by the
    feature's standard deviation in the dataset rather than in the scored rows.

    >>> target = torch.tensor([[1., 10.], [2., 20.], [3., 30.], [4., 40.]])
    >>> preds = target + torch.tensor([[0., 0.], [1., 0.], [0., 5.], [0., 0.]])
    >>> held_out = torch.tensor([[False, False], [True, False], [False, True], [False, False]])
    >>> nrmse(preds, target, held_out)
    tensor(0.6708)
    >>> nrmse(preds, target, held_out, normaliser="range")
    tensor(0.2500)
    """
    _check_normaliser(normaliser)
    _check(preds, target, held_out)
    reference = _reference(target, reference)
    sse, count = _sq_err(preds, target, held_out)  # (k,), (k,)
    t_min, t_max = _extrema(reference)  # (k,), (k,)
    if normaliser == "std":
        n, mean, m2 = _moments(reference)
        norm = torch.sqrt(_merge_variance(n[None], mean[None], m2[None]))
    else:
        norm = t_max - t_min
    return _nrmse_compute(sse, count, norm, t_min, t_max)


def minmax_rmse(preds: Tensor, target: Tensor, held_out: Tensor, reference: Tensor | None = None) -> Tensor:
    """RMSE over all held-out entries after min-max scaling each feature (GAIN's convention).

    Every feature is scaled by the min and max of ``reference`` (default ``target``) over
    all rows; one number.

    >>> target = torch.tensor([[1., 10.], [2., 20.], [3., 30.], [4., 40.]])
    >>> preds = target + torch.tensor([[0., 0.], [1., 0.], [0., 5.], [0., 0.]])
    >>> held_out = torch.tensor([[False, False], [True, False], [False, True], [False, False]])
    >>> minmax_rmse(preds, target, held_out)
    tensor(0.2635)
    """
    _check(preds, target, held_out)
    sse, count = _sq_err(preds, target, held_out)
    return _minmax_compute(sse, count, *_extrema(_reference(target, reference)))


def _pfc_update(preds: Tensor, target: Tensor, held_out: Tensor) -> tuple[Tensor, Tensor]:
    """Per feature: wrong held-out codes and held-out count, ``(k,)`` each."""
    def codes(t: Tensor) -> Tensor:
        return torch.nan_to_num(t.round(), nan=-1.0).long() if t.is_floating_point() else t.long()

    wrong = held_out & (codes(preds) != codes(target))  # (n, k)
    return wrong.sum(0).to(_F64), held_out.sum(0).to(_F64)


def _pfc_compute(wrong: Tensor, count: Tensor) -> Tensor:
    used = count > 0
    if not bool(used.any()):
        raise ValueError("no entry is held out: nothing to score")
    return (wrong[used] / count[used]).mean().to(torch.get_default_dtype())


def pfc(preds: Tensor, target: Tensor, held_out: Tensor) -> Tensor:
    """Proportion of falsely classified held-out entries over categorical codes ``(n, k)``.

    Per feature: the fraction of held-out entries whose predicted code differs from the
    truth; averaged over the features with at least one held-out entry.

    >>> target = torch.tensor([[0, 1], [1, 2], [2, 0], [1, 1]])
    >>> preds = torch.tensor([[0, 1], [2, 2], [2, 0], [0, 1]])
    >>> held_out = torch.tensor([[True, False], [True, True], [True, False], [False, True]])
    >>> pfc(preds, target, held_out)
    tensor(0.1667)
    """
    _check(preds, target, held_out)
    return _pfc_compute(*_pfc_update(preds, target, held_out))


def _modality_update(preds: Tensor, target: Tensor, held_out_modality: Tensor, groups: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Per modality: squared-error sum and element count over held-out samples, ``(M,)`` each."""
    if preds.ndim != 2 or preds.shape != target.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} must share one (n, p) shape")
    if held_out_modality.dtype != torch.bool or held_out_modality.shape != (target.shape[0], len(groups)):
        raise ValueError(f"held_out_modality must be a bool tensor of shape ({target.shape[0]}, {len(groups)})")
    sse = torch.zeros(len(groups), dtype=_F64, device=target.device)  # (M,)
    elements = torch.zeros_like(sse)  # (M,)
    for m, cols in enumerate(groups):
        idx = torch.as_tensor(list(cols), dtype=torch.long, device=target.device)
        rows = held_out_modality[:, m : m + 1]  # (n, 1)
        t = target[:, idx].to(_F64)  # (n, w)
        if not torch.isfinite(t[rows.expand_as(t)]).all():
            raise ValueError(f"modality {m}: held-out samples need finite true values")
        diff = preds[:, idx].to(_F64) - t  # (n, w)
        sse[m] = torch.where(rows, diff * diff, torch.zeros_like(diff)).sum()
        elements[m] = rows.sum() * len(idx)
    return sse, elements


def _modality_compute(sse: Tensor, elements: Tensor) -> Tensor:
    if not bool((elements > 0).any()):
        raise ValueError("no modality is held out: nothing to score")
    return (sse / elements).to(torch.get_default_dtype())  # (M,) NaN where none held out


def modality_mse(preds: Tensor, target: Tensor, held_out_modality: Tensor, groups: Sequence[Sequence[int]]) -> Tensor:
    """Per-modality MSE per element over the samples whose modality is held out (VSAE C.2/C.3).

    ``preds``/``target`` are ``(n, p)``, ``groups[m]`` the column indices of modality m and
    ``held_out_modality`` is ``(n, M)`` bool. Returns ``(M,)``; a modality held out in no
    sample gets NaN. VSAE's "bimodal error" is the sum of the two entries.

    >>> target = torch.zeros(3, 4)
    >>> preds = torch.tensor([[1., 1., 2., 2.], [0., 0., 4., 4.], [3., 3., 3., 3.]])
    >>> held = torch.tensor([[True, False], [False, True], [True, True]])
    >>> modality_mse(preds, target, held, [[0, 1], [2, 3]])
    tensor([ 5.0000, 12.5000])
    """
    return _modality_compute(*_modality_update(preds, target, held_out_modality, groups))


# --- torchmetrics classes ---------------------------------------------------------------
class _HeldOutNumeric(Metric):
    """Shared states: held-out squared errors and counts, target min/max (and moments).

    With a ``reference`` ``(m, k)`` (the whole table, as :func:`imputebench.evaluate.score` gives
    it), the normalising statistics are the reference's, fixed at construction, and ``update``
    accumulates errors only: the functional cores' ``reference`` argument, streamed.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, num_features: int, track_moments: bool, reference: Tensor | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.num_features = num_features
        self.reference_stats: tuple[Tensor, ...] | None = None
        if reference is not None:
            if reference.ndim != 2 or reference.shape[1] != num_features:
                raise ValueError(f"reference {tuple(reference.shape)} must have {num_features} columns")
            n, mean, m2 = _moments(reference)
            self.reference_stats = (*_extrema(reference), torch.sqrt(_merge_variance(n[None], mean[None], m2[None])))
            track_moments = False
        self._track_moments = track_moments
        zeros = torch.zeros(num_features, dtype=_F64)
        self.add_state("sse", zeros.clone(), dist_reduce_fx="sum")
        self.add_state("count", zeros.clone(), dist_reduce_fx="sum")
        self.add_state("target_min", torch.full((num_features,), float("inf"), dtype=_F64), dist_reduce_fx="min")
        self.add_state("target_max", torch.full((num_features,), float("-inf"), dtype=_F64), dist_reduce_fx="max")
        if track_moments:  # per-update (1, k) moments, merged exactly in compute (Chan et al.)
            self.add_state("part_count", [], dist_reduce_fx="cat")
            self.add_state("part_mean", [], dist_reduce_fx="cat")
            self.add_state("part_m2", [], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor, held_out: Tensor) -> None:
        _check(preds, target, held_out, self.num_features)
        sse, count = _sq_err(preds, target, held_out)
        self.sse += sse
        self.count += count
        if self.reference_stats is not None:
            return
        t_min, t_max = _extrema(target)
        self.target_min = torch.minimum(self.target_min, t_min)
        self.target_max = torch.maximum(self.target_max, t_max)
        if self._track_moments:
            n, mean, m2 = _moments(target)
            self.part_count.append(n[None])
            self.part_mean.append(mean[None])
            self.part_m2.append(m2[None])


class NRMSE(_HeldOutNumeric):
    """Streaming :func:`nrmse`; the normaliser covers every target row seen by ``update``.

    >>> metric = NRMSE(num_features=2)
    >>> target = torch.tensor([[1., 10.], [2., 20.], [3., 30.], [4., 40.]])
    >>> preds = target + torch.tensor([[0., 0.], [1., 0.], [0., 5.], [0., 0.]])
    >>> held_out = torch.tensor([[False, False], [True, False], [False, True], [False, False]])
    >>> metric.update(preds[:2], target[:2], held_out[:2])
    >>> metric.update(preds[2:], target[2:], held_out[2:])
    >>> metric.compute()
    tensor(0.6708)
    """

    def __init__(self, num_features: int, normaliser: Normaliser = "std", reference: Tensor | None = None, **kwargs: object) -> None:
        _check_normaliser(normaliser)
        super().__init__(num_features, track_moments=normaliser == "std", reference=reference, **kwargs)
        self.normaliser = normaliser

    def compute(self) -> Tensor:
        if self.reference_stats is not None:
            t_min, t_max, std = self.reference_stats
            return _nrmse_compute(self.sse, self.count, std if self.normaliser == "std" else t_max - t_min, t_min, t_max)
        if self.normaliser == "std":
            parts = (dim_zero_cat(p) for p in (self.part_count, self.part_mean, self.part_m2))
            norm = torch.sqrt(_merge_variance(*parts))  # (k,)
        else:
            norm = self.target_max - self.target_min
        return _nrmse_compute(self.sse, self.count, norm, self.target_min, self.target_max)


class MinMaxRMSE(_HeldOutNumeric):
    """Streaming :func:`minmax_rmse` (GAIN's RMSE on min-max-scaled data).

    >>> metric = MinMaxRMSE(num_features=2)
    >>> target = torch.tensor([[1., 10.], [2., 20.], [3., 30.], [4., 40.]])
    >>> preds = target + torch.tensor([[0., 0.], [1., 0.], [0., 5.], [0., 0.]])
    >>> held_out = torch.tensor([[False, False], [True, False], [False, True], [False, False]])
    >>> metric(preds, target, held_out)
    tensor(0.2635)
    """

    def __init__(self, num_features: int, reference: Tensor | None = None, **kwargs: object) -> None:
        super().__init__(num_features, track_moments=False, reference=reference, **kwargs)

    def compute(self) -> Tensor:
        if self.reference_stats is not None:
            return _minmax_compute(self.sse, self.count, *self.reference_stats[:2])
        return _minmax_compute(self.sse, self.count, self.target_min, self.target_max)


class PFC(Metric):
    """Streaming :func:`pfc` over categorical codes.

    >>> metric = PFC(num_features=2)
    >>> target = torch.tensor([[0, 1], [1, 2], [2, 0], [1, 1]])
    >>> preds = torch.tensor([[0, 1], [2, 2], [2, 0], [0, 1]])
    >>> held_out = torch.tensor([[True, False], [True, True], [True, False], [False, True]])
    >>> metric.update(preds, target, held_out)
    >>> metric.compute()
    tensor(0.1667)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, num_features: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.num_features = num_features
        self.add_state("wrong", torch.zeros(num_features, dtype=_F64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(num_features, dtype=_F64), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, held_out: Tensor) -> None:
        _check(preds, target, held_out, self.num_features)
        wrong, count = _pfc_update(preds, target, held_out)
        self.wrong += wrong
        self.count += count

    def compute(self) -> Tensor:
        return _pfc_compute(self.wrong, self.count)


class ModalityMSE(Metric):
    """Streaming :func:`modality_mse`; ``compute()`` is ``(M,)``, bimodal error = its sum.

    >>> metric = ModalityMSE(groups=[[0, 1], [2, 3]])
    >>> preds = torch.tensor([[1., 1., 2., 2.], [0., 0., 4., 4.], [3., 3., 3., 3.]])
    >>> held = torch.tensor([[True, False], [False, True], [True, True]])
    >>> metric.update(preds, torch.zeros(3, 4), held)
    >>> metric.compute()
    tensor([ 5.0000, 12.5000])
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, groups: Sequence[Sequence[int]], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.groups = [list(g) for g in groups]
        self.add_state("sse", torch.zeros(len(self.groups), dtype=_F64), dist_reduce_fx="sum")
        self.add_state("elements", torch.zeros(len(self.groups), dtype=_F64), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, held_out_modality: Tensor) -> None:
        sse, elements = _modality_update(preds, target, held_out_modality, self.groups)
        self.sse += sse
        self.elements += elements

    def compute(self) -> Tensor:
        return _modality_compute(self.sse, self.elements)


class MetricSpec(NamedTuple):
    """How the runner builds a metric: ``factory(num_features)`` (``factory(groups)`` for
    modality metrics) and the feature kind it scores."""

    factory: Callable[..., Metric]
    applies_to: Literal["numeric", "categorical", "modality"]


METRICS: dict[str, MetricSpec] = {
    "nrmse": MetricSpec(NRMSE, "numeric"),
    "nrmse_range": MetricSpec(partial(NRMSE, normaliser="range"), "numeric"),
    "minmax_rmse": MetricSpec(MinMaxRMSE, "numeric"),
    "pfc": MetricSpec(PFC, "categorical"),
    "modality_mse": MetricSpec(ModalityMSE, "modality"),
}
