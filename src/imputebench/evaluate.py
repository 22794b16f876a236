"""Score imputations of the test split on its held-out entries only."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric

from imputebench.data.prepare import PreparedData
from imputebench.metrics import METRICS


#: the numeric metrics of a result row, each normalised by the whole table's statistics
NUMERIC_METRICS = ("nrmse", "nrmse_range", "minmax_rmse")


def _computed(metric: Metric, *batch: torch.Tensor) -> float:
    """``metric`` (a torchmetrics class of :mod:`imputebench.metrics`) over one batch."""
    metric.update(*batch)
    return float(metric.compute())


def score(data: PreparedData, imputed: torch.Tensor) -> dict[str, float]:
    """Metrics of an encoded ``(n_test, D)`` imputation of ``data.test``.

    NRMSE (VAEAC appendix A.2, the default), its range-normalised variant and
    GAIN's RMSE on min-max-scaled data over numeric features; PFC over
    categorical features. A metric whose feature kind the dataset lacks is omitted.

    Normalisers (std, range) are the feature's statistics over the whole table
    (complete cases), not over the test rows: they describe the feature, are the
    same for every split and seed, and stay defined for sparse features that a
    small test split can see as constant (Yeast's ``pox``). Under the
    transductive protocol this is exactly the VAEAC authors' evaluation code
    (``gt.std()`` over the rows they impute, i.e. all of them).

    Image modalities (VSAE appendix C.2/C.3, Tables 4-5): ``mse_<modality>``, the squared error
    per pixel on the ``[0, 1]`` scale (value / intensity_max) over the test rows whose modality is
    hidden, and ``mse``, their sum over the image modalities (the "bimodal" or "sum" error; an
    image's own MSE when the other modality is a label, scored by PFC).
    """
    preds = torch.from_numpy(data.transform.decode(imputed))  # (n_test, d) original units
    truth = torch.from_numpy(data.test_truth)  # (n_test, d)
    held_out = torch.from_numpy(data.test_held_out)  # (n_test, d)
    if not held_out.any():
        raise ValueError("the mask hid no test entry: nothing to score")
    schema = data.dataset.schema
    out: dict[str, float] = {}
    numeric = list(schema.numeric_indices)
    if numeric and held_out[:, numeric].any():
        args = (preds[:, numeric], truth[:, numeric], held_out[:, numeric])
        reference = torch.from_numpy(data.dataset.values[:, numeric])  # (n, k) the whole table
        for name in NUMERIC_METRICS:
            out[name] = _computed(METRICS[name].factory(len(numeric), reference=reference), *args)
    categorical = list(schema.categorical_indices)
    if categorical and held_out[:, categorical].any():
        codes = (preds[:, categorical].round().long(), truth[:, categorical].long(), held_out[:, categorical])
        out["pfc"] = _computed(METRICS["pfc"].factory(len(categorical)), *codes)
    out.update(image_errors(preds, truth, held_out, schema))
    out["test_missing_ratio"] = float(np.mean(data.test_held_out))
    return out


def image_errors(preds: torch.Tensor, truth: torch.Tensor, held_out: torch.Tensor, schema) -> dict[str, float]:
    """``mse_<modality>`` per image modality hidden in some test row, and ``mse``, their sum."""
    images = [(name, list(members)) for name, members in schema.modality_groups if schema.features[members[0]].is_pixel]
    if not images:
        return {}
    columns = [j for _, members in images for j in members]
    scale = torch.tensor([schema.features[j].intensity_max for j in columns], dtype=torch.float64)  # (p,)
    groups, start = [], 0
    for _, members in images:
        groups.append(range(start, start + len(members)))
        start += len(members)
    hidden = held_out[:, [members[0] for _, members in images]]  # (n, M_img)
    metric = METRICS["modality_mse"].factory(groups)
    metric.update(preds[:, columns] / scale, truth[:, columns] / scale, hidden)
    errors = metric.compute().reshape(-1)  # (M_img,): torchmetrics returns one modality's error as a scalar
    out = {f"mse_{name}": float(e) for (name, _), e in zip(images, errors) if torch.isfinite(e)}
    out["mse"] = sum(out.values())
    return out
