"""Why mrVAE's generations stay at chance on PolyMNIST (results/polymnist.md): where its factors go, epoch by epoch.

``benchmarks/polymnist.py`` found mrVAE's x_0 at chance coherence even when x_0 itself is given, and its
imputation of x_0 worse than the per-pixel mean image, where MoPoE-VAE with the same networks learns. This
script trains both on the same small slice of vanilla PolyMNIST (the first ``--train-rows`` training tuples,
complete; ``vsae`` protocol split; ``--epochs`` epochs; latent 32; convolutional networks; each model's
defaults otherwise) and, after every epoch, reads on the validation rows:

* for mrVAE, the factors each shared subspace takes (n_A after truncation, :meth:`MrVAE.relate`), summed by
  subset size, and the factors left private to each modality; and the parts of its objective (Definition 3,
  eq. 4): reconstruction, KL of the factors, of the counts, of the selections;
* for both, the squared error per pixel of x_0 reconstructed from x_0 alone and imputed from the other four,
  against the training per-pixel mean image.

It writes ``<out>.md`` with the tables and the reading of them that the numbers support.

    python benchmarks/mrvae_collapse.py --data-dir /tmp/polymnist-data --out benchmarks/results/mrvae_collapse
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).parent))

from polymnist import VERSIONS, check_data_dir, first_rows, make_splits, modality_columns  # noqa: E402

from imputebench.data.datamodule import TableDataModule  # noqa: E402
from imputebench.data.sources import load_dataset  # noqa: E402
from imputebench.data.table import Table  # noqa: E402
from imputebench.models.base import ImputerModule  # noqa: E402
from imputebench.models.registry import get_model  # noqa: E402
from imputebench.models.training import trainer_for  # noqa: E402
from imputebench.runner.provenance import git_commit  # noqa: E402

MODELS = ("mrvae", "mopoe")
PROBE_ROWS = 500  # validation rows read after every epoch


@torch.no_grad()
def x0_errors(model: ImputerModule, table: Table, mean_image: torch.Tensor) -> dict[str, float]:
    """Squared error per pixel of x_0 from x_0 alone and from x_1..x_4, and of the mean image, on ``table``."""
    x, _ = table.rows(slice(0, PROBE_ROWS))  # (n, D) complete
    cols = modality_columns(table.schema, 0)
    truth = x[:, cols]  # (n, P0)
    errors = {"x_0 error (mean image)": float(((mean_image - truth) ** 2).mean())}
    for label, inputs in (("x_0 error from x_0", (0,)), ("x_0 error from x_1..x_4", (1, 2, 3, 4))):
        given = torch.zeros(len(table.schema.modality_groups), dtype=torch.bool)  # (M,)
        given[list(inputs)] = True
        observed = model.layout.expand_modalities(given).expand_as(x)  # (n, D)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            errors[label] = float(((model.impute_batch(x * observed, observed)[:, cols] - truth) ** 2).mean())
    return errors


@torch.no_grad()
def mrvae_structure(model: ImputerModule, table: Table) -> dict[str, float]:
    """Mean factors per row taken by the shared subspaces of each size, and left private to each modality."""
    x, observed = table.rows(slice(0, PROBE_ROWS))  # (n, D) each
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        parts = model.relate(x * observed, observed)
        losses = model.loss(x, observed)
    shared = parts["shared"].float().mean(0)  # (S,) mean n_A
    row: dict[str, float] = {}
    for size in sorted(set(model.sizes), reverse=True):
        row[f"n_A, |A|={size}"] = float(sum(shared[s] for s, k in enumerate(model.sizes) if k == size))
    for m, value in enumerate(parts["private"].sum(-1).mean(0).tolist()):
        row[f"private x_{m}"] = value
    row.update({name: float(losses[name]) for name in ("rec", "kl", "kl_counts", "kl_select")})
    return row


class Probe(L.Callback):
    """After every training epoch, the rows above on the validation table, in eval mode."""

    def __init__(self, table: Table, mean_image: torch.Tensor) -> None:
        self.table, self.mean_image, self.rows = table, mean_image, []

    def on_train_epoch_end(self, trainer: L.Trainer, module: ImputerModule) -> None:
        module.eval()
        row = {"epoch": trainer.current_epoch}
        if module.name == "mrvae":
            row.update(mrvae_structure(module, self.table))
        row.update(x0_errors(module, self.table, self.mean_image))
        self.rows.append(row)
        module.train()


def table_lines(rows: list[dict[str, float]]) -> list[str]:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---:|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[k]:.0f}" if k == "epoch" else f"{row[k]:.4g}" for k in keys) + " |")
    return lines


def reading(probes: dict[str, list[dict[str, float]]], latent: int) -> list[str]:
    """What the numbers say, each sentence computed from them."""
    mr, mo = probes["mrvae"][-1], probes["mopoe"][-1]
    largest = max(k for k in mr if k.startswith("n_A"))
    top = max((k for k in mr if k.startswith("n_A")), key=lambda k: mr[k])
    lines = [
        f"- After the last epoch the shared subspaces of {top.split(', ')[1]} hold {mr[top]:.1f} of each member's "
        f"{latent} factors on average ({largest.split(', ')[1]}: {mr[largest]:.1f}); the factors left private are "
        + ", ".join(f"{mr[f'private x_{m}']:.1f}" for m in range(5)) + " for x_0..x_4.",
        f"- mrVAE's reconstruction term is {probes['mrvae'][0]['rec']:.0f} after the first epoch and {mr['rec']:.0f} "
        f"after the last; its KL of the factors {probes['mrvae'][0]['kl']:.0f} -> {mr['kl']:.0f}, of the counts "
        f"{mr['kl_counts']:.0f}, of the selections {mr['kl_select']:.0f} (nats per tuple).",
        f"- x_0 from x_0 alone: mrVAE {mr['x_0 error from x_0']:.4f}, MoPoE {mo['x_0 error from x_0']:.4f}, the mean "
        f"image {mr['x_0 error (mean image)']:.4f}; x_0 from the other four: mrVAE {mr['x_0 error from x_1..x_4']:.4f}, "
        f"MoPoE {mo['x_0 error from x_1..x_4']:.4f}.",
    ]
    if mr["x_0 error from x_0"] >= mr["x_0 error (mean image)"] > mo["x_0 error from x_0"]:
        lines.append("- mrVAE does not even reconstruct x_0 from x_0 better than the mean image, where MoPoE with the "
                     "same encoder and decoder does: the loss of information is in the relational layer between them, "
                     "not in the networks or the budget alone.")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/polymnist-data"))
    parser.add_argument("--train-rows", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mrvae_collapse"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started, t0 = datetime.now(UTC), time.perf_counter()
    commit = git_commit()  # the code that runs, "+dirty" if changed
    dataset = load_dataset(VERSIONS["vanilla"], check_data_dir(args.data_dir))
    splits = make_splits(first_rows(dataset, args.train_rows, 500), args.seed)
    train_x, _ = splits.train.rows(slice(None))
    mean_image = train_x[:, modality_columns(splits.train.schema, 0)].mean(0)  # (P0,)
    config = dict(latent_dim=32, image_networks="conv", max_epochs=args.epochs, patience=args.epochs, select_on="loss")
    probes = {}
    for name in MODELS:
        model = get_model(name)(seed=args.seed, **config)
        probe = Probe(splits.validation.table, mean_image)
        datamodule = TableDataModule(splits.train, splits.validation, train_complete=splits.train)
        trainer_for(model, datamodule, callbacks=[probe]).fit(model, datamodule)
        probes[name] = probe.rows
        print(f"{name}: {probe.rows[-1]}", flush=True)
    command = "python " + shlex.join(["benchmarks/mrvae_collapse.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        "# mrVAE on PolyMNIST: where its factors go",
        "",
        f"Written by `benchmarks/mrvae_collapse.py` at {started:%Y-%m-%d %H:%M} UTC; numbers unedited.",
        "",
        f"- **Command**: `{command}`",
        f"- **Commit**: `{commit}`",
        f"- **Hardware**: {platform.processor() or platform.machine()}, {args.threads} torch threads; torch "
        f"{torch.__version__}. Wall time {time.perf_counter() - t0:.0f} s.",
        f"- **Budget**: vanilla PolyMNIST, the first {args.train_rows} training tuples (complete, 4:1 training and "
        f"validation), {args.epochs} epochs, seed {args.seed}, latent 32, convolutional networks, the models' defaults "
        f"otherwise (temperature 1, beta 1, Adam 1e-3, batch 100). Read on {PROBE_ROWS} validation rows after each epoch.",
        "",
        "## mrVAE, after each epoch",
        "",
        "n_A: mean factors per tuple that the shared subspaces of that size take (each member gives that many);",
        "private: factors left to the modality; rec, kl, kl_counts, kl_select: the terms of eq. 4 (nats per tuple);",
        "errors: squared error per pixel of x_0 in [0, 1].",
        "",
        *table_lines(probes["mrvae"]),
        "",
        "## MoPoE-VAE, after each epoch (same networks and budget)",
        "",
        *table_lines(probes["mopoe"]),
        "",
        "## Reading",
        "",
        *reading(probes, 32),
        "",
        "The mechanism, as we read it: a factor shared by A costs its KL once instead of once per member, so the",
        "KL terms reward sharing; but what the decoder of x_j receives at a shared factor is the product of experts",
        "of whichever factors the other members' Gumbel-perturbed, nearly uniform selections put at the same rank,",
        "so the more is shared, the more of x_j's own code is replaced by a mixture of unrelated factors, and the",
        "reconstruction cannot improve; the selection KL against the uniform assignment (Definition 2) resists",
        "the peaked weights that would make the pairing consistent. The paper gives no temperature, schedule or",
        "initialisation that would avoid this (appendix E); our reading of it is in `models/mrvae.py`.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
