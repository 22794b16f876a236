"""A model's configuration, resolved and validated before anything trains.

:func:`resolve_config` turns the overrides a trial gives a model (from presets, a
``--model-config`` file, the command line) into the model's *full* configuration: every field,
defaults included, each value checked against the type and range its ``Config`` dataclass
declares (:mod:`imputebench.models.config_types`; classical baselines declare them on their
constructor's keywords). pydantic does the checking, in its lax mode: ``"1e-3"`` (how YAML 1.1
reads ``1e-3``) becomes the float 0.001, while ``"two"`` for an integer, ``-1`` for a learning rate
or ``"gausian"`` for a choice are refused. The resolved configuration is part of a trial's identity,
so two spellings of one value (``1e-3``, ``0.001``) give one trial.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, fields, is_dataclass
from functools import cache
from typing import Any, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError, create_model


@dataclass(frozen=True)
class ConfigProblem:
    """One refused value: the field, what was given and why it is refused."""

    field: str
    value: object
    message: str


class ConfigValueError(ValueError):
    """A model configuration with unknown fields or values of the wrong type or range."""

    def __init__(self, model: str, problems: list[ConfigProblem]) -> None:
        self.model, self.problems = model, problems
        text = "; ".join(f"{p.field} = {p.value!r}: {p.message}" for p in problems)
        super().__init__(f"{model}: {text}")


def config_fields(cls: type) -> frozenset[str]:
    """The fields a configuration of model class ``cls`` may set."""
    return frozenset(_declared(cls))


def resolve_config(cls: type, overrides: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """``cls``'s full configuration (every field, defaults included) with ``overrides`` validated and
    applied, as plain JSON-ready values; a :class:`ConfigValueError` lists every refused value."""
    name = model or getattr(cls, "name", "") or cls.__name__
    declared = _declared(cls)
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise ConfigValueError(name, [ConfigProblem(f, overrides[f], f"unknown field; known: {known}") for f in unknown])
    try:
        validated = _adapter(cls).validate_python(dict(overrides))
    except ValidationError as err:
        raise ConfigValueError(name, [_problem(e, overrides) for e in err.errors()]) from None
    except ValueError as err:  # a Config's own __post_init__ check (e.g. GAIN's epochs or iterations)
        raise ConfigValueError(name, [ConfigProblem("(configuration)", overrides, str(err))]) from None
    values = asdict(validated) if is_dataclass(validated) else validated.model_dump()
    return {key: dict(value) if isinstance(value, dict) else value for key, value in values.items()}


def _problem(error: dict, overrides: dict[str, Any]) -> ConfigProblem:
    field = str(error["loc"][0]) if error.get("loc") else "(configuration)"
    return ConfigProblem(field, overrides.get(field, error.get("input")), error["msg"])


@cache
def _declared(cls: type) -> dict[str, tuple[Any, Any]]:
    """Field -> (annotation, default): a deep model's ``Config`` dataclass, or a classical baseline's
    constructor keywords other than ``seed``."""
    config = getattr(cls, "Config", None)
    if config is not None:
        hints = get_type_hints(config, include_extras=True)
        return {f.name: (hints[f.name], f.default) for f in fields(config)}
    hints = get_type_hints(cls.__init__, include_extras=True)
    keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        p.name: (hints.get(p.name, Any), p.default)
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name not in ("self", "seed") and p.kind in keywords
    }


@cache
def _adapter(cls: type) -> TypeAdapter:
    """pydantic's validator of ``cls``'s configuration (built once per class)."""
    config = getattr(cls, "Config", None)
    if config is not None:
        return TypeAdapter(config)
    model = create_model(f"{cls.__name__}Config", __config__=ConfigDict(extra="forbid"), **_declared(cls))
    return TypeAdapter(model)
