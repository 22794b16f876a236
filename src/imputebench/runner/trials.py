"""A sweep is the product models x datasets x mechanisms x ratios x seeds; a trial is one cell of it.

A trial's **identity** is everything that can change its number (:attr:`Trial.identity`): the
model and its fully resolved configuration (every field, defaults included), the data file's
sha256 and whether it was verified, the mechanism and its parameters, the ratio, the protocol and
its split parameters, the seed, and the numerics version (:mod:`imputebench.numerics`). Its key
(the store's primary key) hashes the identity; its *setting* hashes the identity without the seed,
so the leaderboard takes a mean over seeds of one setting only, never across settings.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property

from imputebench.data.protocols import get_protocol
from imputebench.masks import get_mechanism, validate_ratio, validate_ratio_for
from imputebench.numerics import NUMERICS_VERSION

#: how many hex digits of sha256 a trial's key and setting keep (80 bits)
KEY_DIGITS = 20


def digest(identity: Mapping) -> str:
    """The short sha256 of an identity's canonical JSON (sorted keys, no spaces)."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_DIGITS]


def setting_of(identity: Mapping) -> str:
    """The setting of an identity: its digest without the seed (what a mean over seeds may pool)."""
    return digest({k: v for k, v in identity.items() if k != "seed"})


def mechanism_identity(name: str) -> dict:
    """The mechanism's canonical name (``mnar`` is ``mnar_selfmask``: the same masks) and its parameters'
    values, e.g. ``{"name": "mar", "observed_fraction": 0.3}``."""
    function = get_mechanism(name)
    parameters = list(inspect.signature(function).parameters.values())[3:]  # after (x, ratio, rng)
    return {"name": function.__name__, **{p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}}


def protocol_identity(name: str) -> dict:
    """The protocol's name and split parameters, e.g. ``{"name": "vsae", "test_fraction": 0.2, ...}``."""
    protocol = asdict(get_protocol(name))
    protocol.pop("citation")
    return protocol


@dataclass(frozen=True, eq=False)
class Trial:
    """One cell of a sweep: a model scored on one masked dataset under one protocol.

    ``model_config`` is the model's resolved configuration and ``data`` the dataset's provenance
    (``{"sha256": ..., "status": "verified" | "modified" | "unverified"}``, None when unknown);
    both belong to the identity, so two trials are equal exactly when their keys are.
    """

    model: str
    dataset: str
    mechanism: str
    ratio: float
    seed: int
    protocol: str
    model_config: dict = field(default_factory=dict)
    data: dict | None = None
    numerics: int = NUMERICS_VERSION
    #: evaluations beyond the imputation metrics, e.g. ``("downstream",)`` (:mod:`imputebench.downstream`)
    evaluation: tuple[str, ...] = ()

    @cached_property
    def identity(self) -> dict:
        """Everything that can change this trial's number, as readable JSON-ready values."""
        return {
            "model": self.model,
            "config": dict(self.model_config),
            "dataset": self.dataset,
            "data": {"sha256": None, "status": "unknown"} if self.data is None else dict(self.data),
            "mechanism": mechanism_identity(self.mechanism),
            "ratio": float(self.ratio),
            "protocol": protocol_identity(self.protocol),
            "seed": int(self.seed),
            "numerics": self.numerics,
            # only when asked: the trials stored before evaluations existed keep their keys
            **({"evaluation": sorted(self.evaluation)} if self.evaluation else {}),
        }

    @cached_property
    def key(self) -> str:
        """Hash of the identity: the trial's row's primary key."""
        return digest(self.identity)

    @cached_property
    def setting(self) -> str:
        """Hash of the identity without the seed: trials of one setting differ only in their seed."""
        return setting_of(self.identity)

    @property
    def cell(self) -> tuple:
        """What the prepared data depends on (shared by every model)."""
        return (self.dataset, self.protocol, self.mechanism, self.ratio, self.seed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trial) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)


def expand(
    models: list[str],
    datasets: list[str],
    mechanisms: list[str],
    ratios: list[float],
    seeds: list[int],
    protocol: str,
    config_for: Callable[[str, str], dict] | None = None,
    skip: frozenset[tuple[str, str]] = frozenset(),
    data: Mapping[str, dict] | None = None,
    evaluation: tuple[str, ...] = (),
) -> list[Trial]:
    """All trials, ordered so that the models of one data cell run back to back.

    ``config_for(model, dataset)`` gives each trial's resolved model configuration
    (see :mod:`imputebench.runner.presets`) and ``data[dataset]`` its dataset's provenance; both are
    part of the trial's identity. ``skip`` holds (model, dataset) pairs left out (classical baselines
    on images). ``evaluation`` names the evaluations every trial adds to its imputation metrics (part of
    its identity too: such a trial is another trial than the same one without).
    """
    ratios = [validate_ratio(r, allow_zero=True) for r in ratios]
    for mechanism, ratio in itertools.product(mechanisms, ratios):
        validate_ratio_for(mechanism, ratio)
        if ratio == 0.0 and not evaluation:
            raise ValueError(f"mechanism {mechanism} at ratio 0 hides nothing, so no imputation can be scored: "
                             f"ask for an evaluation that scores it (e.g. --evaluate label)")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seeds must be non-negative integers, got {seed!r}")
    pairs = [(m, d) for m in models for d in datasets if (m, d) not in skip]
    configs = {(m, d): (config_for(m, d) if config_for else {}) for m, d in pairs}
    provenance = dict(data or {})
    return [
        Trial(model, dataset, mechanism, ratio, seed, protocol, configs[model, dataset], provenance.get(dataset),
              evaluation=tuple(sorted(set(evaluation))))
        for dataset, mechanism, ratio, seed, model in itertools.product(datasets, mechanisms, ratios, seeds, models)
        if (model, dataset) not in skip
    ]
