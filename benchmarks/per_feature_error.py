"""Per-feature test error of some models on one dataset: which features drive a mean NRMSE / PFC.

Each model is fitted with the runner's configuration for it on that dataset (family presets,
the authors' per-dataset settings in ``configs/training.yaml``), on the same split and mask
as a sweep trial with the same seed; the table gives, per feature, the NRMSE (numeric: RMSE
over held-out test entries / the feature's std over the whole table, as ``evaluate.score``) or
the PFC (categorical), and the average over the features of each kind.

    python benchmarks/per_feature_error.py --dataset yeast --models mean,hivae,vaeac --seed 2 \\
        --protocol vaeac --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.metrics import nrmse, pfc
from imputebench.models.registry import get_model
from imputebench.runner.presets import config_resolver


def per_feature_errors(preds: np.ndarray, truth: np.ndarray, held_out: np.ndarray, reference: np.ndarray,
                       categorical: np.ndarray) -> np.ndarray:
    """``(d,)``: :func:`~imputebench.metrics.nrmse` (numeric, normalised by ``reference``'s std, the
    whole table, as ``evaluate.score``) or :func:`~imputebench.metrics.pfc` (categorical) of each
    feature alone, over its held-out entries; NaN where a feature has none held out."""
    p, t, h, r = (torch.from_numpy(a) for a in (preds, truth, held_out, reference))
    errors = np.full(len(categorical), np.nan)
    for j in np.flatnonzero(held_out.any(0)):  # one column at a time: the metrics average over columns
        cols = [j]
        if categorical[j]:
            errors[j] = float(pfc(p[:, cols].round().long(), t[:, cols].long(), h[:, cols]))
        else:
            errors[j] = float(nrmse(p[:, cols], t[:, cols], h[:, cols], normaliser="std", reference=r[:, cols]))
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="yeast")
    parser.add_argument("--models", default="mean,vaeac")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocol", default="vaeac")
    parser.add_argument("--mechanism", default="mcar")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    args = parser.parse_args()
    table = load_dataset(args.dataset, args.data_dir)
    data = prepare(table, get_protocol(args.protocol), args.mechanism, args.ratio, args.seed)
    config_for = config_resolver({args.dataset: table.schema})
    schema = table.schema
    categorical = np.isin(np.arange(len(schema)), list(schema.categorical_indices))
    errors = {}
    for name in args.models.split(","):
        model = get_model(name)(seed=args.seed, **config_for(name, args.dataset))
        torch.manual_seed(args.seed)
        model.fit(data.train_complete if model.trained_on_complete_data else data.train, data.validation)
        preds = data.transform.decode(model.impute(data.test))  # (n_test, d) original units
        errors[name] = per_feature_errors(preds, data.test_truth, data.test_held_out, table.values, categorical)
        print(f"{name}: {model.training_summary()}", flush=True)
    print(f"\n| feature | metric | held-out | {' | '.join(errors)} |")
    print("|---|---|---|" + "---|" * len(errors))
    for j, feature in enumerate(schema.features):
        metric = "PFC" if categorical[j] else "NRMSE"
        cells = " | ".join(f"{errors[m][j]:.3f}" for m in errors)
        print(f"| {feature.name} | {metric} | {int(data.test_held_out[:, j].sum())} | {cells} |")
    for kind, mask in (("NRMSE", ~categorical), ("PFC", categorical)):
        if mask.any():
            print(f"| average | {kind} | | {' | '.join(f'{errors[m][mask].mean():.4f}' for m in errors)} |")


if __name__ == "__main__":
    main()
