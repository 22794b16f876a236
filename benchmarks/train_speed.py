"""Training throughput of the deep imputers: Lightning ``fit`` versus a bare PyTorch loop.

For each (model, dataset) the same work is timed two ways:

* **Lightning** -- the model's own ``fit(train, val=None)``, which is the runner's path:
  ``trainer_for`` (the selection callbacks on the training loss, early stopping, the
  divergence check, the epoch-history logger) and ``trainer.fit`` on a DataModule, with
  ``max_epochs=N`` and ``patience > N`` (so early stopping never fires). Training time is the
  span from Lightning's ``on_train_start`` to ``on_train_end`` hook (the N epochs, with the
  callbacks' and loggers' work); the rest of ``fit`` (network construction, ``Trainer``
  set-up, loading the best weights) is reported as ``setup``.
* **bare** -- a freshly built model with the same seed, the same batches over the same
  device-resident tensors (the model's own ``train_batches``), its own Adam optimisers
  (``configure_optimizers``) and its own ``training_step`` called in a plain loop, with the
  optimisers handed over directly and ``manual_backward`` as a plain ``backward``: the same
  per-step work (GAIN's and MisGAN's player schedules included) without the Trainer, its
  hooks, callbacks, loggers and optimiser wrappers. The loss parts are read once per epoch,
  as ``on_train_epoch_end`` does. The model is in train mode.

Both paths draw the same batches and random numbers, so their last-epoch mean losses
must agree (column ``same loss``): evidence that the timed work is identical.

Objectives that depend on the epoch or the step read the trainer, which a bare loop lacks
(``current_epoch`` is 0 there), so they are pinned in both paths: VSAE is run twice with its
stage fixed, ``warmup_epochs=0`` (second stage: generation pass + x_u term) and
``warmup_epochs=10**9`` (warm-up stage); HI-VAE's Gumbel-softmax temperature is held at
its start (``tau_decay=0``) and MVAE's KL weight at 1 (``annealing_epochs=0``).

Each path is warmed up with one epoch, then timed ``--repeats`` times, alternating which
path goes first; the table reports medians. samples/s = N * rows per epoch / wall seconds;
ratio = Lightning time / bare time (the target, ``within 1.15x``, is judged on wall time);
overhead = (Lightning - bare) / steps. Every time is also taken as process CPU time, which
leaves out time lost to other processes: with ``--threads 1`` it is the steadier figure on a
shared machine (with more threads it also counts OpenMP workers spinning).

    python benchmarks/train_speed.py --datasets yeast,mushroom \\
        --models ae,vae,cvae_mask,cvae_data,vsae,vaeac,miwae,hivae,mvae,gain,gain_vaeac,misgan \\
        --epochs 10 --repeats 5 --threads 1 \\
        --data-dir ../shared/datasets --out benchmarks/results/train_speed_1thread.md
"""

from __future__ import annotations

import argparse
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import lightning
import torch

from imputebench.data.datamodule import TableDataModule
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.models.registry import get_model
from imputebench.runner.presets import dataset_family, family_presets
from imputebench.runner.provenance import cpu_model, git_commit

TARGET = 1.15
SEED = 0
#: rows of the table: model name -> [(label, config overrides)]; VSAE once per training stage
VARIANTS = {
    "vsae": [("vsae (stage 2)", {"warmup_epochs": 0}), ("vsae (warm-up)", {"warmup_epochs": 10**9})],
    "hivae": [("hivae", {"tau_decay": 0.0})],
    "mvae": [("mvae", {"annealing_epochs": 0})],
}


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds. CPU time of the process leaves out time spent descheduled by other
    processes, so with one thread it is the steadier of the two on a shared machine."""
    return time.perf_counter(), time.process_time()


def _elapsed(start: tuple[float, float], end: tuple[float, float]) -> dict[str, float]:
    return {"seconds": end[0] - start[0], "cpu": end[1] - start[1]}


def _epoch_loss(model) -> float:
    """The epoch's mean training loss as ``on_train_epoch_end`` reads it (one evaluation per step)."""
    return float(model._sums["loss"]) / model._counts["loss"]


def lightning_run(cls, config: dict, train, epochs: int) -> dict[str, float]:
    """``fit`` for ``epochs`` epochs without validation; training timed between Lightning's hooks."""
    model = cls(seed=SEED, **config, max_epochs=epochs, patience=epochs + 1)
    marks: dict = {}

    def on_train_end() -> None:
        marks["end"] = clock()
        marks["loss"] = _epoch_loss(model)

    # instance attributes shadow the (no-op) LightningModule hooks; Lightning looks hooks up by getattr
    model.on_train_start = lambda: marks.setdefault("start", clock())
    model.on_train_end = on_train_end
    start = clock()
    model.fit(train, None)
    result = _elapsed(marks["start"], marks["end"])
    return {**result, "setup": time.perf_counter() - start[0] - result["seconds"], "loss": marks["loss"]}


def bare_run(cls, config: dict, train, epochs: int) -> dict[str, float]:
    """The same networks, batches, optimisers and training step in a plain loop."""
    model = cls(seed=SEED, **config)
    model.build_for(TableDataModule(train, None, train_complete=train))  # as ``fit`` builds it, without a Trainer
    model.train()
    optimizers = model.configure_optimizers()
    model.optimizers = lambda use_pl_optimizer=True: optimizers  # instance attributes shadow the trainer's
    model.manual_backward = lambda loss, *args, **kwargs: loss.backward(*args, **kwargs)
    batches = model.train_batches(train)
    start = clock()
    for _ in range(epochs):
        model.on_train_epoch_start()
        for i, batch in enumerate(batches):
            model.training_step(batch, i)
        loss = _epoch_loss(model)  # the once-per-epoch read of on_train_epoch_end
    return {**_elapsed(start, clock()), "setup": float("nan"), "loss": loss}


PATHS = {"lightning": lightning_run, "bare": bare_run}


def measure(cls, config: dict, train, epochs: int, repeats: int) -> dict[str, dict[str, float]]:
    """Medians over ``repeats`` alternating runs of both paths, after a one-epoch warm-up of each."""
    for run in PATHS.values():
        run(cls, config, train, 1)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in PATHS}
    for r in range(repeats):
        order = list(PATHS) if r % 2 == 0 else list(PATHS)[::-1]
        for name in order:
            runs[name].append(PATHS[name](cls, config, train, epochs))
    return {name: {key: statistics.median(run[key] for run in results) for key in results[0]}
            for name, results in runs.items()}


def environment(argv: list[str]) -> list[str]:
    cpu = cpu_model()
    return [
        f"- command: `{shlex.join(['python', *argv])}`",
        f"- commit: {git_commit()}; started {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- torch {torch.__version__}, lightning {lightning.__version__}, python {platform.python_version()}",
        f"- CPU: {cpu}; torch threads: {torch.get_num_threads()}",
    ]


def row(label: str, dataset: str, train, model, epochs: int, result: dict) -> tuple[str, float]:
    """A Markdown table row, and the Lightning overhead per step (CPU µs) for the summary."""
    batches = model.train_batches(train)
    rows_per_epoch = sum(len(x) for x, _ in batches)
    steps = epochs * len(batches)
    light, bare = result["lightning"], result["bare"]
    ratio = {k: light[k] / bare[k] for k in ("seconds", "cpu")}
    overhead_us = {k: (light[k] - bare[k]) / steps * 1e6 for k in ("seconds", "cpu")}
    same = abs(light["loss"] - bare["loss"]) <= 1e-5 * max(1.0, abs(bare["loss"]))
    cells = [label, dataset, train.n_rows, model.cfg.batch_size, len(batches),
             f"{epochs * rows_per_epoch / light['seconds']:,.0f}", f"{epochs * rows_per_epoch / bare['seconds']:,.0f}",
             f"{ratio['seconds']:.3f}", f"{ratio['cpu']:.3f}", f"{overhead_us['seconds']:,.0f}",
             f"{overhead_us['cpu']:,.0f}", f"{light['setup']:.2f}", "yes" if same else "NO",
             "yes" if ratio["seconds"] <= TARGET else "no"]
    return "| " + " | ".join(str(c) for c in cells) + " |", overhead_us["cpu"]


HEADER = ("| model | dataset | n_train | batch | batches/epoch | Lightning samples/s | bare samples/s | ratio L/bare "
          "| ratio (CPU time) | overhead µs/step | overhead µs/step (CPU) | fit setup s | same loss | within 1.15x |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="yeast,mushroom")
    parser.add_argument("--models", default="ae,vae,cvae_mask,cvae_data,vsae,vaeac,miwae,hivae,mvae,gain,gain_vaeac,misgan")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, help="one batch size for every model (default: each model's own)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice); 1 is "
                        "steadier on a shared machine, where idle OpenMP threads wait on descheduled ones")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=r".*no `val_dataloader`.*")  # fit(train, None) by design

    command = sys.argv if argv is None else ["benchmarks/train_speed.py", *argv]
    lines = ["# Training speed: Lightning vs bare PyTorch loop", "", *environment(command),
             f"- {args.epochs} epochs per run, median of {args.repeats} alternating repeats after a 1-epoch warm-up; "
             f"batch size {args.batch_size or 'of each model (column)'}; protocol vsae, MCAR 50%, seed {SEED}", "", HEADER,
             "|" + "---|" * HEADER.count(" | ") + "---|"]
    print("\n".join(lines), flush=True)
    overheads: list[float] = []
    for dataset in args.datasets.split(","):
        ds = load_dataset(dataset, args.data_dir)
        data = prepare(ds, get_protocol("vsae"), "mcar", 0.5, seed=SEED)
        preset = family_presets()[dataset_family(data.train.schema)]
        for name in args.models.split(","):
            cls = get_model(name)
            train = data.train_complete if cls.trained_on_complete_data else data.train
            for label, overrides in VARIANTS.get(name, [(name, {})]):
                config = {"lr": preset["lr"], **overrides}
                if args.batch_size:
                    config["batch_size"] = args.batch_size
                result = measure(cls, config, train, args.epochs, args.repeats)
                line, overhead = row(label, dataset, train, cls(seed=SEED, **config), args.epochs, result)
                lines.append(line)
                overheads.append(overhead)
                print(line, flush=True)
    lines += ["", f"Median Lightning overhead over the {len(overheads)} rows: "
              f"{statistics.median(overheads):,.0f} µs per step (CPU time). "
              f"Wall time of the whole run: {(time.perf_counter() - started) / 60:.1f} min."]
    print("\n".join(lines[-2:]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
