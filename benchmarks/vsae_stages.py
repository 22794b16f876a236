"""VSAE's validation imputation error per epoch, to see what its two training stages do.

The VSAE paper (papers/000 B.3, papers/001 D) trains ``warmup_epochs`` without the
unobserved term of eq. (4), then adds a generation pass whose x~_u the second pass
scores. This prints the validation error (the selection score) and the loss parts
every ``--every`` epochs, on the correlated synthetic table of the tests (3 real
features driven by one factor, one categorical) or on a named dataset.

    python benchmarks/vsae_stages.py --epochs 60
    python benchmarks/vsae_stages.py --epochs 60 --warmup-epochs 1000   # first stage only
    python benchmarks/vsae_stages.py --dataset yeast --data-dir ../shared/datasets --epochs 60
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.evaluate import score
from imputebench.models.vsae import VSAE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


class TracedVSAE(VSAE):
    """VSAE that prints its validation error and mean loss parts every ``every`` epochs."""

    every = 5

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.current_epoch % self.every == 0:
            parts = {k: round(float(v) / self._steps, 3) for k, v in self._sums.items()}
            print(f"epoch {self.current_epoch:4d}  val error {float(self.selection.compute()):.4f}  {parts}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", help="a registered dataset (default: the synthetic table of the tests)")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup-epochs", type=int, default=20, help="VSAE warm-up (paper: 20; never ending: > --epochs)")
    args = parser.parse_args()
    if args.dataset:
        dataset = load_dataset(args.dataset, args.data_dir)
    else:
        from helpers import correlated_dataset

        dataset = correlated_dataset(1000)
    data = prepare(dataset, get_protocol("vsae"), "mcar", 0.5, args.seed)
    TracedVSAE.every = args.every
    model = TracedVSAE(seed=args.seed, max_epochs=args.epochs, patience=args.epochs, warmup_epochs=args.warmup_epochs)
    model.fit(data.train, data.validation)
    print("test:", {k: round(v, 4) for k, v in score(data, model.impute(data.test)).items()}, model.training_summary())


if __name__ == "__main__":
    main()
