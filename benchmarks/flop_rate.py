"""Seconds per epoch and the training step's achieved FLOP rate against a plain fp32 matmul.

For each (model, dataset): one full ``fit`` of ``--epochs`` epochs (training + validation, as
the runner does) timed per epoch, with the median epoch reported, and the training step's FLOPs
counted once on a full batch with ``torch.utils.flop_counter.FlopCounterMode`` (forward +
backward of ``loss``; Adam's elementwise update is not counted but its time is). The achieved
rate is FLOPs per row x the rows the epoch's steps trained on / the epoch's training seconds
(Lightning's loop, batching, forward, backward and Adam). It is compared with the sustained
rate of a plain ``(n, n) @ (n, n)`` fp32 matmul, back to back for two seconds in the same
process on the same threads: both are FLOPs over elapsed seconds of a long run. A ratio near 1
means the step is bound by arithmetic; a small one means Python, Lightning or per-batch host
work dominates. The header also prints the fastest single 1024^3 product, for a reader who
prefers that reference.

The last column is the ceiling for that ratio on this machine: the step's own matrix products
(every ``mm`` / ``addmm`` / ``bmm`` of one forward + backward, recorded with their shapes and
strides) replayed back to back on fresh tensors, best of 20, as a fraction of the fastest single
1024^3 product (best against best). Small products (a batch of 64 rows) run below the large
matmul's rate even with nothing around them.

    python benchmarks/flop_rate.py --models vaeac --datasets yeast,whitewine,mushroom \\
        --epochs 5 --threads 1 --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.models.registry import get_model
from imputebench.runner.presets import config_resolver


def matmul_rate(n: int = 1024, seconds: float = 2.0) -> tuple[float, float]:
    """FLOP/s of a plain fp32 ``(n, n) @ (n, n)`` matmul (2 n^3 FLOPs each): (sustained, best).

    Sustained: every FLOP over every second of back-to-back products for ``seconds``, the same
    statistic as the training epochs' rate it is compared with. Best: the fastest single product.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    times: list[float] = []
    while sum(times) < seconds:
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 * len(times) / sum(times), 2 * n**3 / min(times)


GEMMS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default}


class GemmRecorder(TorchDispatchMode):
    """Records each matrix product's op and its tensor arguments' shapes and strides."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in GEMMS:
            self.calls.append((func, [(a.shape, a.stride()) if isinstance(a, torch.Tensor) else a for a in args]))
        return func(*args, **(kwargs or {}))


def step_flops(cls, config: dict, train) -> tuple[int, float, int]:
    """FLOPs of one training step (forward + backward of ``loss``) on a full batch, the seconds its
    matrix products alone take when replayed (best of 20), and the batch size."""
    model = cls(seed=0, **config)
    model.build_networks(train.schema)
    model.train()
    b = model.cfg.batch_size
    x, observed = train.x[:b], train.observed[:b]
    with FlopCounterMode(display=False) as counter, GemmRecorder() as recorder:
        model.loss(x * observed, observed)["loss"].backward()
    calls = [
        (func, [torch.empty_strided(*a).normal_() if isinstance(a, tuple) else a for a in args])
        for func, args in recorder.calls
    ]
    best = float("inf")
    for _ in range(21):  # the first is a warm-up
        start = time.perf_counter()
        for func, args in calls:
            func(*args)
        best = min(best, time.perf_counter() - start)
    return counter.get_total_flops(), best, b


def timed_fit(cls, config: dict, data, train) -> tuple[float, float, float, int]:
    """Per-epoch medians of (seconds incl. validation, training seconds, rows trained on), and epochs.

    The rows are counted as the training steps receive them (a short last batch, or one topped
    up to a full batch, counts as what it is). Medians over epochs leave out the first epoch's
    warm-up (allocator, kernel selection), which a real run of 50-500 epochs amortises.
    """
    model = cls(seed=0, **config)
    clock: dict[str, float] = {}
    epochs: list[dict[str, float]] = []
    epoch_start, validation_start, train_step = (
        model.on_train_epoch_start, model.on_validation_epoch_start, model.training_step  # bound hooks
    )

    def on_train_epoch_start() -> None:
        if "t0" in clock:  # the previous epoch ends where this one starts
            epochs.append({"total": time.perf_counter() - clock["t0"], **clock})
        clock.update(t0=time.perf_counter(), rows=0.0)
        epoch_start()

    def training_step(batch, batch_idx=0):
        clock["rows"] += batch[0].shape[0]
        return train_step(batch, batch_idx)

    def on_validation_epoch_start() -> None:  # validation runs after the epoch's training steps
        clock["train"] = time.perf_counter() - clock["t0"]
        validation_start()

    # instance attributes shadow the hooks; Lightning looks hooks up by getattr
    model.on_train_epoch_start, model.on_validation_epoch_start = on_train_epoch_start, on_validation_epoch_start
    model.training_step = training_step
    model.fit(train, data.validation)
    epochs.append({"total": time.perf_counter() - clock["t0"], **clock})
    return (
        statistics.median(e["total"] for e in epochs),
        statistics.median(e["train"] for e in epochs),
        statistics.median(e["rows"] for e in epochs),
        len(epochs),
    )


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
    peak, best = matmul_rate()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 1024^3 matmul: {peak / 1e9:.1f} GFLOP/s "
          f"sustained over 2 s ({best / 1e9:.1f} GFLOP/s for the fastest single product)\n")
    columns = [
        "model", "dataset", "rows (train)", "rows/epoch", "s/epoch (train + val)", "s/epoch (train)", "GFLOP/step",
        "achieved GFLOP/s", "fraction of matmul", "of the fastest product", "its products alone",
    ]
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    for dataset in args.datasets.split(","):
        table = load_dataset(dataset, args.data_dir)
        data = prepare(table, get_protocol(args.protocol), "mcar", 0.5, 0)
        config_for = config_resolver({dataset: table.schema}, max_epochs=args.epochs, patience=args.epochs + 1)
        for name in args.models.split(","):
            cls = get_model(name)
            train = data.train_complete if cls.trained_on_complete_data else data.train
            config = config_for(name, dataset)  # the runner's configuration, with the epochs set here
            flops, gemm_seconds, batch = step_flops(cls, config, train)
            per_epoch, train_per_epoch, rows, _ = timed_fit(cls, config, data, train)
            achieved = flops / batch * rows / train_per_epoch  # FLOPs scale with the rows of a batch
            print(f"| {name} | {dataset} | {train.n_rows} | {rows:.0f} | {per_epoch:.3f} | {train_per_epoch:.3f} | "
                  f"{flops / 1e9:.4f} | {achieved / 1e9:.2f} | {achieved / peak:.1%} | {achieved / best:.1%} | "
                  f"{flops / gemm_seconds / best:.1%} |", flush=True)


if __name__ == "__main__":
    main()
