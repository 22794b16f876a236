"""The ``imputebench`` command line: run sweeps, show leaderboards, list and fetch datasets.

Starting the program loads typer, rich and two modules that import nothing (the shared errors and the
model cards): each command imports what it uses when it runs, so torch, Lightning and Ray load only for
``run`` and ``plot``, and ``--help``, ``--version``, ``models``, ``datasets`` and ``leaderboard``
answer at once (tests/test_cli.py checks that none of them loads torch, Lightning or Ray).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from imputebench.errors import UnknownNameError
from imputebench.metric_directions import DOWNSTREAM, EVALUATIONS, LABEL
from imputebench.model_catalog import MODELS

if TYPE_CHECKING:
    import pandas as pd

    from imputebench.runner.execute import SweepSummary
    from imputebench.runner.store import ResultStore
    from imputebench.runner.tracking import SweepTracker
    from imputebench.runner.worker import TrialOptions

# rich_markup_mode=None: help texts are shown as written; as Rich markup, `pip install "imputebench[ray]"` lost "[ray]".
app = typer.Typer(add_completion=False, rich_markup_mode=None)
data_app = typer.Typer(add_completion=False, rich_markup_mode=None, help="Download and verify dataset files.")
app.add_typer(data_app, name="data")
store_app = typer.Typer(add_completion=False, rich_markup_mode=None, help="Look into a results store, and forget rows of it.")
app.add_typer(store_app, name="store")
console = Console()
err_console = Console(stderr=True)

DEFAULT_STORE = Path("results/imputebench.sqlite")
#: ``imputebench run`` with neither --models nor --datasets is a demonstration that shows the product in about a
#: minute on 2 CPU cores: mean imputation, a classical baseline and two deep models on the ``quickstart`` tables,
#: the deep models trained QUICKSTART_EPOCHS epochs (their papers train hundreds), so its numbers are not the
#: papers' protocol and the run says so beside its leaderboard.
QUICKSTART_MODELS = "mean,mice,vaeac,miwae"
QUICKSTART_DATASETS = "quickstart"
QUICKSTART_EPOCHS = 50
PLOT_KINDS = ("images", "ratio-curve")
FORMATS = ("md", "csv")
#: the width of `store show`'s tables when the output is a file or a pipe (a terminal's own width otherwise)
SHOW_WIDTH = 160
DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="IMPUTEBENCH_DATA_DIR", help="Dataset folder (mirror layout). Default: per-user cache."),
]
StorePath = Annotated[Path, typer.Option("--store", help="SQLite results store.")]
Format = Annotated[str, typer.Option("--format", help="Leaderboard format: md or csv.")]
Wandb = Annotated[bool, typer.Option("--wandb", help='Log to Weights & Biases: one run per trial (pip install "imputebench[wandb]").')]
WandbProject = Annotated[str, typer.Option("--wandb-project", help="W&B project.")]
WandbEntity = Annotated[str | None, typer.Option("--wandb-entity", help="W&B entity (team or user). Default: yours.")]
WandbMode = Annotated[str, typer.Option("--wandb-mode", help="W&B mode: online or offline (offline: no network, runs under WANDB_DIR).")]
Accelerator = Annotated[str, typer.Option(help="cpu, gpu (= cuda), cuda:N, mps or auto (local executor).")]
Executor = Annotated[str, typer.Option(help='local (in this process, one trial at a time) or ray (pip install "imputebench[ray]").')]
RayAddress = Annotated[str | None, typer.Option(help="Ray cluster to join (auto, host:port, ray://host:10001). Default: start a local one.")]
CpusPerTrial = Annotated[float, typer.Option(help="CPUs each trial reserves (Ray) and torch threads it uses (both executors, so rows match).")]
GpusPerTrial = Annotated[float, typer.Option(help="GPUs each deep Ray trial reserves; 0.25 packs four onto one GPU. Classical baselines reserve none.")]
MaxRetries = Annotated[int, typer.Option(help="Tries again a trial that failed, diverged or timed out, up to this many times.", min=0)]
TrialTimeout = Annotated[float | None, typer.Option(help="Seconds an attempt may run before it is stopped and stored as timeout.")]
Verbose = Annotated[bool, typer.Option("--verbose", help="Lightning's messages and a line per finished trial.")]


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"imputebench {version('imputebench')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the installed version and exit.")] = False,
) -> None:
    """A fair, reproducible benchmark for missing-data imputation."""


def _fail(message: str, code: int) -> typer.Exit:
    """Print ``message`` as an error, escaped ("imputebench[ray]" is not markup) and never broken inside a path
    (soft wrap: the terminal wraps it); return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _seeds(text: str) -> list[int]:
    """``3`` means seeds 0, 1, 2; ``4,7`` means exactly those seeds (non-negative integers, each once)."""
    parts = _split(text)
    if not all(part.isdigit() for part in parts) or not parts:
        bad = next((part for part in parts if not part.isdigit()), text)
        raise ValueError(f"--seeds {text}: {bad!r} is not a non-negative integer; give a count >= 1 or a "
                         "comma-separated list of seeds >= 0")
    values = [int(v) for v in parts]
    if len(values) == 1 and "," not in text:
        if values[0] < 1:
            raise ValueError(f"--seeds {text}: give a count >= 1 or a comma-separated list")
        return list(range(values[0]))
    if len(set(values)) != len(values):
        raise ValueError(f"--seeds {text}: a seed is listed twice")
    return values


def _ratios(text: str, mechanisms: list[str]) -> list[float]:
    """``--ratios``: missing ratios in (0, 1), comma-separated, each once; 0 too where every mechanism takes it."""
    from imputebench.masks import validate_ratio_for

    values = []
    for part in _split(text):
        try:
            value = float(part)
            values.append(value)
            for mechanism in mechanisms:
                validate_ratio_for(mechanism, value)
        except ValueError as err:
            raise ValueError(f"--ratios {text}: {part!r}: {err}") from None
    if not values:
        raise ValueError(f"--ratios {text!r}: give at least one missing ratio in (0, 1)")
    if len(set(values)) != len(values):
        raise ValueError(f"--ratios {text}: a ratio is listed twice")
    return values


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")


def _device(accelerator: str) -> str:
    """The torch device for ``--accelerator`` (cpu, gpu, cuda, cuda:N, mps, auto), checked to exist here."""
    import torch

    device = {"gpu": "cuda", "auto": "cuda" if torch.cuda.is_available() else "cpu"}.get(accelerator, accelerator)
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:
        raise ValueError(f"accelerator {accelerator!r} is not usable here: {err}") from None
    return device


def _render(summary: pd.DataFrame, fmt: str, by: list[str] | None = None) -> str:
    from imputebench import leaderboard as lb

    return lb.to_markdown(summary, by=by) if fmt == "md" else lb.to_csv(summary, by=by)


@app.command()
def run(
    models: Annotated[str | None, typer.Option(
        help=f"Comma-separated model names (see `imputebench models`). Default: {QUICKSTART_MODELS}.")] = None,
    datasets: Annotated[str | None, typer.Option(
        help=f"Comma-separated dataset names or aliases (quickstart, embedded, uci, bimodal). Default: {QUICKSTART_DATASETS}. "
             f"With neither --models nor --datasets the run is a quick demonstration: deep models get "
             f"{QUICKSTART_EPOCHS} epochs unless --max-epochs / --patience say otherwise.")] = None,
    mechanisms: Annotated[str, typer.Option(help="mcar, mar, mnar (= mnar_selfmask), mnar_quantile, unpaired (weak supervision: the ratio is the share of unpaired rows).")] = "mcar",
    ratios: Annotated[str, typer.Option(help="Missing ratios in (0, 1), comma-separated (unpaired also takes 0: every row paired).")] = "0.5",
    seeds: Annotated[str, typer.Option(help="A count (3 = seeds 0,1,2) or a comma-separated list.")] = "1",
    protocol: Annotated[str, typer.Option(help="vsae, vaeac or transductive.")] = "vsae",
    data_dir: DataDir = None,
    store: StorePath = DEFAULT_STORE,
    accelerator: Accelerator = "cpu",
    max_epochs: Annotated[int | None, typer.Option(help="Override every deep model's epoch budget.", min=1)] = None,
    patience: Annotated[int | None, typer.Option(help="Override early-stopping patience (epochs).", min=1)] = None,
    model_config: Annotated[
        Path | None, typer.Option(help="YAML mapping model -> overrides (e.g. configs/vsae-long.yaml).")
    ] = None,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    cpus_per_trial: CpusPerTrial = 1.0,
    gpus_per_trial: GpusPerTrial = 0.0,
    max_retries: MaxRetries = 0,
    trial_timeout: TrialTimeout = None,
    devices: Annotated[int, typer.Option(help="Devices one deep trial trains on (with --strategy ddp: one process each).")] = 1,
    strategy: Annotated[str, typer.Option(help="auto or ddp: one device, or Lightning's DDP (ranks spawned).")] = "auto",
    wandb: Wandb = False,
    wandb_project: WandbProject = "imputebench",
    wandb_entity: WandbEntity = None,
    wandb_mode: WandbMode = "online",
    verbose: Verbose = False,
    allow_modified_data: Annotated[bool, typer.Option(
        "--allow-modified-data", help="Run on dataset files whose sha256 differs from the recorded one; their rows "
                                      "carry the actual hash and are marked modified.")] = False,
    evaluate: Annotated[str | None, typer.Option(
        help="Evaluations beyond imputation, comma-separated, stored beside the imputation metrics: downstream "
             "(VAEAC Table 2: a linear or logistic regression fitted on the imputed training rows predicts the "
             "target of the imputed test rows; R² or accuracy; tables with a prediction target) and label (MVAE "
             "Tables 8-9: every test label imputed from its image; accuracy; image + label datasets).")] = None,
    fmt: Format = "md",
) -> None:
    """Run a sweep of models × datasets × mechanisms × ratios × seeds and print its leaderboard.

    With no argument, a quick demonstration (see --datasets).
    """
    from imputebench import leaderboard as lb
    from imputebench.data.protocols import get_protocol
    from imputebench.data.sources import resolve_datasets
    from imputebench.masks import get_mechanism
    from imputebench.models.distributed import Distribution
    from imputebench.models.registry import get_model, is_classical
    from imputebench.runner.presets import config_resolver, read_model_config
    from imputebench.runner.store import ResultStore, StoreError, check_store
    from imputebench.runner.tracking import SweepTracker, TrackingError, WandbOptions
    from imputebench.runner.trials import expand
    from imputebench.runner.worker import TrialOptions, models_dir_for

    # Everything is checked before the first trial, and before the store is created or changed: a bad value
    # exits 2 naming it and where it came from.
    demonstration = models is None and datasets is None
    if demonstration:
        max_epochs, patience = max_epochs or QUICKSTART_EPOCHS, patience or QUICKSTART_EPOCHS
    models = QUICKSTART_MODELS if models is None else models
    datasets = QUICKSTART_DATASETS if datasets is None else datasets
    try:
        _check_format(fmt)
        model_list = _split(models)
        for name in model_list:
            get_model(name)
        mechanism_list = _split(mechanisms)
        for name in mechanism_list:
            get_mechanism(name)
        get_protocol(protocol)
        _check_resources(executor, accelerator, ray_address, cpus_per_trial, gpus_per_trial)
        device = _device(accelerator) if executor == "local" else "cpu"  # a Ray trial's device is the GPU Ray gives it
        dataset_list = resolve_datasets(datasets)
        ratio_list, seed_list = _ratios(ratios, mechanism_list), _seeds(seeds)
        overrides = read_model_config(model_config) if model_config else {}
        distribution = Distribution(devices, strategy)
        for name in model_list:
            if not is_classical(name):
                get_model(name)().distribute(distribution)  # adversarial models refuse DDP
        wandb_options = WandbOptions(wandb_project, wandb_entity, wandb_mode) if wandb else None
        options = TrialOptions(data_dir, device, models_dir_for(store), trial_timeout, verbose=verbose,
                               threads=max(1, int(cpus_per_trial)), distribution=distribution, wandb=wandb_options,
                               allow_modified_data=allow_modified_data)
        check_store(store)
    except (UnknownNameError, ValueError, StoreError) as err:
        raise _fail(str(err), 2) from None
    loaded = _load_verified(dataset_list, data_dir, allow_modified_data)
    skip = _image_skips(model_list, loaded)
    try:
        evaluation = _check_evaluations(_split(evaluate) if evaluate else [], loaded)
        _check_models_take_data(model_list, loaded, skip)
        config_for = config_resolver({n: d.schema for n, d in loaded.items()}, overrides, model_config,
                                     max_epochs=max_epochs, patience=patience)
        provenance = {name: {k: v for k, v in data.provenance().items() if k != "files"} for name, data in loaded.items()}
        trials = expand(model_list, dataset_list, mechanism_list, ratio_list, seed_list, protocol, config_for, skip,
                        provenance, evaluation)
    except ValueError as err:
        raise _fail(str(err), 2) from None
    if not trials:
        raise _fail("the sweep is empty: name at least one model, dataset, mechanism, ratio and seed", 2)
    try:
        results = ResultStore(store)
        tracker = _Tracker(SweepTracker(wandb_options, store, data_dir), verbose) if wandb_options else None
    except StoreError as err:
        raise _fail(str(err), 2) from None
    except TrackingError as err:
        raise _fail(str(err), 2) from None
    with results:
        summary = _sweep(trials, results, options, loaded, executor, ray_address, cpus_per_trial, gpus_per_trial,
                         max_retries, verbose, tracker)
        keys = {t.key for t in trials}
        board = lb.summarise(results.frame(keys), attempts=results.attempts(keys))
    typer.echo(_render(board, fmt))
    if demonstration:
        err_console.print(f"A quick demonstration: the deep models trained at most {max_epochs} epochs, not their papers' "
                          "schedules. Name --models and --datasets for a real sweep.", highlight=False)
    if tracker is not None:
        tracker.sweep_finished(board, keys)
    retried = f", {summary.retried} retried" if summary.retried else ""
    elsewhere = f", {summary.elsewhere} stored by another sweep meanwhile" if summary.elsewhere else ""
    err_console.print(
        f"{summary.total} trials: {summary.skipped} already stored, {summary.ok} ran ok, {summary.failed} failed{retried}"
        f"{elsewhere}; store {store}",
        highlight=False,
    )
    if summary.failed or (tracker is not None and tracker.error):
        raise typer.Exit(1)


def _load_verified(dataset_list: list[str], data_dir: Path | None, allow_modified_data: bool) -> dict:
    """Every dataset read, verified against its sha256 and validated before any trial; exit 2 naming a bad one."""
    from imputebench.data.dataset import DatasetError
    from imputebench.data.sources import load_dataset

    try:
        loaded = {name: load_dataset(name, data_dir, allow_modified=allow_modified_data) for name in dataset_list}
        for data in loaded.values():
            data.validate()  # all rows first: an entirely missing column is named, not reported as "no rows"
            data.complete_cases().validate()
    except DatasetError as err:
        raise _fail(str(err), 2) from None
    for name, data in loaded.items():
        if data.provenance()["status"] == "modified":
            err_console.print(f"[yellow]modified data:[/] {name} does not match its recorded sha256; its rows are marked "
                              "modified (--allow-modified-data)", highlight=False)
    return loaded


def _image_skips(model_list: list[str], loaded: dict) -> frozenset[tuple[str, str]]:
    """The (model, dataset) pairs a model that cannot take images is not run on, each said once."""
    from imputebench.models.registry import get_model

    skip = frozenset(
        (model, name) for model in model_list for name, data in loaded.items()
        if data.schema.modalities and get_model(model).not_on_images
    )
    for model in sorted({model for model, _ in skip}):
        names = ", ".join(name for m, name in sorted(skip) if m == model)
        err_console.print(f"[yellow]skipped[/] {model} on {names}: {get_model(model).not_on_images}", highlight=False)
    return skip


def _check_models_take_data(model_list: list[str], loaded: dict, skip: frozenset[tuple[str, str]]) -> None:
    """Every (model, dataset) pair of a sweep can run, or a ValueError naming the first that cannot and why."""
    from imputebench.models.registry import get_model

    for model in model_list:
        for name, data in loaded.items():
            reason = None if (model, name) in skip else get_model(model).refuses(data.schema)
            if reason is not None:
                raise ValueError(f"{model} cannot run on {name}: {reason}")


def _check_resources(executor: str, accelerator: str, ray_address: str | None, cpus: float, gpus: float) -> None:
    """Options that would be silently ignored are refused: each executor takes its own."""
    from imputebench.runner.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if not cpus > 0 or not gpus >= 0:
        raise ValueError(f"--cpus-per-trial must be > 0 and --gpus-per-trial >= 0, got {cpus:g} and {gpus:g}")
    if executor == "local" and (ray_address is not None or gpus > 0):
        raise ValueError("--ray-address and --gpus-per-trial apply to --executor ray; locally, --accelerator picks the device")
    if executor == "ray" and accelerator != "cpu":
        raise ValueError("with --executor ray a trial's device is the GPU Ray gives it: ask with --gpus-per-trial, not --accelerator")


class _Tracker:
    """W&B logging for ``run --wandb`` that never stops a sweep: the first W&B error is reported, logging
    stops, and the command exits 1 at the end (every row is in the store regardless)."""

    def __init__(self, tracker: SweepTracker, verbose: bool) -> None:
        self.tracker, self.error = tracker, None
        if not verbose:
            os.environ.setdefault("WANDB_SILENT", "true")  # W&B's own lines would break the progress display

    def _log(self, call, *args) -> None:
        from imputebench.runner.tracking import TrackingError

        if self.error is None:
            try:
                call(*args)
            except TrackingError as err:
                self.error = err
                err_console.print(f"[bold red]W&B logging stopped:[/] {escape(str(err))} (results are still stored)", highlight=False)

    def trial_finished(self, row) -> None:
        self._log(self.tracker.trial_finished, row)

    def sweep_finished(self, board, keys) -> None:
        self._log(self.tracker.sweep_finished, board, keys)


def _sweep(trials, results: ResultStore, options: TrialOptions, loaded, executor: str, ray_address: str | None,
           cpus_per_trial: float, gpus_per_trial: float, max_retries: int, verbose: bool,
           tracker: _Tracker | None) -> SweepSummary:
    """The sweep under a progress display; every attempt stored as it ends, then logged to W&B if asked."""
    from imputebench.runner.execute import SweepInterrupted, run_sweep
    from imputebench.runner.executors import LocalExecutor, RayExecutor, RayNotInstalled
    from imputebench.runner.progress import SweepProgress

    try:
        runner = (LocalExecutor(options, loaded) if executor == "local" else
                  RayExecutor(options, loaded, ray_address, cpus_per_trial, gpus_per_trial, verbose=verbose))
    except (RayNotInstalled, ValueError) as err:
        raise _fail(str(err), 2) from None
    finished = results.finished_keys()  # one query, not one per trial
    pending = [t for t in trials if t.key not in finished]
    try:
        with SweepProgress(err_console, len(trials), len(trials) - len(pending), verbose, pending) as progress:

            def ended(trial, row, retry) -> None:
                progress.trial_ended(trial, row, retry)
                if tracker is not None:
                    tracker.trial_finished(row)

            waiting = [0]

            def wait(count: int) -> None:  # said once per change, not at every poll
                if count != waiting[0]:
                    waiting[0] = count
                    progress.note(f"waiting for {count} trials another sweep on this store is running "
                                  "(taken over if its heartbeat stops)")

            return run_sweep(trials, results, executor=runner, max_retries=max_retries,
                             on_trial_start=progress.trial_started, on_trial_end=ended, on_epoch=progress.epoch_ended,
                             on_elsewhere=progress.trial_elsewhere,
                             on_wait=wait)
    except (KeyboardInterrupt, SweepInterrupted):
        raise _fail(f"interrupted; every finished trial is stored in {results.path}, rerun to resume", 130) from None
    finally:
        runner.close()


REPRODUCE_OUT = Path("results/reproduce")


@app.command()
def reproduce(
    preset: Annotated[str | None, typer.Argument(help="A preset (see --list) or a preset YAML file.")] = None,
    list_presets: Annotated[bool, typer.Option("--list", help="List the presets: paper, table, cells, models, datasets, CPU time.")] = False,
    budget: Annotated[str, typer.Option(help="reduced (a few CPU hours) or paper (the published schedule).")] = "reduced",
    data_dir: DataDir = None,
    store: StorePath = DEFAULT_STORE,
    out: Annotated[Path, typer.Option(help="Folder for <preset>.md and <preset>.csv.")] = REPRODUCE_OUT,
    accelerator: Accelerator = "cpu",
    executor: Executor = "local",
    ray_address: RayAddress = None,
    cpus_per_trial: CpusPerTrial = 1.0,
    gpus_per_trial: GpusPerTrial = 0.0,
    max_retries: MaxRetries = 0,
    trial_timeout: TrialTimeout = None,
    verbose: Verbose = False,
) -> None:
    """Run one published table (a preset) through the ordinary runner and write its cells, each with a verdict.

    The verdict rule is in results/reproduce/README.md; the presets are configs/reproduce/*.yaml.
    """
    import time

    from imputebench.reproduce.preset import BUDGETS, PresetError, load_preset, preset_names

    if list_presets:
        _list_presets(out)
        return
    if preset is None:
        raise _fail(f"name a preset ({', '.join(preset_names())}) or pass --list", 2)
    started = time.perf_counter()
    try:
        if budget not in BUDGETS:
            raise ValueError(f"--budget {budget!r}: choose one of {', '.join(BUDGETS)}")
        spec = load_preset(preset)
        spec.check_names()
        plan = _plan_preset(spec, budget, data_dir, store, accelerator, executor, ray_address, cpus_per_trial,
                            gpus_per_trial, trial_timeout, verbose)
    except (UnknownNameError, PresetError, ValueError) as err:
        raise _fail(str(err), 2) from None
    trials, cell_keys, options, loaded = plan
    from imputebench.reproduce.report import RunFacts, cell_results, summary_line, write_report
    from imputebench.runner.store import ResultStore, StoreError

    try:
        results = ResultStore(store)
    except StoreError as err:
        raise _fail(str(err), 2) from None
    with results:
        summary = _sweep(trials, results, options, loaded, executor, ray_address, cpus_per_trial, gpus_per_trial,
                         max_retries, verbose, None)
        keys = {t.key for t in trials}
        frame = results.frame(keys)
    cells = cell_results(spec, frame, cell_keys)
    command = f"imputebench reproduce {preset} --budget {budget}" + ("" if executor == "local" else f" --executor {executor}")
    md, table = write_report(spec, cells, frame, RunFacts(command, budget, time.perf_counter() - started), out)
    err_console.print(f"{spec.name}: {summary_line(cells)}; wrote {md} and {table}", highlight=False)
    if summary.failed:
        raise typer.Exit(1)


def _plan_preset(spec, budget: str, data_dir: Path | None, store: Path, accelerator: str, executor: str,
                 ray_address: str | None, cpus_per_trial: float, gpus_per_trial: float, trial_timeout: float | None,
                 verbose: bool):
    """The preset's trials (every block's, checked before the first runs), the trial keys of each cell, the
    trial options and the loaded datasets. A bad value raises ValueError (exit 2)."""
    from imputebench.runner.presets import config_resolver
    from imputebench.runner.store import check_store
    from imputebench.runner.trials import expand
    from imputebench.runner.worker import TrialOptions, models_dir_for

    _check_resources(executor, accelerator, ray_address, cpus_per_trial, gpus_per_trial)
    device = _device(accelerator) if executor == "local" else "cpu"
    options = TrialOptions(data_dir, device, models_dir_for(store), trial_timeout, verbose=verbose,
                           threads=max(1, int(cpus_per_trial)))
    check_store(store)
    chosen = spec.budgets[budget]
    blocks = spec.blocks()
    loaded = _load_verified(sorted({d for b in blocks for d in b.datasets}), data_dir, False)
    schemas = {name: data.schema for name, data in loaded.items()}
    provenance = {name: {k: v for k, v in data.provenance().items() if k != "files"} for name, data in loaded.items()}
    trials, cell_keys = {}, {}
    for block in blocks:
        skip = _image_skips([block.model], {d: loaded[d] for d in block.datasets})
        max_epochs, patience = chosen.epochs_for(block.model)
        config_for = config_resolver(schemas, {block.model: block.config},
                                     file_label=f"preset {spec.name}, rows {', '.join(block.rows)}: config",
                                     max_epochs=max_epochs, patience=patience)
        _check_evaluations(list(block.evaluation), {d: loaded[d] for d in block.datasets})
        _check_models_take_data([block.model], {d: loaded[d] for d in block.datasets}, skip)
        planned = expand([block.model], block.datasets, [block.mechanism], [block.ratio], list(range(chosen.seeds)),
                         spec.protocol, config_for, skip, provenance, block.evaluation)
        trials.update({t.key: t for t in planned})
        for column in block.columns:
            keys = {t.key for t in planned if t.dataset == spec.columns[column].dataset}
            for row in block.rows:
                cell_keys.setdefault((row, column), set()).update(keys)
    return list(trials.values()), cell_keys, options, loaded


def _check_evaluations(names: list[str], loaded: dict) -> tuple[str, ...]:
    """``names`` as a trial's evaluations, once each, after checking each is known and applies to every dataset
    of the sweep (a table with a target for ``downstream``, images with a label for ``label``): ValueError."""
    from imputebench.downstream import task_of
    from imputebench.label_accuracy import label_feature

    unknown = [name for name in names if name not in EVALUATIONS]
    if unknown:
        raise ValueError(f"unknown evaluation {unknown[0]!r}; known: {', '.join(EVALUATIONS)}")
    for dataset in loaded.values():
        if DOWNSTREAM in names:
            task_of(dataset)
        if LABEL in names:
            label_feature(dataset.schema, dataset.name)
    return tuple(sorted(set(names)))


def _list_presets(out: Path) -> None:
    """``reproduce --list``: one line per preset, with the measured wall time of a committed result where there is one."""
    from imputebench.reproduce.preset import load_preset, preset_names

    table = Table(Column("preset", no_wrap=True), *(Column(h, overflow="fold") for h in (
        "paper", "table", "cells", "models", "datasets", "CPU h reduced", "CPU h paper", "result")))
    for name in preset_names():
        spec = load_preset(name)
        models = sorted({r.model for r in spec.rows.values() if r.model} | set(spec.reference_models))
        datasets = sorted({c.dataset for c in spec.columns.values() if c.dataset})
        result = out / f"{name}.md"
        table.add_row(name, spec.paper, spec.table, str(len(spec.paper_values)), ", ".join(models),
                      ", ".join(datasets) or "–", f"~{spec.budgets['reduced'].estimated_cpu_hours:g}",
                      f"~{spec.budgets['paper'].estimated_cpu_hours:g}", _result_line(result))
    console.print(table)
    console.print("CPU hours are estimates on 2 cores (each preset's budget note gives the basis); 'result' is the "
                  "committed run's budget and verdicts.", highlight=False)


def _result_line(path: Path) -> str:
    """The budget and verdict counts of a written report, or '–'."""
    if not path.is_file():
        return "–"
    budget = verdicts = ""
    for line in path.read_text().splitlines():
        if line.startswith("- **Budget**: `"):
            budget = line.split("`")[1]
        elif line.startswith("- **Verdicts**: "):
            verdicts = line.removeprefix("- **Verdicts**: ").rstrip(".")
    return f"{budget}: {verdicts}" if budget else "–"


@app.command()
def plot(
    kind: Annotated[str, typer.Argument(help="images (VSAE Figures 4, 7, 5) or ratio-curve (error against the missing ratio, Figure 2).")] = "images",
    store: StorePath = DEFAULT_STORE,
    models: Annotated[str | None, typer.Option(help="Only these models (comma-separated).")] = None,
    datasets: Annotated[str | None, typer.Option(help="Only these datasets (comma-separated).")] = None,
    data_dir: DataDir = None,
    output: Annotated[Path | None, typer.Option(help="Folder for the PNG files. Default: beside the store, <store>.plots.")] = None,
    columns: Annotated[int, typer.Option(help="Test rows per imputation grid and draws per sample.", min=1, max=32)] = 8,
    wandb: Wandb = False,
    wandb_project: WandbProject = "imputebench",
    wandb_entity: WandbEntity = None,
    wandb_mode: WandbMode = "online",
) -> None:
    """Pictures of a store: image trials' imputations and generations, or each model's error against the missing ratio."""
    from imputebench.data.dataset import DatasetError
    from imputebench.runner.pictures import plot_dir_for, plot_store
    from imputebench.runner.store import ResultStore, StoreError
    from imputebench.runner.tracking import TrackingError, WandbOptions, log_pictures

    if kind not in PLOT_KINDS:
        raise _fail(f"unknown plot {kind!r}: choose one of {', '.join(PLOT_KINDS)}", 2)
    if not store.exists():
        raise _fail(f"no results store at {store}; run `imputebench run` first", 1)
    if kind == "ratio-curve":
        return _plot_ratio_curves(store, output or plot_dir_for(store))
    try:
        tracking = WandbOptions(wandb_project, wandb_entity, wandb_mode) if wandb else None
    except ValueError as err:
        raise _fail(str(err), 2) from None
    output = output or plot_dir_for(store)
    try:
        with ResultStore(store, readonly=True) as results:
            frame = results.frame()
        written = plot_store(frame, store, output, data_dir, _split(models or "") or None, _split(datasets or "") or None, columns)
    except (StoreError, DatasetError, UnknownNameError, ValueError) as err:
        raise _fail(str(err), 1) from None
    if not written:
        raise _fail(f"no trained image model in {store}: pictures need a deep model run on an image dataset", 1)
    for _, pictures in written:
        for path in pictures.values():
            typer.echo(str(path))
    if tracking is not None:
        try:
            for row, pictures in written:
                typer.echo(f"W&B run {log_pictures(row, pictures, tracking)} ({tracking.mode}): {len(pictures)} pictures")
        except TrackingError as err:
            raise _fail(f"{err} (the PNG files above are written)", 1) from None


def _plot_ratio_curves(store: Path, output: Path) -> None:
    from imputebench import leaderboard as lb
    from imputebench.plots import save as save_figure
    from imputebench.ratio_curves import ratio_curves
    from imputebench.runner.store import ResultStore, StoreError

    try:
        with ResultStore(store, readonly=True) as results:
            figures = ratio_curves(lb.summarise(results.frame(), attempts=results.attempts()))
    except StoreError as err:
        raise _fail(str(err), 1) from None
    if not figures:
        raise _fail(f"no dataset in {store} has finished trials at two or more missing ratios: nothing to draw", 1)
    for stem, figure in figures.items():
        typer.echo(str(save_figure(figure, output / f"{stem}.png")))


@app.command()
def leaderboard(
    store: StorePath = DEFAULT_STORE,
    fmt: Format = "md",
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout (missing folders are created).")] = None,
    by: Annotated[str | None, typer.Option(
        help="Fields that run across the tables, comma-separated, from protocol, dataset, mechanism, ratio "
             "(e.g. mechanism,ratio); one table per remaining combination and metric.")] = None,
    config: Annotated[str, typer.Option(
        "--config", help="latest: each model's most recently run configuration per cell; all: every configuration "
                         "as its own row, labelled by the fields in which it differs (vae (max_epochs=5)).")] = "latest",
) -> None:
    """Leaderboard of every finished trial in the store, with each model's failed trials.

    A mean is taken over the seeds of one configuration only: trials whose identity differs in anything but
    the seed (model settings, data file, numerics version) are never averaged together.
    """
    from imputebench import leaderboard as lb
    from imputebench.runner.store import ResultStore, StoreError

    try:
        _check_format(fmt)
        fields = None if by is None else lb.check_by(_split(by))
        if config not in lb.CONFIG_VIEWS:
            raise ValueError(f"--config {config!r}: choose one of {', '.join(lb.CONFIG_VIEWS)}")
        if output is not None:
            _prepare_output(output)
    except ValueError as err:
        raise _fail(str(err) if str(err).startswith("--") else f"--{err}", 2) from None
    if not store.exists():
        raise _fail(f"no results store at {store}; run `imputebench run` first", 1)
    try:
        with ResultStore(store, readonly=True) as results:
            summary = lb.summarise(results.frame(), attempts=results.attempts(), configs=config)
    except StoreError as err:
        raise _fail(str(err), 2) from None
    text = _render(summary, fmt, by=fields)
    if output is None:
        typer.echo(text)
        return
    try:
        output.write_text(text)
    except OSError as err:
        raise _fail(f"--output {output}: cannot write the leaderboard there: {err.strerror or err}", 1) from None


def _prepare_output(path: Path) -> None:
    """Create ``path``'s missing folders, or say clearly why it cannot be written (a ValueError naming --output)."""
    if path.is_dir():
        raise ValueError(f"--output {path} is a folder: give a file name, e.g. {path / 'leaderboard.md'}")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ValueError(f"--output {path}: {blocking} is a file, so no folder can be created there")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--output {path}: cannot create the folder {path.parent}: {err.strerror or err}") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"--output {path}: {path if path.exists() else path.parent} is not writable")


@app.command("datasets")
def list_datasets(data_dir: DataDir = None) -> None:
    """Every dataset: rows, features by kind, source and licence."""
    from imputebench.data.dataset import DatasetError
    from imputebench.data.sources import dataset_names, default_data_dir, get_spec, load_dataset

    table = Table(Column("name", no_wrap=True), Column("rows", no_wrap=True), "features", "target", "source", "licence")
    problems: list[str] = []
    for name in dataset_names():
        spec = get_spec(name)
        rows, features, target = "not fetched", "–", "–"
        if all(f.local_path(data_dir or default_data_dir()).exists() for f in spec.files):
            try:
                data = load_dataset(name, data_dir)
                complete = data.complete_cases().n_rows
                rows = f"{data.n_rows}" + (f" ({complete} complete)" if complete != data.n_rows else "")
                features, target = data.schema.summary(), data.target_name or "–"
            except DatasetError as err:
                rows = "[red]unreadable[/]"
                problems.append(str(err))
        table.add_row(name, rows, features, target, spec.source, spec.licence)
    console.print(table)
    for problem in problems:
        err_console.print(f"[red]unreadable:[/] {problem}", highlight=False)


@app.command("models")
def list_models() -> None:
    """Every registered model, its paper and what it is trained on."""
    table = Table(Column("name", no_wrap=True), "description", "paper", "trained on")
    for name, card in sorted(MODELS.items()):
        table.add_row(name, card.summary, card.paper, "complete data" if card.trained_on_complete_data else "observed entries")
    console.print(table)


@data_app.command("fetch")
def data_fetch(
    names: Annotated[str, typer.Argument(help="Dataset names or aliases, comma-separated, or 'all'.")],
    data_dir: DataDir = None,
    mirror: Annotated[str | None, typer.Option(help="Fetch from this mirror (URL or folder) instead of the canonical URLs.")] = None,
) -> None:
    """Download dataset files and verify their sha256."""
    from imputebench.data.download import ChecksumError, DownloadError, fetch
    from imputebench.data.sources import dataset_names, default_data_dir, resolve_datasets

    try:
        selected = dataset_names() if names == "all" else resolve_datasets(names)
    except UnknownNameError as err:
        raise _fail(str(err), 2) from None
    target = data_dir or default_data_dir()
    try:
        paths = fetch(selected, target, mirror=mirror)
    except (ChecksumError, DownloadError) as err:
        raise _fail(str(err), 1) from None
    console.print(f"{len(paths)} files verified in {target}")


@store_app.command("show")
def store_show(
    key: Annotated[str | None, typer.Argument(help="A trial's key (or its first characters): show its full row.")] = None,
    store: StorePath = DEFAULT_STORE,
) -> None:
    """Counts of the store's trials by status, model, dataset and configuration; or one trial's full row."""
    import json

    from imputebench.runner.store import ResultStore, StoreError
    from imputebench.runner.store_report import configurations, status_counts

    if not store.exists():
        raise _fail(f"no results store at {store}; run `imputebench run` first", 1)
    try:
        with ResultStore(store, readonly=True) as results:
            if key is not None:
                typer.echo(json.dumps(results.row(key), indent=2, sort_keys=True))
                return
            frame, attempts, audit = results.frame(), results.attempts(), results.audit()
    except StoreError as err:
        raise _fail(str(err), 2) from None
    except KeyError as err:
        raise _fail(str(err.args[0]), 2) from None
    out = console if console.is_terminal else Console(width=SHOW_WIDTH)  # a file or pipe: whole lines, no cut cells
    out.print(f"{len(frame)} trials in {store}", highlight=False)
    if frame.empty:
        return
    out.print(_counts_table("status", frame.groupby("status").size().to_frame("trials")))
    for column in ("model", "dataset"):
        out.print(_counts_table(column, status_counts(frame, [column])))
    out.print(_counts_table("configurations (settings: a trial's identity without its seed), latest first",
                            configurations(frame, attempts).set_index("setting"), fold=("label",)))
    out.print("Forget rows with `imputebench store forget --failed`, `--config SETTING`, `--model` or `--dataset`; "
              "`imputebench store show KEY` prints one trial's row.", highlight=False)
    if not audit.empty:
        out.print(_counts_table("forgotten", audit.set_index("at"), fold=("selection", "command")))


def _counts_table(title: str, counts: pd.DataFrame, fold: tuple[str, ...] = ()) -> Table:
    """``counts`` (its index first) as a table; the ``fold`` columns wrap, the others are kept whole."""
    counts = counts.reset_index()
    columns = [Column(str(c), no_wrap=c not in fold, overflow="fold") for c in counts.columns]
    table = Table(*columns, title=title, title_justify="left")
    for values in counts.itertuples(index=False):
        table.add_row(*["–" if v is None or v != v else str(v) for v in values])
    return table


@store_app.command("forget")
def store_forget(
    store: StorePath = DEFAULT_STORE,
    failed: Annotated[bool, typer.Option("--failed", help="Trials whose stored status is not ok (failed, diverged, timeout).")] = False,
    config: Annotated[str | None, typer.Option("--config", help="The trials of one configuration: its setting hash (6+ characters; see `store show`).")] = None,
    model: Annotated[str | None, typer.Option(help="The trials of one model.")] = None,
    dataset: Annotated[str | None, typer.Option(help="The trials of one dataset.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove trials (and all their attempts) from the store; every forget is recorded in its audit table.

    Criteria combine: --failed --model vae forgets vae's failed trials only.
    """
    import shlex
    import sys

    from imputebench.runner.store import ResultStore, Selection, StoreError

    selection = Selection(failed=failed, setting=config, model=model, dataset=dataset)
    try:
        selection.where()
    except ValueError as err:
        raise _fail(str(err), 2) from None
    if not store.exists():
        raise _fail(f"no results store at {store}; nothing to forget", 1)
    try:
        with ResultStore(store) as results:
            count = results.count(selection)
            what = ", ".join(f"{k}={v}" for k, v in selection.describe().items())
            if count == 0:
                console.print(f"no stored trial matches {what}: nothing forgotten", highlight=False)
                return
            if not yes and not typer.confirm(f"Forget {count} trials ({what}) from {store}?", default=False):
                raise _fail("nothing forgotten", 1)
            command = shlex.join(["imputebench", *sys.argv[1:]])
            trials, attempts = results.forget(selection, command)
    except StoreError as err:
        raise _fail(str(err), 2) from None
    console.print(f"forgot {trials} trials and {attempts} attempts ({what}); recorded in the store's audit table", highlight=False)


@store_app.command("export")
def store_export(
    out: Annotated[Path, typer.Argument(help="The JSON Lines file to write (replaced whole).")],
    store: StorePath = DEFAULT_STORE,
) -> None:
    """Every trial row and attempt of the store as text (JSON Lines, sorted by key): to commit, or to merge into
    another store with `store import`."""
    from imputebench.runner.store import StoreError
    from imputebench.runner.store_exchange import export_store

    if not store.exists():
        raise _fail(f"no results store at {store}; nothing to export", 1)
    try:
        records = export_store(store, out)
    except (StoreError, OSError) as err:
        raise _fail(f"cannot export {store} to {out}: {err}", 2) from None
    console.print(f"exported {len(records.trials)} trials and {len(records.attempts)} attempts of {store} to {out}", highlight=False)


@store_app.command("import")
def store_import(
    source: Annotated[Path, typer.Argument(help="A file written by `store export`.")],
    store: StorePath = DEFAULT_STORE,
) -> None:
    """Merge an export into the store (created if absent) without altering a stored finished row: a trial the
    store lacks is added, an unfinished one is replaced by an imported ok row, the rest stays; a sweep then
    resumes from both."""
    from imputebench.runner.store import StoreError
    from imputebench.runner.store_exchange import ExchangeError, import_export

    try:
        counts = import_export(source, store)  # every line checked before the store is touched
    except (ExchangeError, StoreError) as err:
        raise _fail(str(err), 2) from None
    console.print(f"imported {source} into {store}: {counts}", highlight=False)


def main() -> None:
    app()
