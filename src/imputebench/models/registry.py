"""Model registry: a dict and a decorator. Adding a model = one file + one import (in ``models/__init__.py``,
which imports every model module, so the registry is full whenever it is importable and imports no model)
+ its card in :mod:`imputebench.model_catalog`, the one place its paper and training data are written:
registering a class gives it its card's ``paper`` and ``trained_on_complete_data``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from imputebench.errors import UnknownNameError  # raised here; still importable from here for callers
from imputebench.model_catalog import MODELS as CARDS
from imputebench.models.imputer import Imputer

T = TypeVar("T", bound=type[Imputer])

_MODELS: dict[str, type[Imputer]] = {}


def register_model(name: str) -> Callable[[T], T]:
    def decorate(cls: T) -> T:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        if name not in CARDS:
            raise ValueError(f"model {name!r} has no card in imputebench/model_catalog.py")
        cls.name, cls.paper = name, CARDS[name].paper
        cls.trained_on_complete_data = CARDS[name].trained_on_complete_data
        _MODELS[name] = cls
        return cls

    return decorate


def model_names() -> list[str]:
    return sorted(_MODELS)


def get_model(name: str) -> type[Imputer]:
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownNameError(f"unknown model {name!r}; known: {', '.join(sorted(_MODELS))}") from None


def is_classical(name: str) -> bool:
    """A classical baseline (not a Lightning module): it runs as a CPU-only, single-process trial
    whatever ``--gpus-per-trial`` or ``--devices`` ask."""
    import torch

    return not issubclass(get_model(name), torch.nn.Module)
