"""Why VSAE imputes like the mean: its parts switched off one at a time, and the change that makes it learn.

The project's faithful VSAE (models/vsae.py; papers/000) scored like mean imputation on the VSAE tables (yeast
NRMSE 1.002 against the mean's 1.002; results/vsae-deep1-mcar50.md). This script trains, on the same splits and
masks, VSAE and variants that each change one part of it:

* ``no mask decoder``: the mask term of eq. (4) dropped and the data decoder no longer conditioned on the mask
  decoder's output (zeros in its place);
* ``first stage only``: the warm-up never ends: no generation pass, no unobserved term (B.3);
* ``second stage from the start``: no warm-up (``warmup_epochs`` 0);
* ``collective proposal``: every latent from the multimodal encoder q_psi(z | x_o, m), none from the unimodal
  encoders (eq. 3 without its selective first case);
* ``prior for unobserved``: an unobserved feature's latent from the prior N(0, I) instead of q_psi;
* ``observed features hidden``: in training, each observed feature hidden from the encoders with probability
  0.2 (VAEAC's training masks, papers/002 A.2) and still scored on its true value, so that q_psi learns from
  real targets (VSAE's ``shown_to_encoders`` hook);
* ``zero fill``: unobserved entries enter the multimodal encoder as zeros (the paper's choice for images)
  instead of standard normal noise (its choice for tables, B.2);
* ``latent 1 per feature`` and ``latent 2 per feature`` (the long version's C.1) instead of the short version's 20;
* ``zero fill + latent 1`` and ``zero fill + latent 2``: both changes together;

and mean imputation. Beside each error the table gives the KL term of the last trained epoch (nats per row,
mean over seeds): near 0, the posterior has collapsed and the decoder ignores its latent. Each trains at the VSAE schedule of configs/training.yaml (Adam, lr 1e-3 numerical / 1e-2
categorical, up to 1000 epochs, the best validation epoch kept, early stop after 100 without a better one), MCAR
0.5, the ``vsae`` protocol, seeds 0, 1, 2, on yeast and glass (numerical; NRMSE) and zoo (PFC over its Boolean
features). It writes ``benchmarks/results/vsae_ablation.md``: per variant and table, mean ± std over seeds,
the ratio to mean imputation's error on the same seeds, and how many seeds beat the mean.

    python benchmarks/vsae_ablation.py --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.evaluate import score
from imputebench.models.registry import get_model
from imputebench.models.vsae import VSAE
from imputebench.nn.elbo import clamp_logvar
from imputebench.runner.presets import config_resolver
from imputebench.runner.provenance import git_commit

DATASETS = {"yeast": "nrmse", "glass": "nrmse", "zoo": "pfc"}


class NoMaskDecoder(VSAE):
    """VSAE without the mask decoder: no mask term, and the data decoder reads zeros where the mask went."""

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask_logits = self.mask_decoder(z)  # (b, M), outside the objective below
        return mask_logits, self.data_decoder(torch.cat([z, torch.zeros_like(mask_logits)], -1))

    def loss(self, x: torch.Tensor, observed: torch.Tensor) -> dict[str, torch.Tensor]:
        out = super().loss(x, observed)
        return {**out, "loss": out["loss"] - out["rec_mask"]}  # the negated objective without -log p(m | z)


class CollectiveProposal(VSAE):
    """Every latent from the multimodal encoder q_psi(z | x_o, m)."""

    def posterior(self, x: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.layout.modality_mask(observed)  # (b, M)
        mu, logvar = self.multimodal(x, observed, m.float()).chunk(2, -1)  # (b, M, L) each
        return mu, clamp_logvar(logvar)


class PriorForUnobserved(VSAE):
    """An unobserved feature's latent from the prior N(0, I) instead of q_psi."""

    def posterior(self, x: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.layout.modality_mask(observed).unsqueeze(-1)  # (b, M, 1)
        mu, logvar = self.unimodal(x).chunk(2, -1)  # (b, M, L) each
        return torch.where(m, mu, 0.0), torch.where(m, clamp_logvar(logvar), 0.0)


class ObservedFeaturesHidden(VSAE):
    """Each observed feature of a training row hidden from the encoders with probability 0.2, still scored."""

    def shown_to_encoders(self, observed: torch.Tensor) -> torch.Tensor:
        present = self.layout.modality_mask(observed)  # (b, M)
        hidden = present & (torch.rand(present.shape, device=observed.device) < 0.2)  # (b, M)
        return observed & ~self.layout.expand_modalities(hidden)  # (b, D)


#: label -> (class, config overrides)
VARIANTS = {
    "vsae (faithful)": (VSAE, {}),
    "no mask decoder": (NoMaskDecoder, {}),
    "first stage only": (VSAE, {"warmup_epochs": 10**6}),
    "second stage from the start": (VSAE, {"warmup_epochs": 0}),
    "collective proposal": (CollectiveProposal, {}),
    "prior for unobserved": (PriorForUnobserved, {}),
    "observed features hidden": (ObservedFeaturesHidden, {}),
    "zero fill": (VSAE, {"missing_fill": "zeros"}),
    "latent 1 per feature": (VSAE, {"latent_per_feature": 1}),
    "latent 2 per feature": (VSAE, {"latent_per_feature": 2}),
    "zero fill + latent 1": (VSAE, {"missing_fill": "zeros", "latent_per_feature": 1}),
    "zero fill + latent 2": (VSAE, {"missing_fill": "zeros", "latent_per_feature": 2}),
}


def run(data_dir: Path | None, seeds: list[int], log=print) -> tuple[dict, dict]:
    """Scores per (variant, dataset), one per seed, and mean imputation's as ``("mean", dataset)``; and the KL
    term of each fit's last epoch per (variant, dataset)."""
    scores: dict[tuple[str, str], list[float]] = {}
    kls: dict[tuple[str, str], list[float]] = {}
    for name, metric in DATASETS.items():
        dataset = load_dataset(name, data_dir)
        config = config_resolver({name: dataset.schema})("vsae", name)  # the VSAE schedule for this table
        for seed in seeds:
            data = prepare(dataset, get_protocol("vsae"), "mcar", 0.5, seed)
            mean = get_model("mean")(seed=seed).fit(data.train, data.validation)
            scores.setdefault(("mean", name), []).append(score(data, mean.impute(data.test))[metric])
            for label, (cls, overrides) in VARIANTS.items():
                start = time.perf_counter()
                model = cls(seed=seed, **{**config, **overrides}).fit(data.train, data.validation)
                value = score(data, model.impute(data.test))[metric]
                scores.setdefault((label, name), []).append(value)
                kls.setdefault((label, name), []).append(model.epoch_history()[-1]["train_kl"])
                log(f"{name} seed {seed} {label}: {metric} {value:.4f} ({time.perf_counter() - start:.0f} s, "
                    f"best epoch {model.last_fit.best_epoch} of {len(model.last_fit.epochs)}, last KL {kls[(label, name)][-1]:.3g})")
    return scores, kls


def write(scores: dict[tuple[str, str], list[float]], kls: dict[tuple[str, str], list[float]], out: Path, command: str,
          commit: str, started: datetime, wall_s: float, seeds: list[int]) -> None:
    lines = [
        "# VSAE ablation: which part keeps it at mean imputation, and what makes it learn",
        "",
        f"Written by `benchmarks/vsae_ablation.py` at {started:%Y-%m-%d %H:%M} UTC; numbers unedited. Method: the script's docstring.",
        "",
        f"- **Command**: `{command}`",
        f"- **Commit**: `{commit}`; **hardware**: {platform.machine()}, {torch.get_num_threads()} torch threads; "
        f"torch {torch.__version__}; **wall time** {wall_s / 60:.1f} min.",
        f"- **Data**: yeast, glass (NRMSE), zoo (PFC); `vsae` protocol, MCAR 0.5, seeds {seeds} (a seed fixes the split and "
        "the mask for every variant).",
        "",
        "Each cell: mean ± std over seeds; the ratio to mean imputation's error (mean over seeds of the per-seed ratio); "
        "on how many seeds the variant beats the mean; and the KL term of the last trained epoch (nats per row, mean "
        "over seeds). Lower error is better.",
        "",
        "| Variant | " + " | ".join(f"{n} ({m.upper()})" for n, m in DATASETS.items()) + " |",
        "|---|" + "---|" * len(DATASETS),
    ]
    ratios: dict[str, list[float]] = {}
    for label in ["mean", *VARIANTS]:
        cells = []
        for name in DATASETS:
            values, base = np.array(scores[(label, name)]), np.array(scores[("mean", name)])
            ratio = float(np.mean(values / base))
            ratios.setdefault(label, []).append(ratio)
            wins = int((values < base).sum())
            cells.append(f"{values.mean():.4f} ± {values.std(ddof=1):.4f}" + ("" if label == "mean" else
                         f" ({ratio:.3f} x mean; {wins}/{len(values)} seeds better; KL {np.mean(kls[(label, name)]):.3g})"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    learners = [label for label in VARIANTS
                if all((np.array(scores[(label, n)]) < np.array(scores[("mean", n)])).all() for n in DATASETS)]
    faithful = ratios["vsae (faithful)"]
    lines += ["", "## Reading", ""]
    lines.append("- The faithful VSAE's error is " + ", ".join(f"{r:.3f}" for r in faithful)
                 + " x the mean's on " + ", ".join(DATASETS) + ".")
    lines.append("- Variants that beat mean imputation on every seed of every table: "
                 + (", ".join(learners) if learners else "none") + ".")
    for label in VARIANTS:
        if label != "vsae (faithful)":
            change = [r - f for r, f in zip(ratios[label], faithful, strict=True)]
            lines.append(f"- {label}: ratio to the mean " + ", ".join(f"{r:.3f}" for r in ratios[label])
                         + " (against the faithful model: " + ", ".join(f"{c:+.3f}" for c in change) + ").")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/vsae_ablation.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started, t0 = datetime.now(UTC), time.perf_counter()
    commit = git_commit()  # the code that runs, "+dirty" if changed
    seeds = list(range(args.seeds))
    scores, kls = run(args.data_dir, seeds, log=lambda line: print(line, flush=True))
    command = "python benchmarks/vsae_ablation.py" + (f" --data-dir {args.data_dir}" if args.data_dir else "") + \
        (f" --seeds {args.seeds}" if args.seeds != 3 else "")
    write(scores, kls, args.out, command, commit, started, time.perf_counter() - t0, seeds)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
