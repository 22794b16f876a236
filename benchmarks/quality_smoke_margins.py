"""How far below mean imputation each deep model comes at its quality-smoke schedule, over several seeds.

``tests/test_quality_smoke.py`` trains every deep model on a short schedule (``helpers.SMOKE_EPOCHS`` /
``SMOKE_SCHEDULES``) and requires its NRMSE and PFC below a fraction of the mean's (the mode's). Those
fractions come from this script: for each model and seed (the table, its split and mask, and the model's
initialisation all drawn with that seed) it records the ratio model / mean of each metric on the test
split and the fit's CPU seconds, and suggests as threshold the point halfway between the worst seed's
ratio and 1 (mean imputation), rounded up to 0.01. A model that imputes the mean sits at 1 and fails; a
working model clears its threshold by half its worst measured margin. A metric whose worst ratio is not
below 1 gets no threshold: the model does not beat the mean on it at that schedule, and the smoke does
not check it; a model with no threshold at all is left out of the smoke, which says why.

One torch thread, one process; CPU seconds are process time, steadier than wall time on a shared machine.

    python benchmarks/quality_smoke_margins.py --seeds 5 --out benchmarks/results/quality_smoke_margins.md
"""

from __future__ import annotations

import argparse
import math
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from imputebench.models.registry import is_classical, model_names
from imputebench.runner.provenance import cpu_model, git_commit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import SMOKE_EPOCHS, SMOKE_SCHEDULES, fit_and_score, smoke_data, smoke_model  # noqa: E402

METRICS = ("nrmse", "pfc")


def threshold(worst: float) -> float | None:
    """Halfway between ``worst`` (a ratio to the mean) and 1, rounded up to 0.01; None when ``worst >= 1``."""
    return math.ceil(100 * (worst + 1) / 2) / 100 if worst < 1 else None


def measure(name: str, seeds: list[int]) -> tuple[dict[str, list[float]], list[float]]:
    """``{metric: [ratio per seed]}`` and the CPU seconds of each seed's fit and scoring."""
    ratios: dict[str, list[float]] = {m: [] for m in METRICS}
    seconds = []
    for seed in seeds:
        data = smoke_data(seed)
        start = time.process_time()
        got, mean = fit_and_score(smoke_model(name, data, seed), data)
        seconds.append(time.process_time() - start)
        for m in METRICS:
            ratios[m].append(got[m] / mean[m])
        print(f"{name} seed {seed}: " + ", ".join(f"{m} x{ratios[m][-1]:.3f}" for m in METRICS)
              + f" ({seconds[-1]:.1f} CPU s)", flush=True)
    return ratios, seconds


def main(argv: list[str] | None = None) -> int:
    deep = [n for n in model_names() if not is_classical(n)]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(deep), help="comma-separated deep models (default: all)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    models = [n.strip() for n in args.models.split(",")]
    unknown = [n for n in models if n not in deep]
    if unknown or args.seeds < 1:
        parser.error(f"unknown deep models {unknown} (known: {', '.join(deep)})" if unknown else "--seeds must be >= 1")
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))

    command = ["python", "benchmarks/quality_smoke_margins.py", *(sys.argv[1:] if argv is None else argv)]
    cpu = cpu_model()
    ratio_cols = " | ".join(f"{m.upper()} x mean, seeds {seeds[0]}-{seeds[-1]}" for m in METRICS)
    lines = ["# Quality smoke: margins over mean imputation per seed", "",
             f"- command: `{shlex.join(command)}`", f"- commit: {git_commit()}",
             f"- hardware: {cpu}, one torch thread; torch {torch.__version__}, python {platform.python_version()}",
             f"- schedules: {SMOKE_EPOCHS} epochs unless {SMOKE_SCHEDULES}; threshold = halfway from the worst seed to 1",
             "", f"| model | {ratio_cols} | worst NRMSE | worst PFC | threshold NRMSE | threshold PFC | median CPU s |",
             "|---|---|---|---|---|---|---|---|"]
    start = time.perf_counter()
    for name in models:
        ratios, seconds = measure(name, seeds)
        worst = {m: max(ratios[m]) for m in METRICS}
        cells = [" ".join(f"{r:.3f}" for r in ratios[m]) for m in METRICS]
        cells += [f"{worst[m]:.3f}" for m in METRICS]
        cells += [str(threshold(worst[m]) or "none") for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {statistics.median(seconds):.1f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Wall time {(time.perf_counter() - start) / 60:.1f} min (shared machine: CPU seconds are the steadier figure)."]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
