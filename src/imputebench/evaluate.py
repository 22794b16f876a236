"""Score imputations of the test split on its held-out entries only."""

from __future__ import annotations

import numpy as np
import torch

from imputebench.data.prepare import PreparedData
from imputebench.metrics import minmax_rmse, nrmse, pfc


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
        out["nrmse"] = float(nrmse(*args, normaliser="std", reference=reference))
        out["nrmse_range"] = float(nrmse(*args, normaliser="range", reference=reference))
        out["minmax_rmse"] = float(minmax_rmse(*args, reference=reference))
    categorical = list(schema.categorical_indices)
    if categorical and held_out[:, categorical].any():
        out["pfc"] = float(pfc(preds[:, categorical].round().long(), truth[:, categorical].long(), held_out[:, categorical]))
    out["test_missing_ratio"] = float(np.mean(data.test_held_out))
    return out
