"""Seconds per epoch and the training step's achieved FLOP rate against a plain fp32 matmul.

For each (model, dataset): one full ``fit`` epoch budget (training + validation, as the
runner does) timed per epoch, and the training step's FLOPs counted once with
``torch.utils.flop_counter.FlopCounterMode`` (forward + backward of ``loss``; Adam's
elementwise update is not counted). The achieved rate is FLOPs per step x steps / training
seconds; it is compared with the rate of a plain ``(n, n) @ (n, n)`` fp32 matmul measured in
the same process on the same threads. A ratio near 1 means the step is bound by arithmetic;
a small one means Python, Lightning or per-batch host work dominates.

    python benchmarks/flop_rate.py --models vaeac --datasets yeast,whitewine,mushroom \\
        --epochs 5 --threads 2 --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.models.registry import get_model
from imputebench.runner.presets import dataset_family, family_presets


def matmul_rate(n: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of a plain fp32 ``(n, n) @ (n, n)`` matmul (2 n^3 FLOPs), best of ``repeats``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def step_flops(cls, config: dict, train) -> int:
    """FLOPs of one training step (forward + backward of ``loss``) on a full batch."""
    model = cls(seed=0, **config)
    model.build_networks(train.schema)
    model.train()
    b = model.cfg.batch_size
    x, observed = train.x[:b], train.observed[:b]
    with FlopCounterMode(display=False) as counter:
        model.loss(x * observed, observed)["loss"].backward()
    return counter.get_total_flops()


def timed_fit(cls, config: dict, data, train) -> tuple[float, float, int, int]:
    """(seconds per epoch incl. validation, training seconds per epoch, steps per epoch, epochs)."""
    model = cls(seed=0, **config)
    clock = {"train": 0.0}
    epoch_start, validation_start = model.on_train_epoch_start, model.on_validation_epoch_start  # bound hooks

    def on_train_epoch_start() -> None:
        clock["t0"] = time.perf_counter()
        epoch_start()

    def on_validation_epoch_start() -> None:  # validation runs after the epoch's training steps
        clock["train"] += time.perf_counter() - clock["t0"]
        validation_start()

    # instance attributes shadow the hooks; Lightning looks hooks up by getattr
    model.on_train_epoch_start, model.on_validation_epoch_start = on_train_epoch_start, on_validation_epoch_start
    start = time.perf_counter()
    model.fit(train, data.validation)
    total = time.perf_counter() - start
    epochs = max(model.epochs_trained, 1)
    steps = -(-train.n_rows // model.cfg.batch_size)
    return total / epochs, clock["train"] / epochs, steps, epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vaeac")
    parser.add_argument("--datasets", default="yeast,whitewine,mushroom")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--protocol", default="vaeac")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_rate()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 1024^3 matmul: {peak / 1e9:.1f} GFLOP/s\n")
    print("| model | dataset | rows (train) | s/epoch (train + val) | s/epoch (train) | GFLOP/step | achieved GFLOP/s | fraction of matmul |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets.split(","):
        data = prepare(load_dataset(dataset, args.data_dir), get_protocol(args.protocol), "mcar", 0.5, 0)
        preset = family_presets()[dataset_family(data.train.schema)]
        for name in args.models.split(","):
            cls = get_model(name)
            train = data.train_complete if cls.trained_on_complete_data else data.train
            config = {k: v for k, v in preset.items() if k in cls.config_fields() and k != "lr"}
            config.update(max_epochs=args.epochs, patience=args.epochs + 1)
            flops = step_flops(cls, config, train)
            per_epoch, train_per_epoch, steps, _ = timed_fit(cls, config, data, train)
            achieved = flops * steps / train_per_epoch
            print(f"| {name} | {dataset} | {train.n_rows} | {per_epoch:.3f} | {train_per_epoch:.3f} | "
                  f"{flops / 1e9:.4f} | {achieved / 1e9:.2f} | {achieved / peak:.1%} |", flush=True)


if __name__ == "__main__":
    main()
