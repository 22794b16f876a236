"""Reproduction presets: a published table as a YAML file in ``configs/reproduce/`` (shipped as
``imputebench.configs/reproduce``), checked when read.

A preset names the paper and the table, the protocol, mechanism and missing ratio (a column may set its own), the
paper's *rows* (each one of our registered models with its configuration, or why we have none) and *columns*
(each a dataset and the metric the paper reports on it, or why it is not comparable here), the paper's value for
every cell exactly as printed (``"0.964 ± 0.007"``; ``"0.45 ± Δ"`` where the paper bounds its spread by
``delta``), how many runs the paper's ± was taken over, and two budgets: ``paper`` (the published schedule) and
``reduced`` (the whole preset in a few CPU hours here). ``tests/test_reproduce_presets.py`` checks every typed-in
cell against the table's text in ``papers/``.

The preset's trials are planned as *blocks*: rows that share a model configuration, at one (mechanism, ratio),
are one ordinary sweep (:func:`Preset.blocks`), so the runner's store, resume and executors serve a preset as
they serve ``imputebench run``. Presets whose trials have the same identity share them through the store; a preset
may add ``evaluation`` to every trial so that two tables of one experiment do (vaeac-t1 with vaeac-t2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from imputebench.errors import UnknownNameError
from imputebench.masks import validate_ratio_for
from imputebench.metric_directions import EVALUATIONS, evaluation_of

BUDGETS = ("reduced", "paper")
#: a cell as the paper prints it: a value, then ± and a spread or Δ (the paper's bound on spreads too small to
#: print), or the value alone where the paper prints no spread (MVAE's Tables 8-9)
CELL = re.compile(r"^\s*(?P<value>-?\d+(?:\.(?P<decimals>\d+))?)(?:\s*±\s*(?P<error>\d+(?:\.\d+)?|Δ))?\s*$")


class PresetError(ValueError):
    """A preset that cannot be read or is inconsistent; the message names the file and the key."""


@dataclass(frozen=True)
class PaperValue:
    """One published cell: ``value ± error`` (``error`` the paper's Δ bound where it prints Δ, 0 where it prints
    no spread: the verdict rule then takes our seed spread for the paper's, see :mod:`~imputebench.reproduce.verdict`)."""

    text: str
    value: float
    error: float
    decimals: int  # digits after the point, as printed
    is_delta: bool

    @classmethod
    def parse(cls, text: str, delta: float | None) -> PaperValue:
        match = CELL.match(str(text))
        if match is None:
            raise ValueError(f"{text!r} is not 'value ± spread' (e.g. '0.964 ± 0.007' or '0.45 ± Δ') or a value alone")
        is_delta = match["error"] == "Δ"
        if is_delta and delta is None:
            raise ValueError(f"{text!r} uses Δ but the preset gives no delta (the paper's bound on it)")
        error = delta if is_delta else float(match["error"] or 0.0)
        return cls(str(text).strip(), float(match["value"]), float(error), len(match["decimals"] or ""), is_delta)

    @property
    def rounding(self) -> float:
        """Half a unit of the last printed digit: the printed value's own uncertainty."""
        return 0.5 * 10.0 ** -self.decimals


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    """A column of the paper's table: the dataset and metric it maps to here, or why it cannot."""

    dataset: str | None = None  # a registered dataset; None with ``unavailable``
    metric: str | None = None  # a stored metric (nrmse, pfc, mse, ...)
    mechanism: str | None = None  # the table's, unless set
    ratio: float | None = Field(default=None, ge=0, lt=1)  # the table's, unless set; 0 where the mechanism takes it
    unavailable: str | None = None  # e.g. "SVHN is not in the offline mirror": the cells are not comparable
    # the paper's metric (or data) on this column cannot be compared with ours, found by evidence the reason cites:
    # ours still run and are shown, and every cell's verdict is not comparable with this reason
    incomparable: str | None = None
    caveat: str | None = None  # shown beside every verdict of the column (e.g. a dataset that may differ)

    @model_validator(mode="after")
    def _dataset_or_reason(self) -> Column:
        if (self.dataset is None) == (self.unavailable is None):
            raise ValueError("give either dataset (with metric) or unavailable (the reason), not both")
        if self.dataset is not None and self.metric is None:
            raise ValueError(f"dataset {self.dataset}: name the metric the paper reports")
        return self


class Row(_Strict):
    """A row of the paper's table: our model and its configuration, or why we have none."""

    model: str | None = None
    config: dict[str, object] = Field(default_factory=dict)  # the row's model configuration (beside the budget's)
    unavailable: str | None = None
    caveat: str | None = None

    @model_validator(mode="after")
    def _model_or_reason(self) -> Row:
        if (self.model is None) == (self.unavailable is None):
            raise ValueError("give either model or unavailable (the reason), not both")
        return self


class Budget(_Strict):
    """How long each deep model trains, and over how many seeds; ``note`` says how it differs from the paper."""

    seeds: int = Field(ge=2)  # a verdict needs a spread: at least two seeds
    max_epochs: int | None = Field(default=None, ge=1)
    patience: int | None = Field(default=None, ge=1)
    estimated_cpu_hours: float = Field(gt=0)  # on 2 cores; the basis is in ``note``
    # a model's own epoch budget instead of ``max_epochs`` (and its patience), where its epochs are much shorter
    # (MVAE's supervised baselines pass over the paired rows only)
    model_epochs: dict[str, int] = Field(default_factory=dict)
    note: str

    def epochs_for(self, model: str) -> tuple[int | None, int | None]:
        """``(max_epochs, patience)`` for ``model`` under this budget (None: the model's own)."""
        if model in self.model_epochs:
            return self.model_epochs[model], self.model_epochs[model]
        return self.max_epochs, self.patience


class Preset(_Strict):
    """One published table (module docstring)."""

    name: str
    paper: str
    paper_file: str  # in the papers folder
    table: str  # as the paper labels it: "Table 1"
    caption: str  # the start of the paper's caption, as printed
    protocol: str
    mechanism: str = "mcar"
    ratio: float = Field(gt=0, lt=1)
    higher_is_better: bool = False
    paper_runs: int = Field(ge=1)  # how many runs the paper's ± comes from
    spread: Literal["std"] = "std"  # what the paper's ± is (every seed paper states a standard deviation)
    delta: float | None = Field(default=None, gt=0)  # the paper's bound where a cell prints Δ
    rows: dict[str, Row]
    columns: dict[str, Column]
    reference_models: list[str] = Field(default_factory=list)  # ours beside the paper's rows (no paper value)
    # evaluations every trial runs beyond what the columns need, so that two tables of one experiment share their
    # trials (vaeac-t1's imputations are vaeac-t2's before the prediction step): one run serves both
    evaluation: list[str] = Field(default_factory=list)
    budgets: dict[Literal["reduced", "paper"], Budget]
    cells: dict[str, dict[str, str]]  # row label -> column label -> the paper's "value ± spread"
    transposed: bool = False  # the paper prints our rows as its columns and our columns as its rows
    notes: list[str] = Field(default_factory=list)  # what a reader must know to read the verdicts
    source: str = ""  # where the preset was read from (set by :func:`load_preset`)

    @field_validator("budgets")
    @classmethod
    def _both_budgets(cls, budgets: dict) -> dict:
        missing = [b for b in BUDGETS if b not in budgets]
        if missing:
            raise ValueError(f"missing budget {', '.join(missing)}")
        return budgets

    @field_validator("evaluation")
    @classmethod
    def _known_evaluations(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in EVALUATIONS]
        if unknown:
            raise ValueError(f"unknown evaluation {unknown[0]!r}; known: {', '.join(EVALUATIONS)}")
        return names

    @model_validator(mode="after")
    def _settings_run(self) -> Preset:
        """Every column's (mechanism, ratio) is one the runner takes: ratio 0 (nothing hidden) only for a
        mechanism that allows it and a metric that an evaluation scores (MVAE's "100%" column)."""
        for name, column in self.columns.items():
            if column.dataset is None:
                continue
            mechanism, ratio = self.column_setting(name)
            try:
                validate_ratio_for(mechanism, ratio)
            except ValueError as err:
                raise ValueError(f"columns.{name}: {err}") from None
            if ratio == 0.0 and evaluation_of(column.metric) is None:
                raise ValueError(f"columns.{name}: ratio 0 hides nothing, so {column.metric} has nothing to score; "
                                 "only an evaluation's metric (label_accuracy, downstream_*) is defined there")
        return self

    @model_validator(mode="after")
    def _complete_table(self) -> Preset:
        for row, values in self.cells.items():
            if row not in self.rows:
                raise ValueError(f"cells: row {row!r} is not among rows")
            unknown = sorted(set(values) - set(self.columns))
            if unknown:
                raise ValueError(f"cells.{row}: columns {unknown} are not among columns")
            for column, text in values.items():
                try:
                    PaperValue.parse(text, self.delta)
                except ValueError as err:
                    raise ValueError(f"cells.{row}.{column}: {err}") from None
        return self

    # --- what the preset means ----------------------------------------------------------------------------
    @cached_property
    def paper_values(self) -> dict[tuple[str, str], PaperValue]:
        return {(row, column): PaperValue.parse(text, self.delta)
                for row, values in self.cells.items() for column, text in values.items()}

    def column_setting(self, column: str) -> tuple[str, float]:
        spec = self.columns[column]
        return spec.mechanism or self.mechanism, spec.ratio if spec.ratio is not None else self.ratio

    def blocks(self) -> list[Block]:
        """The ordinary sweeps that run the preset: per (model configuration, mechanism, ratio), every dataset of
        the columns at that (mechanism, ratio). Reference models join the block of the table's own setting."""
        runs: dict[tuple, Block] = {}
        lines = [(label, row.model, row.config) for label, row in self.rows.items() if row.model is not None]
        lines += [(f"{model} (ours)", model, {}) for model in self.reference_models]
        for column, spec in self.columns.items():
            if spec.dataset is None:
                continue
            mechanism, ratio = self.column_setting(column)
            for label, model, config in lines:
                key = (model, yaml.safe_dump(config, sort_keys=True), mechanism, ratio)
                block = runs.setdefault(key, Block(model, dict(config), mechanism, ratio, [], [], [],
                                                   tuple(sorted(set(self.evaluation)))))
                if spec.dataset not in block.datasets:
                    block.datasets.append(spec.dataset)
                if label not in block.rows:
                    block.rows.append(label)
                if column not in block.columns:
                    block.columns.append(column)
                needed = evaluation_of(spec.metric)
                if needed is not None and needed not in block.evaluation:
                    block.evaluation = tuple(sorted((*block.evaluation, needed)))
        return list(runs.values())

    def check_names(self) -> None:
        """Every model, dataset, mechanism and protocol is a registered one; raises UnknownNameError."""
        from imputebench.data.protocols import get_protocol
        from imputebench.data.sources import dataset_names
        from imputebench.masks import get_mechanism
        from imputebench.models.registry import get_model

        get_protocol(self.protocol)
        for model in [r.model for r in self.rows.values() if r.model] + self.reference_models:
            get_model(model)
        known = set(dataset_names())
        for label, column in self.columns.items():
            if column.dataset is not None and column.dataset not in known:
                raise UnknownNameError(f"preset {self.name}: column {label!r} names dataset {column.dataset!r}, "
                                       f"which is not registered (see `imputebench datasets`)")
            get_mechanism(self.column_setting(label)[0])


@dataclass
class Block:
    """One ordinary sweep of a preset: ``model`` with ``config`` on ``datasets`` at (``mechanism``, ``ratio``),
    serving the cells of the table's ``rows`` and ``columns`` (their labels)."""

    model: str
    config: dict
    mechanism: str
    ratio: float
    datasets: list[str]
    rows: list[str]
    columns: list[str]
    evaluation: tuple[str, ...] = ()  # beyond imputation, from the columns' metrics: ("downstream",), ("label",)


def preset_folder() -> Path:
    return Path(str(files("imputebench.configs").joinpath("reproduce")))


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_folder().glob("*.yaml"))


def load_preset(name_or_path: str | Path) -> Preset:
    """The preset named ``name_or_path`` (see :func:`preset_names`), or read from that YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = preset_folder() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UnknownNameError(f"unknown preset {name_or_path!r}; known: {', '.join(preset_names())}")
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise PresetError(f"cannot read preset {path}: {err}") from None
    if not isinstance(content, dict):
        raise PresetError(f"preset {path}: expected a mapping of fields")
    content.setdefault("name", path.stem)
    content["source"] = f"configs/reproduce/{path.name}" if path.parent == preset_folder() else str(path)
    try:
        preset = Preset.model_validate(content)
    except ValidationError as err:
        problems = "; ".join(f"key {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise PresetError(f"preset {path}: {problems}") from None
    return preset
