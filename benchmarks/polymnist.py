"""Conditional generation on PolyMNIST, vanilla and extended: mrVAE against MoPoE-VAE (papers/003, Tables 1 and 2).

Sutter & Vogt, "Multimodal Relational VAE" (papers/003), section 5, compare mrVAE with MoPoE-VAE (Sutter,
Daunhawer & Vogt, ICLR 2021) on PolyMNIST and on an *extended* PolyMNIST whose modalities also share corner
digits pairwise (:mod:`imputebench.data.polymnist`). Their findings: on the extended version MoPoE's coherence
drops (Table 1b: 0.31-0.32 against 0.47-0.53 on the vanilla one) while mrVAE's holds (0.40-0.44), and mrVAE's
samples are of better quality (Table 2: lower FID for every input set, by far when x_0 is not given). This
script reproduces both tables at a budget that fits a small CPU machine, for each version:

1. Data: the first ``--train-rows`` training tuples, every modality observed (the paper trains on complete
   tuples), split by the ``vsae`` protocol into training and validation rows (4:1), and the first
   ``--test-rows`` of the tuples built from MNIST's test images (``Dataset.source_test``).
2. Judges: one digit classifier per modality (:class:`~imputebench.models.digit_classifier.DigitClassifier`),
   trained for ``--classifier-epochs`` on the real images of the first ``--classifier-rows`` training tuples
   (as Sutter et al. 2021 pre-train theirs); each one's accuracy on the real test images is reported.
3. Models: ``mopoe`` and ``mrvae`` with the same per-modality encoders and decoders (``--image-networks``:
   convolutional by default; with MLPs neither model's generations carried the digit within this budget) and
   the same latent size (``--latent-dim``: MoPoE's z, each of mrVAE's z_j; papers/003 E.3, "the same
   architectures and capacities ... as well as the latent space dimensionalities"), every other setting at
   the models' defaults (batch 100, Adam 1e-3, beta 1, Bernoulli pixels), ``--epochs`` epochs, keeping the
   epoch of lowest validation loss (``select_on="loss"``, E.3: "the point in training which leads to the
   lowest test loss"; here the validation rows', so that test rows never choose a model).
4. Table 1 (coherence): x_0 generated from an input set A of a test tuple is the model's ``impute_batch`` with
   exactly A's columns observed, read at modality 0 (a reconstruction when 0 is in A); its coherence is the
   accuracy of modality 0's classifier against the tuple's digit. Table 2 (quality): the Fréchet distance
   between the classifier's penultimate features of those x_0 and of the real test x_0
   (:class:`~imputebench.nn.frechet.FrechetDistance`; Inception weights are not available offline, so these
   rank models and input sets but are not the paper's FIDs). Every metric is computed for the paper's input
   sets and a few more (:data:`INPUT_SETS`), and the squared error of x_0 per pixel in [0, 1], which for
   X_{1,2,3,4} is the imputation error of x_0 given the other four.
5. Budget: wall time of each fit, seconds per training step (forward, backward and Adam, timed around each
   ``training_step``), and FLOPs of one step (forward + backward of ``loss`` on a full batch, counted with
   ``torch.utils.flop_counter`` as ``benchmarks/flop_rate.py`` does) against the sustained fp32 matmul rate
   of :func:`flop_rate.matmul_rate`. (``flop_rate.step_flops`` itself cannot be reused: its replay of the
   step's matrix products writes into copies of their operands, and these models multiply broadcast, stride-0
   tensors, which ``normal_`` refuses to fill.)

It writes ``<out>.md`` (both tables in the paper's layout, the paper's values beside ours, the budget, the
classifiers, hardware, commit, command, and what the numbers show), ``<out>.csv`` (long form) and ``<out>.png``
(conditional generations: rows input sets, columns modalities, both models on both versions).

    python benchmarks/polymnist.py --data-dir /tmp/polymnist-data --out results/polymnist

The data directory must be writable (the PolyMNIST files, about 823 MB each, are generated there once from
``<data-dir>/mnist``; a symlink to the mirror's ``mnist`` folder will do) and must not be the read-only mirror.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch.utils.flop_counter import FlopCounterMode

from imputebench.data.dataset import Dataset, DatasetError
from imputebench.data.multimodal import MNIST_FILES
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.data.table import Table, ValidationSplit
from imputebench.models.base import ImputerModule
from imputebench.models.digit_classifier import DigitClassifier, coherence, fit_digit_classifier, images_from_pixel_rows
from imputebench.models.registry import get_model
from imputebench.nn.frechet import FrechetDistance
from imputebench.runner.provenance import cpu_model, git_commit
from imputebench.schema import FeatureSchema

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flop_rate import matmul_rate  # noqa: E402  (the sibling benchmark's matmul reference)

#: the datasets of the two versions
VERSIONS = {"vanilla": "polymnist", "extended": "polymnist_extended"}
MODELS = ("mrvae", "mopoe")
LABELS = {"mrvae": "mrVAE", "mopoe": "MoPoE"}
#: input sets whose x_0 is generated: the paper's (Table 1: {0}, {0,1}, {0,1,2}; Table 2: {0}, {1}, {1,2}) and more
INPUT_SETS: tuple[tuple[int, ...], ...] = ((0,), (0, 1), (0, 1, 2), (1,), (1, 2), (1, 2, 3, 4))
TABLE1_SETS = ((0,), (0, 1), (0, 1, 2))
TABLE2_SETS = ((0,), (1,), (1, 2))
#: papers/003 Table 1 (coherence, accuracy) and Table 2 (FID): (version, model, input set) -> value; output x_0
PAPER: dict[str, dict[tuple[str, str, tuple[int, ...]], float]] = {
    "coherence": {
        ("vanilla", "mrvae", (0,)): 0.50, ("vanilla", "mopoe", (0,)): 0.47,
        ("vanilla", "mrvae", (0, 1)): 0.51, ("vanilla", "mopoe", (0, 1)): 0.51,
        ("vanilla", "mrvae", (0, 1, 2)): 0.51, ("vanilla", "mopoe", (0, 1, 2)): 0.53,
        ("extended", "mrvae", (0,)): 0.40, ("extended", "mopoe", (0,)): 0.31,
        ("extended", "mrvae", (0, 1)): 0.44, ("extended", "mopoe", (0, 1)): 0.32,
        ("extended", "mrvae", (0, 1, 2)): 0.44, ("extended", "mopoe", (0, 1, 2)): 0.32,
    },
    "frechet": {
        ("vanilla", "mrvae", (0,)): 105.8, ("vanilla", "mopoe", (0,)): 108.7,
        ("vanilla", "mrvae", (1,)): 129.9, ("vanilla", "mopoe", (1,)): 216.6,
        ("vanilla", "mrvae", (1, 2)): 139.6, ("vanilla", "mopoe", (1, 2)): 221.5,
        ("extended", "mrvae", (0,)): 95.1, ("extended", "mopoe", (0,)): 157.9,
        ("extended", "mrvae", (1,)): 182.4, ("extended", "mopoe", (1,)): 265.5,
        ("extended", "mrvae", (1, 2)): 189.0, ("extended", "mopoe", (1, 2)): 311.6,
    },
}
METRIC_TABLE = {"coherence": "1", "frechet": "2", "mse": "imputation", "accuracy": "classifiers"}
TRAINING = "training"  # the table of the per-epoch rows (validation loss, the training loss's parts)
OUTPUT = 0  # the generated modality, x_0, as in both tables
#: both models' per-modality networks, as the report describes them
NETWORKS = {
    "conv": "convolutional (`nn/conv_modalities.py`: three stride-2 convolutions of 32, 64, 128 channels and their "
            "transposes, one network per modality)",
    "mlp": "MLPs (`modality_networks.py` defaults: 3 layers of 128 units per image)",
}
#: configuration fields the report lists for each model
SHOWN_CONFIG = ("image_networks", "latent_dim", "batch_size", "lr", "beta", "pixel_likelihood", "relation_width",
                "temperature")
NEAR_CHANCE = 0.2  # a coherence below it is read as near chance (0.1)
FIGURE_TUPLES = 3  # test tuples shown side by side in each cell of the figure
EVAL_ROWS = 500  # test rows per forward pass when generating


@dataclass(frozen=True)
class Budget:
    """What each version trains on and for how long."""

    train_rows: int = 10000
    test_rows: int = 2000
    epochs: int = 12
    latent_dim: int = 32
    classifier_rows: int = 20000
    classifier_epochs: int = 3
    seed: int = 0
    image_networks: str = "conv"  # both models' per-modality encoders and decoders: "conv" or "mlp"


@dataclass(frozen=True)
class Splits:
    """One version's complete tables: training, validation (complete, for the loss that selects the epoch), test."""

    train: Table
    validation: ValidationSplit
    test: Table
    test_digits: torch.Tensor  # (n_test,) int64 main digit of each test tuple


@dataclass
class Fit:
    """How a model's training went and what it cost."""

    epochs: int
    best_epoch: int
    best_val_loss: float
    fit_s: float
    steps: int
    step_s: float  # median seconds of one training step (forward, backward, Adam)
    step_flops: int  # forward + backward of one full batch
    batch_size: int
    config: dict  # the model's full configuration
    history: list[dict[str, float]]  # per epoch: the validation loss and the training loss's parts


@dataclass
class Results:
    """Everything the report is written from."""

    budget: Budget
    threads: int
    rows: list[dict] = field(default_factory=list)  # the CSV's long form
    fits: dict[tuple[str, str], Fit] = field(default_factory=dict)
    accuracies: dict[tuple[str, int], float] = field(default_factory=dict)  # (version, modality) -> test accuracy
    samples: dict[tuple[str, str], dict[tuple[int, ...], np.ndarray]] = field(default_factory=dict)  # (t, D) each
    schema: FeatureSchema | None = None  # the datasets' (both versions share it)
    real: dict[str, np.ndarray] = field(default_factory=dict)  # version -> (FIGURE_TUPLES, D) encoded test tuples
    version_s: dict[str, float] = field(default_factory=dict)
    matmul_flops: float = float("nan")  # sustained fp32 matmul rate, FLOP/s
    commit: str = field(default_factory=git_commit)  # of the code when the run started

    def value(self, version: str, model: str, metric: str, inputs: tuple[int, ...]) -> float | None:
        """Our value of ``metric`` for x_0 from ``inputs``, None when not computed."""
        label = set_label(inputs)
        return next((r["value"] for r in self.rows if (r["version"], r["model"], r["metric"], r["input_set"]) ==
                     (version, model, metric, label)), None)


# --- data ------------------------------------------------------------------------------------------------
def check_data_dir(data_dir: Path) -> Path:
    """``data_dir``, if it can hold the generated PolyMNIST files: not a dataset mirror, MNIST's files present."""
    data_dir = Path(data_dir)
    if (data_dir / "MANIFEST.md").exists():
        raise DatasetError(f"{data_dir} is a dataset mirror (it holds MANIFEST.md), which must stay read-only; pass a "
                           f"writable --data-dir holding a link to its mnist folder, e.g. mkdir -p /tmp/polymnist-data && "
                           f"ln -s {data_dir.resolve() / 'mnist'} /tmp/polymnist-data/mnist")
    missing = [file.relpath for file in MNIST_FILES.values() if not file.local_path(data_dir).is_file()]
    if missing:
        raise DatasetError(f"{data_dir} lacks MNIST's files ({', '.join(missing)}), from which PolyMNIST is generated: "
                           "link the mirror's mnist folder there (ln -s <mirror>/mnist <data-dir>/mnist)")
    return data_dir


def first_rows(dataset: Dataset, train_rows: int, test_rows: int) -> Dataset:
    """The first ``train_rows`` training tuples and the first ``test_rows`` test tuples (``source_test``), in
    that order, the test rows again marked as the source's test split."""
    if dataset.source_test is None:
        raise DatasetError(f"{dataset.name}: no source test split to take test rows from")
    is_test = np.zeros(dataset.n_rows, bool)
    is_test[dataset.source_test] = True
    train, test = np.flatnonzero(~is_test), np.sort(dataset.source_test)
    if not (5 <= train_rows <= len(train) and 2 <= test_rows <= len(test)):
        raise ValueError(f"{dataset.name}: asked for {train_rows} training and {test_rows} test rows; it has "
                         f"{len(train)} and {len(test)} (at least 5 and 2)")
    rows = np.concatenate([train[:train_rows], test[:test_rows]])  # (n,)
    target = None if dataset.target is None else dataset.target[rows]
    return replace(dataset, values=dataset.values[rows], target=target,
                   source_test=np.arange(train_rows, train_rows + test_rows))


def digit_codes(target: np.ndarray) -> torch.Tensor:
    """Targets ``"0"``..``"9"`` ``(n,)`` -> int64 digits ``(n,)``."""
    return torch.as_tensor(np.asarray(target).astype(np.int64))


def make_splits(dataset: Dataset, seed: int) -> Splits:
    """Complete training, validation and test tables of ``dataset`` (:func:`first_rows`' output) by the ``vsae``
    protocol. ``prepare`` also draws a mask (MCAR 0.5, a modality at a time), which nothing here uses: every
    table is ``PreparedData.complete``, as the paper trains and tests on complete tuples."""
    data = prepare(dataset, get_protocol("vsae"), "mcar", 0.5, seed)
    validation = data.complete(data.splits.val)
    return Splits(data.train_complete, ValidationSplit(validation, validation), data.complete(data.splits.test),
                  digit_codes(dataset.target[data.splits.test]))


def modality_columns(schema: FeatureSchema, modality: int) -> torch.Tensor:
    """Encoded columns ``(2352,)`` of a modality's pixels, in (height, width, channel) order."""
    _, members = schema.modality_groups[modality]
    return torch.as_tensor([schema.offsets[j] for j in members])


def image_shape(schema: FeatureSchema, modality: int) -> tuple[int, ...]:
    name, _ = schema.modality_groups[modality]
    return dict(schema.image_shapes)[name]


def modality_images(encoded: torch.Tensor, schema: FeatureSchema, modality: int) -> torch.Tensor:
    """Encoded rows ``(n, D)`` (pixels in [0, 1]) -> the modality's images ``(n, C, H, W)`` in [0, 1]."""
    pixels = encoded[:, modality_columns(schema, modality)]  # (n, H * W * C)
    return images_from_pixel_rows(pixels, image_shape(schema, modality), intensity_max=1.0)


# --- judges ------------------------------------------------------------------------------------------------------
def train_classifiers(dataset: Dataset, budget: Budget, test: Table, test_digits: torch.Tensor,
                      ) -> tuple[list[DigitClassifier], list[float]]:
    """One classifier per modality on the real images of the first ``classifier_rows`` training tuples, and each
    one's accuracy on the real test images of its modality."""
    is_test = np.zeros(dataset.n_rows, bool)
    is_test[dataset.source_test] = True
    rows = np.flatnonzero(~is_test)[:budget.classifier_rows]  # (k,)
    labels = digit_codes(dataset.target[rows])  # (k,)
    schema, test_x = dataset.schema, test.rows(slice(None))[0]  # (n_test, D)
    classifiers, accuracies = [], []
    for m, (_, members) in enumerate(schema.modality_groups):
        pixels = dataset.values[np.ix_(rows, members)]  # (k, H * W * C) uint8
        images = images_from_pixel_rows(pixels, image_shape(schema, m), schema.features[members[0]].intensity_max)
        classifier = DigitClassifier(in_channels=images.shape[1], image_size=images.shape[-1], seed=budget.seed + m)
        fit_digit_classifier(classifier, images, labels, max_epochs=budget.classifier_epochs, seed=budget.seed + m)
        classifiers.append(classifier)
        accuracies.append(coherence(classifier, modality_images(test_x, schema, m), test_digits))
    return classifiers, accuracies


# --- models ------------------------------------------------------------------------------------------------------
def model_config(budget: Budget) -> dict:
    """The configuration both models share: the same networks, the same latent size, the epoch of lowest validation loss."""
    return dict(latent_dim=budget.latent_dim, image_networks=budget.image_networks, max_epochs=budget.epochs,
                patience=budget.epochs, select_on="loss")


def count_step_flops(name: str, config: dict, train: Table, seed: int) -> tuple[int, int]:
    """FLOPs of forward + backward of ``loss`` on one full training batch of a freshly built model, and the batch."""
    model = get_model(name)(seed=seed, **config)
    model.build_networks(train.schema)
    model.train()
    batch = min(model.cfg.batch_size, train.n_rows)
    x, observed = train.rows(slice(0, batch))  # (b, D) each
    with FlopCounterMode(display=False) as counter:
        model.loss(x * observed, observed)["loss"].backward()
    return counter.get_total_flops(), batch


def timed_fit(name: str, config: dict, splits: Splits, seed: int) -> tuple[ImputerModule, Fit]:
    """Fit ``name`` on the complete training rows (its epoch chosen on the validation loss), timing each step."""
    model = get_model(name)(seed=seed, **config)
    steps: list[float] = []
    train_step = model.training_step  # the bound method; the instance attribute below shadows it for Lightning

    def training_step(batch, batch_idx=0):
        start = time.perf_counter()
        out = train_step(batch, batch_idx)
        steps.append(time.perf_counter() - start)
        return out

    model.training_step = training_step
    start = time.perf_counter()
    model.fit(splits.train, splits.validation)
    fit_s = time.perf_counter() - start
    record = model.last_fit
    flops, batch = count_step_flops(name, config, splits.train, seed)
    return model, Fit(len(record.epochs), record.best_epoch, float(record.best_score), fit_s, len(steps),
                      statistics.median(steps[1:] or steps), flops, batch, model.config(), model.epoch_history())


@torch.no_grad()
def generate_from(model: ImputerModule, table: Table, inputs: Sequence[int], seed: int) -> torch.Tensor:
    """Every column ``(n, D)`` as ``model`` generates it from the modalities ``inputs`` of each row of ``table``
    (exactly their columns observed); seeded, the caller's random state untouched."""
    model.eval()
    given = torch.zeros(len(table.schema.modality_groups), dtype=torch.bool)  # (M,)
    given[list(inputs)] = True
    column_given = model.layout.expand_modalities(given)  # (D,)
    parts = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for x, _ in table.chunks(EVAL_ROWS):  # (b, D)
            observed = column_given.expand_as(x)  # (b, D)
            parts.append(model.impute_batch(x * observed, observed))
    return torch.cat(parts)  # (n, D)


def set_label(inputs: Sequence[int]) -> str:
    """The paper's notation: ``x_0`` for one modality, ``X_{0,1}`` for a set."""
    return f"x_{inputs[0]}" if len(inputs) == 1 else "X_{" + ",".join(map(str, inputs)) + "}"


def frechet(classifier: DigitClassifier, real: torch.Tensor, generated: torch.Tensor) -> float:
    """Fréchet distance in the classifier's penultimate features between images ``(n, C, H, W)`` and ``(k, C, H, W)``."""
    metric = FrechetDistance(classifier)
    metric.update(real, real=True)
    metric.update(generated, real=False)
    return float(metric.compute())


def evaluate(version: str, name: str, model: ImputerModule, splits: Splits, judge: DigitClassifier,
             results: Results, seed: int) -> None:
    """Coherence, Fréchet distance and squared error of x_0 from every input set, into ``results``."""
    schema = splits.test.schema
    truth = splits.test.rows(slice(None))[0][:, modality_columns(schema, OUTPUT)]  # (n, P0)
    real = modality_images(splits.test.rows(slice(None))[0], schema, OUTPUT)  # (n, C, H, W)
    samples = results.samples.setdefault((version, name), {})
    for inputs in INPUT_SETS:
        out = generate_from(model, splits.test, inputs, seed)  # (n, D)
        x0 = out[:, modality_columns(schema, OUTPUT)]  # (n, P0)
        images = images_from_pixel_rows(x0, image_shape(schema, OUTPUT), intensity_max=1.0)  # (n, C, H, W)
        samples[inputs] = out[:FIGURE_TUPLES].numpy()
        values = {"coherence": coherence(judge, images, splits.test_digits), "frechet": frechet(judge, real, images),
                  "mse": float(((x0 - truth) ** 2).mean())}
        for metric, value in values.items():
            add_row(results, version, name, metric, set_label(inputs), value,
                    PAPER.get(metric, {}).get((version, name, tuple(inputs))))


def add_row(results: Results, version: str, model: str, metric: str, input_set: str, value: float,
            paper: float | None = None, output: str = f"x_{OUTPUT}") -> None:
    table = METRIC_TABLE.get(metric, TRAINING if input_set.startswith("epoch") else "reference")
    results.rows.append(dict(version=version, model=model, table=table,
                             input_set=input_set, output=output, metric=metric, value=value, paper_value=paper))


def references(version: str, dataset: Dataset, splits: Splits, judge: DigitClassifier, results: Results,
               test_rows: int) -> None:
    """Floors to read the models against: the Fréchet distance between real training and real test x_0 (as many
    images), and the squared error of x_0 imputed by its training per-pixel mean."""
    schema = splits.test.schema
    test_x = splits.test.rows(slice(None))[0]  # (n, D)
    train_x = splits.train.rows(slice(0, test_rows))[0]  # (k, D)
    distance = frechet(judge, modality_images(test_x, schema, OUTPUT), modality_images(train_x, schema, OUTPUT))
    add_row(results, version, "real images", "frechet", "real training x_0", distance)
    columns = modality_columns(schema, OUTPUT)
    mean = torch.cat([x[:, columns] for x, _ in splits.train.chunks(4096)]).mean(0)  # (P0,)
    add_row(results, version, "per-pixel mean", "mse", "X_{1,2,3,4}", float(((test_x[:, columns] - mean) ** 2).mean()))


# --- the run ---------------------------------------------------------------------------------------------------
def run_version(version: str, dataset: Dataset, budget: Budget, models: Sequence[str], results: Results,
                log=print) -> None:
    """Everything for one version: splits, judges, both models, their metrics, into ``results``."""
    start = time.perf_counter()
    small = first_rows(dataset, budget.train_rows, budget.test_rows)
    splits = make_splits(small, budget.seed)
    log(f"[{version}] {splits.train.n_rows} training, {splits.validation.table.n_rows} validation, "
        f"{splits.test.n_rows} test rows")
    classifiers, accuracies = train_classifiers(small if budget.classifier_rows <= budget.train_rows else dataset,
                                                budget, splits.test, splits.test_digits)
    for m, accuracy in enumerate(accuracies):
        results.accuracies[(version, m)] = accuracy
        add_row(results, version, "classifier", "accuracy", f"real x_{m}", accuracy, output=f"digit of x_{m}")
    log(f"[{version}] classifiers' test accuracy: " + ", ".join(f"{a:.3f}" for a in accuracies))
    references(version, small, splits, classifiers[OUTPUT], results, budget.test_rows)
    real = splits.test.rows(slice(0, FIGURE_TUPLES))[0]  # (t, D)
    results.real[version], results.schema = real.numpy(), dataset.schema
    for name in models:
        model, fit = timed_fit(name, model_config(budget), splits, budget.seed)
        results.fits[(version, name)] = fit
        for epoch in fit.history:
            for part, value in epoch.items():
                if part != "epoch":
                    add_row(results, version, name, part, f"epoch {int(epoch['epoch'])}", value, output="")
        log(f"[{version}] {name}: {fit.epochs} epochs in {fit.fit_s:.0f} s, best epoch {fit.best_epoch} "
            f"(validation loss {fit.best_val_loss:.1f}), {fit.step_s * 1e3:.0f} ms a step")
        if not math.isfinite(fit.best_val_loss):
            raise FloatingPointError(f"{name} on {version}: validation loss {fit.best_val_loss}")
        evaluate(version, name, model, splits, classifiers[OUTPUT], results, budget.seed)
        line = ", ".join(f"{set_label(s)} {results.value(version, name, 'coherence', s):.3f}" for s in INPUT_SETS)
        log(f"[{version}] {name} coherence of x_0 from {line}")
    results.version_s[version] = time.perf_counter() - start


def run(versions: Sequence[str], models: Sequence[str], budget: Budget, data_dir: Path, threads: int,
        log=print, datasets: dict[str, Dataset] | None = None, matmul_seconds: float = 2.0) -> Results:
    """Both versions (loaded from ``data_dir``, or taken from ``datasets``), in order, into one :class:`Results`;
    first the sustained matmul rate the steps' FLOP rates are compared with, over ``matmul_seconds``."""
    torch.set_num_threads(threads)
    results = Results(budget, threads)
    results.matmul_flops, _ = matmul_rate(seconds=matmul_seconds)
    for version in versions:
        dataset = datasets[version] if datasets else load_dataset(VERSIONS[version], check_data_dir(data_dir))
        run_version(version, dataset, budget, models, results, log)
        del dataset
    return results


# --- the report -------------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def metric_table(results: Results, version: str, metric: str, paper_sets: Sequence[tuple[int, ...]],
                 models: Sequence[str], digits: int) -> list[str]:
    """One sub-table in the paper's layout: input, output, the paper's mrVAE and MoPoE, ours."""
    ours = [f"{LABELS.get(m, m)} (ours)" for m in models]
    lines = ["| Input | Output | mrVAE (paper) | MoPoE (paper) | " + " | ".join(ours) + " |",
             "|---|---|---:|---:|" + "---:|" * len(models)]
    for inputs in [*paper_sets, *(s for s in INPUT_SETS if s not in paper_sets)]:
        paper = [PAPER[metric].get((version, m, inputs)) for m in ("mrvae", "mopoe")]
        values = [results.value(version, m, metric, inputs) for m in models]
        lines.append(f"| {set_label(inputs)} | x_{OUTPUT} | {fmt(paper[0], 2 if metric == 'coherence' else 1)} | "
                     f"{fmt(paper[1], 2 if metric == 'coherence' else 1)} | " + " | ".join(fmt(v, digits) for v in values) + " |")
    return lines


def reference_value(results: Results, version: str, model: str, metric: str) -> float | None:
    return next((r["value"] for r in results.rows if (r["version"], r["model"], r["metric"]) == (version, model, metric)), None)


def findings(results: Results, versions: Sequence[str], models: Sequence[str]) -> list[str]:
    """The paper's two findings, each judged on our numbers by a stated rule."""
    if not ({"vanilla", "extended"} <= set(versions) and {"mrvae", "mopoe"} <= set(models)):
        return ["The findings compare both models on both versions; this run has "
                f"{', '.join(versions)} and {', '.join(models)} only."]
    mean = {(v, m): statistics.mean(results.value(v, m, "coherence", s) for s in TABLE1_SETS)
            for v in ("vanilla", "extended") for m in ("mrvae", "mopoe")}
    drop = {m: mean[("vanilla", m)] - mean[("extended", m)] for m in ("mrvae", "mopoe")}
    above = sum(results.value("extended", "mrvae", "coherence", s) > results.value("extended", "mopoe", "coherence", s)
                for s in TABLE1_SETS)
    first = drop["mopoe"] > drop["mrvae"] and above == len(TABLE1_SETS)
    text = [
        f"**Coherence (Table 1): the finding {'holds' if first else 'does not hold'} at this budget.** The rule: MoPoE's "
        "coherence drops more than mrVAE's from the vanilla to the extended version (mean over Table 1's three input "
        "sets), and on the extended version mrVAE is above MoPoE for all three. Ours: MoPoE "
        f"{mean[('vanilla', 'mopoe')]:.3f} -> {mean[('extended', 'mopoe')]:.3f} (drop {drop['mopoe']:+.3f}), mrVAE "
        f"{mean[('vanilla', 'mrvae')]:.3f} -> {mean[('extended', 'mrvae')]:.3f} (drop {drop['mrvae']:+.3f}); mrVAE "
        f"above MoPoE on the extended version for {above} of {len(TABLE1_SETS)}. The paper: MoPoE 0.503 -> 0.317 "
        "(drop +0.187), mrVAE 0.507 -> 0.427 (drop +0.080), mrVAE above on 3 of 3."
    ]
    pairs = [(v, s) for v in ("vanilla", "extended") for s in TABLE2_SETS]
    wins = [(v, s) for v, s in pairs
            if results.value(v, "mrvae", "frechet", s) < results.value(v, "mopoe", "frechet", s)]
    second = len(wins) == len(pairs)
    cells = "; ".join(f"{v} {set_label(s)}: mrVAE {results.value(v, 'mrvae', 'frechet', s):.2f}, MoPoE "
                      f"{results.value(v, 'mopoe', 'frechet', s):.2f}" for v, s in pairs)
    text.append(
        f"**Sample quality (Table 2): the finding {'holds' if second else 'does not hold'} at this budget.** The rule: "
        f"mrVAE's Fréchet distance is below MoPoE's for all {len(pairs)} (version, input set) rows of Table 2; it is "
        f"for {len(wins)}. Ours: {cells}. The paper: mrVAE below MoPoE on 6 of 6, by 3-123 FID points."
    )
    incoherent = [(v, s) for v, s in wins if results.value(v, "mrvae", "coherence", s) < NEAR_CHANCE]
    if incoherent:
        text.append(
            f"Of those {len(wins)} rows, {len(incoherent)} have mrVAE's x_0 at a coherence below {NEAR_CHANCE} (chance "
            f"0.1): {', '.join(f'{v} {set_label(s)}' for v, s in incoherent)}. There the lower distance does not mean "
            "better digits: the distance compares the spread of the classifier's features, and samples that do not "
            "show the tuple's digit can match it more closely than blurred averages do (the figure shows both).")
    for v in ("vanilla", "extended"):
        for m in ("mrvae", "mopoe"):
            best = max(results.value(v, m, "coherence", s) for s in INPUT_SETS)
            if best < NEAR_CHANCE:
                text.append(f"{LABELS[m]} on the {v} version stays near chance (0.1; best coherence {best:.3f}): it has "
                            "not learnt to generate the digit at this budget.")
            error, floor = results.value(v, m, "mse", (1, 2, 3, 4)), reference_value(results, v, "per-pixel mean", "mse")
            if floor is not None and error is not None and error >= floor:
                text.append(f"{LABELS[m]}'s x_0 given the other four on the {v} version is no better than the training "
                            f"per-pixel mean image: squared error {error:.4f} against {floor:.4f}.")
            fit = results.fits.get((v, m))
            if fit is not None and fit.history[-1].get("val_loss", -math.inf) > fit.best_val_loss + 0.02 * abs(fit.best_val_loss):
                text.append(f"{LABELS[m]}'s validation loss on the {v} version rose after its best epoch "
                            f"({fit.best_epoch}: {fit.best_val_loss:.1f}; last: {fit.history[-1]['val_loss']:.1f}).")
    return text


def write_markdown(results: Results, versions: Sequence[str], models: Sequence[str], path: Path, command: str,
                   total_s: float) -> None:
    b = results.budget
    lines = [
        "# PolyMNIST, vanilla and extended: mrVAE vs MoPoE-VAE (papers/003 Tables 1 and 2)",
        "",
        f"Written by `benchmarks/polymnist.py` at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the numbers are the script's, "
        "unedited. Method: the script's docstring and benchmarks/README.md.",
        "",
        f"- **Command**: `{command}`",
        f"- **Commit**: `{results.commit}` (when the run started)",
        f"- **Hardware**: {cpu_model()}, {os.cpu_count()} cores, {results.threads} torch threads; no GPU. Python "
        f"{platform.python_version()}, torch {torch.__version__}. Sustained fp32 1024^3 matmul: "
        f"{results.matmul_flops / 1e9:.1f} GFLOP/s.",
        f"- **Budget** (per version): the first {b.train_rows:,} training tuples, complete, split 4:1 into training "
        f"and validation rows (`vsae` protocol); the first {b.test_rows:,} MNIST-test tuples; {b.epochs} epochs; "
        f"latent size {b.latent_dim} for both models (MoPoE's z, each of mrVAE's z_j) and the same per-modality "
        f"encoders and decoders, {NETWORKS[b.image_networks]}; the epoch kept is the one of lowest validation loss "
        f"(`select_on=\"loss\"`, papers/003 E.3). One seed ({b.seed}). The paper does not state its epochs; its data "
        "are the full 60,000 tuples.",
        "- **Configurations** (the rest at each model's defaults): "
        + "; ".join(f"{LABELS.get(m, m)}: " + ", ".join(f"{k} {v}" for k, v in fit.config.items() if k in SHOWN_CONFIG)
                    for m, fit in {m: f for (_, m), f in results.fits.items()}.items()) + ".",
        f"- **Wall time**: {total_s / 60:.1f} min in all"
        + "".join(f"; {v} {results.version_s[v] / 60:.1f} min" for v in versions if v in results.version_s) + ".",
        "",
        "## Table 1: coherence of x_0 (accuracy of modality 0's classifier against the tuple's digit)",
        "",
        "The paper's rows first, then input sets it does not report (–). Higher is better; chance is 0.1.",
        "",
    ]
    letters = dict(vanilla="(a) PolyMNIST vanilla", extended="(b) PolyMNIST extended")
    for v in versions:
        lines += [f"**{letters[v]}**", "", *metric_table(results, v, "coherence", TABLE1_SETS, models, 3), ""]
    lines += [
        "## Table 2: quality of x_0 (Fréchet distance to the real test x_0)",
        "",
        "Ours are in the penultimate features (128) of modality 0's digit classifier, not Inception's: they order "
        "models and input sets, but are not comparable in value with the paper's FID. Lower is better. The floor is "
        "the distance between as many real training and real test x_0 images (*real*).",
        "",
    ]
    for v in versions:
        floor = reference_value(results, v, "real images", "frechet")
        lines += [f"**{letters[v]}** (real: {fmt(floor, 2)})", "", *metric_table(results, v, "frechet", TABLE2_SETS, models, 2), ""]
    lines += [
        "## Imputation error of x_0 given the other four",
        "",
        "Mean squared error per pixel, intensities in [0, 1], over the test tuples (input X_{1,2,3,4}); the training "
        "per-pixel mean image is the floor a model should beat.",
        "",
        "| Version | " + " | ".join(LABELS.get(m, m) for m in models) + " | per-pixel mean |",
        "|---|" + "---:|" * (len(models) + 1),
    ]
    for v in versions:
        values = [results.value(v, m, "mse", (1, 2, 3, 4)) for m in models]
        lines.append(f"| {v} | " + " | ".join(fmt(x, 4) for x in values) + f" | "
                     f"{fmt(reference_value(results, v, 'per-pixel mean', 'mse'), 4)} |")
    lines += [
        "",
        "## Budget and cost",
        "",
        "Seconds per step: the median training step (forward, backward, Adam) inside the fit. FLOPs per step: forward "
        "+ backward of the loss on one full batch (`torch.utils.flop_counter`, as `benchmarks/flop_rate.py`); the "
        "achieved rate is FLOPs per step / seconds per step, and its share of the sustained matmul rate above.",
        "",
        "| Version | Model | Epochs | Best epoch | Validation loss: first / best / last epoch | Fit wall s | s / epoch | "
        "Steps | s / step | "
        "GFLOP / step | Achieved GFLOP/s | Of matmul |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (v, m), fit in results.fits.items():
        rate = fit.step_flops / fit.step_s
        first, last = (fit.history[i].get("val_loss", math.nan) for i in (0, -1))
        lines.append(f"| {v} | {LABELS.get(m, m)} | {fit.epochs} | {fit.best_epoch} | "
                     f"{first:.1f} / {fit.best_val_loss:.1f} / {last:.1f} | "
                     f"{fit.fit_s:.0f} | {fit.fit_s / fit.epochs:.1f} | {fit.steps} | {fit.step_s:.3f} | "
                     f"{fit.step_flops / 1e9:.2f} | {rate / 1e9:.1f} | {rate / results.matmul_flops:.1%} |")
    lines += [
        "",
        "## Digit classifiers (the judges)",
        "",
        f"One per modality, trained for {b.classifier_epochs} epochs on the real images of the first "
        f"{b.classifier_rows:,} training tuples; accuracy on the real test images of its modality. Modality 0's scores "
        "Table 1 and gives Table 2's features.",
        "",
        "| Version | " + " | ".join(f"x_{m}" for m in range(5)) + " |",
        "|---|" + "---:|" * 5,
    ]
    for v in versions:
        lines.append(f"| {v} | " + " | ".join(fmt(results.accuracies.get((v, m)), 3) for m in range(5)) + " |")
    lines += ["", "## What this shows", "", *(f"{p}\n" for p in findings(results, versions, models))]
    lines += [
        "Caveats. (1) Budget: "
        f"{b.train_rows:,} tuples and {b.epochs} epochs on a CPU, one seed; the paper trains on all 60,000 tuples for "
        "an unstated, surely much longer schedule, so both models here are far from converged and a different "
        "budget may order them differently. (2) Data: our PolyMNIST has other backgrounds than the authors' "
        "(scikit-image's sample pictures) and our own layout of the extended version's corner digits (the paper "
        "publishes neither its generator nor the layout). (3) Judges: our classifiers, trained briefly on "
        "real images (accuracies above), are weaker than the authors' pre-trained ones, which lowers every coherence; "
        "the Fréchet distance is in their feature space, not Inception's, so only its order carries over. "
        "(4) Networks: both models use this project's encoders and decoders, not the authors' (whose layers the "
        "paper does not give), and this project's reading of mrVAE (its docstring lists the choices where the paper "
        "is silent).",
        "",
        f"`{path.with_suffix('.csv').name}` beside this file holds every number in long form (all input sets, the "
        f"squared error of x_0 from each, the references); `{path.with_suffix('.png').name}` shows conditional "
        "generations.",
        "",
    ]
    path.write_text("\n".join(lines))


def write_csv(results: Results, path: Path) -> None:
    columns = ["version", "model", "table", "input_set", "output", "metric", "value", "paper_value"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in results.rows:
            writer.writerow({**row, "value": f"{row['value']:.6g}",
                             "paper_value": "" if row["paper_value"] is None else row["paper_value"]})


def tile(rows: np.ndarray, schema: FeatureSchema, gap: int = 2) -> np.ndarray:
    """Encoded rows ``(t, D)`` -> one picture ``(H, M * (t * W + gap), C)``: per modality its t images side by side."""
    cells = []
    for m in range(len(schema.modality_groups)):
        images = modality_images(torch.as_tensor(rows), schema, m).permute(0, 2, 3, 1).numpy()  # (t, H, W, C)
        strip = np.concatenate(list(images), axis=1)  # (H, t * W, C)
        cells += [strip, np.ones((strip.shape[0], gap, strip.shape[2]))]
    return np.concatenate(cells, axis=1)


def write_figure(results: Results, versions: Sequence[str], models: Sequence[str], path: Path) -> None:
    """Rows: the real test tuples, then x_0..x_4 generated from each input set; columns: modalities; one panel
    per (version, model). Green frames mark the modalities given as input. Drawn on matplotlib's Agg canvas,
    without pyplot's global state (as :mod:`imputebench.plots`)."""
    schema = results.schema
    n_mod, gap = len(schema.modality_groups), 2
    fig = Figure(figsize=(7.2 * len(models), 4.4 * len(versions)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(versions), len(models), squeeze=False)
    for i, v in enumerate(versions):
        for j, m in enumerate(models):
            ax = axes[i][j]
            strips = [tile(results.real[v], schema, gap)] + [tile(results.samples[(v, m)][s], schema, gap) for s in INPUT_SETS]
            height, cell = strips[0].shape[0], strips[0].shape[1] // n_mod
            picture = np.concatenate([np.concatenate([s, np.ones((gap, s.shape[1], s.shape[2]))]) for s in strips])
            ax.imshow(picture.clip(0, 1), interpolation="nearest")
            for r, inputs in enumerate(INPUT_SETS, start=1):
                for k in inputs:
                    ax.add_patch(Rectangle((k * cell - 0.5, r * (height + gap) - 0.5), cell - gap, height,
                                           fill=False, edgecolor="limegreen", linewidth=1.5))
            ax.set_yticks([r * (height + gap) + height / 2 for r in range(len(strips))],
                          ["real"] + [f"from {set_label(s)}" for s in INPUT_SETS], fontsize=8)
            ax.set_xticks([k * cell + (cell - gap) / 2 for k in range(n_mod)], [f"x_{k}" for k in range(n_mod)], fontsize=8)
            ax.tick_params(length=0)
            ax.set_title(f"{LABELS.get(m, m)}, PolyMNIST {v}", fontsize=10)
    fig.suptitle(f"Conditional generation of every modality from an input set (framed), {FIGURE_TUPLES} test tuples "
                 "per cell", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_outputs(results: Results, versions: Sequence[str], models: Sequence[str], out: Path, command: str,
                  total_s: float) -> None:
    """``<out>.md``, ``<out>.csv`` and ``<out>.png``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(results, out.with_suffix(".csv"))
    write_figure(results, versions, models, out.with_suffix(".png"))
    write_markdown(results, versions, models, out.with_suffix(".md"), command, total_s)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = Budget()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default="vanilla,extended", help="comma-separated: vanilla, extended")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated registered models")
    parser.add_argument("--train-rows", type=int, default=defaults.train_rows)
    parser.add_argument("--test-rows", type=int, default=defaults.test_rows)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--latent-dim", type=int, default=defaults.latent_dim)
    parser.add_argument("--classifier-rows", type=int, default=defaults.classifier_rows)
    parser.add_argument("--classifier-epochs", type=int, default=defaults.classifier_epochs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--image-networks", choices=("conv", "mlp"), default=defaults.image_networks,
                        help="both models' per-modality encoders and decoders (modality_networks.py)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/polymnist-data"),
                        help="writable; holds mnist/ (a link to the mirror's will do) and receives polymnist/")
    parser.add_argument("--out", type=Path, default=Path("results/polymnist"), help="path prefix of .md, .csv, .png")
    args = parser.parse_args(argv)
    args.versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [v for v in args.versions if v not in VERSIONS]
    if unknown or not args.versions:
        parser.error(f"--versions: unknown {unknown}; known: {', '.join(VERSIONS)}")
    for name in args.models:
        try:
            get_model(name)
        except Exception as err:
            parser.error(f"--models: {err}")
    for option in ("train_rows", "test_rows", "epochs", "latent_dim", "classifier_rows", "classifier_epochs", "threads"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        check_data_dir(args.data_dir)
    except DatasetError as err:
        sys.exit(f"error: {err}")
    budget = Budget(args.train_rows, args.test_rows, args.epochs, args.latent_dim, args.classifier_rows,
                    args.classifier_epochs, args.seed, args.image_networks)
    command = shlex.join(["python", "benchmarks/polymnist.py", *(sys.argv[1:] if argv is None else argv)])
    start = time.perf_counter()

    def log(message: str) -> None:
        print(f"{time.perf_counter() - start:7.0f} s  {message}", flush=True)

    results = run(args.versions, args.models, budget, args.data_dir, args.threads, log)
    write_outputs(results, args.versions, args.models, args.out, command, time.perf_counter() - start)
    log(f"wrote {args.out.with_suffix('.md')}, .csv, .png")


if __name__ == "__main__":
    main()
