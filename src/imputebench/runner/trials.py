"""A sweep is the product models x datasets x mechanisms x ratios x seeds."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from imputebench.masks import validate_ratio


@dataclass(frozen=True)
class Trial:
    """One cell of a sweep: a model scored on one masked dataset under one protocol."""

    model: str
    dataset: str
    mechanism: str
    ratio: float
    seed: int
    protocol: str
    model_config: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        """Stable hash of everything that defines the trial: its row's primary key."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def cell(self) -> tuple:
        """What the prepared data depends on (shared by every model)."""
        return (self.dataset, self.protocol, self.mechanism, self.ratio, self.seed)


def expand(
    models: list[str],
    datasets: list[str],
    mechanisms: list[str],
    ratios: list[float],
    seeds: list[int],
    protocol: str,
    config_for: Callable[[str, str], dict] | None = None,
    skip: frozenset[tuple[str, str]] = frozenset(),
) -> list[Trial]:
    """All trials, ordered so that the models of one data cell run back to back.

    ``config_for(model, dataset)`` gives each trial's model configuration
    (see :mod:`imputebench.runner.presets`); it is part of the trial's key.
    ``skip`` holds (model, dataset) pairs left out (classical baselines on images).
    """
    ratios = [validate_ratio(r) for r in ratios]
    pairs = [(m, d) for m in models for d in datasets if (m, d) not in skip]
    configs = {(m, d): (config_for(m, d) if config_for else {}) for m, d in pairs}
    return [
        Trial(model, dataset, mechanism, ratio, seed, protocol, configs[model, dataset])
        for dataset, mechanism, ratio, seed, model in itertools.product(datasets, mechanisms, ratios, seeds, models)
        if (model, dataset) not in skip
    ]
