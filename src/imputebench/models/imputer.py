"""The contract every imputation model fulfils, classical or deep."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod

import torch

from imputebench.data.table import MaskedTable, ValidationSplit
from imputebench.schema import FeatureSchema


class Imputer(ABC):
    """Fit on a training split, then fill the unobserved entries of any split.

    Both methods work in the encoded space of :class:`MaskedTable`. ``impute``
    returns an ``(n, D)`` tensor whose observed entries equal ``table.x``
    (use :func:`merge_observed`) and whose categorical blocks are one-hot.
    Randomness comes only from ``seed``.
    """

    #: registry name, set by :func:`imputebench.models.registry.register_model`
    name: str = ""
    #: the paper that defines the model, as cited in ``imputebench models``
    paper: str = ""
    #: trained on the complete training rows (the VSAE tables' "trained with
    #: fully-observed data" rows); the runner gives such models ``train_complete``
    trained_on_complete_data: bool = False
    #: why the model is not run on image datasets (None: it is); the runner skips such pairs with this reason
    not_on_images: str | None = None

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @abstractmethod
    def fit(self, train: MaskedTable, val: ValidationSplit | None = None) -> Imputer:
        """Learn from the observed entries of ``train`` (``val`` for model selection only)."""

    @abstractmethod
    def impute(self, table: MaskedTable) -> torch.Tensor:
        """``(n, D)`` imputations of ``table``; observed entries unchanged."""

    @classmethod
    def refuses(cls, schema: FeatureSchema) -> str | None:
        """Why this model cannot run on a table of ``schema`` (None: it can); the runner asks before any trial."""
        return None

    def config(self) -> dict:
        """Hyper-parameters that identify this model in a result row."""
        return {}

    @classmethod
    def config_fields(cls) -> frozenset[str]:
        """Names a trial's model configuration may set (presets keep only these): the
        constructor's keyword options other than ``seed``."""
        params = inspect.signature(cls.__init__).parameters.values()
        keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return frozenset(p.name for p in params if p.name not in ("self", "seed") and p.kind in keywords)

    def training_summary(self) -> dict[str, float]:
        """Figures about the fit worth storing beside the metrics (e.g. epochs used)."""
        return {}

    def epoch_history(self) -> list[dict[str, float]]:
        """Per-epoch training losses and validation scores (``{"epoch": e, "train_loss": ..., ...}``);
        none for a model fitted in one go."""
        return []


def merge_observed(table: MaskedTable, imputed: torch.Tensor) -> torch.Tensor:
    """Keep observed entries of ``table.x``; take ``imputed`` elsewhere. ``(n, D)``."""
    return torch.where(table.observed, table.x, imputed)
