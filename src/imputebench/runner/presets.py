"""Each trial's model configuration: dataclass defaults < family preset < the model authors'
per-dataset settings < config file < command line.

The family presets (learning rate and epochs per dataset family, VSAE appendix
B.3 / long version D) and the per-model, per-dataset settings (e.g. VAEAC's epochs
from its authors' reproduction commands) live in ``configs/training.yaml``, shipped
in the package as ``imputebench.configs``. A ``--model-config`` YAML file maps model names to
overrides (``configs/vsae-long.yaml``). ``--max-epochs`` / ``--patience`` win
over both. Only fields the model's ``Config`` declares are kept from a preset,
so classical baselines get an empty configuration, and models that keep their
own paper's settings (``uses_family_presets = False``: VAEAC, MIWAE, HI-VAE) get
none of the preset; a config file naming an unknown model or field is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from importlib.resources import files
from pathlib import Path

import yaml

from imputebench.models.registry import get_model
from imputebench.schema import FeatureSchema

FAMILIES = ("numerical", "categorical", "mixed", "images")


def dataset_family(schema: FeatureSchema) -> str:
    """``numerical`` (all numeric), ``categorical`` (all one-hot) or ``mixed``; image sets declare modalities."""
    if schema.modalities:
        return "images"
    if not schema.categorical_indices:
        return "numerical"
    return "categorical" if not schema.numeric_indices else "mixed"


@cache
def _training_yaml() -> dict:
    return yaml.safe_load(files("imputebench.configs").joinpath("training.yaml").read_text())


def family_presets() -> dict[str, dict]:
    families = _training_yaml()["families"]
    missing = set(FAMILIES) - set(families)
    if missing:
        raise ValueError(f"configs/training.yaml lacks families {sorted(missing)}")
    return families


def model_dataset_presets() -> dict[str, dict[str, dict]]:
    """``model -> dataset -> {field: value}`` from the ``models`` section of ``configs/training.yaml``."""
    presets = _training_yaml().get("models") or {}
    for model, datasets in presets.items():
        known = get_model(model).config_fields()
        for dataset, fields in datasets.items():
            unknown = sorted(set(fields) - known)
            if unknown:
                raise ValueError(f"configs/training.yaml: {model} on {dataset} has no field {unknown}")
    return presets


def read_model_config(path: Path) -> dict[str, dict]:
    """A YAML mapping ``model -> {field: value}``; names and fields are checked against the registry."""
    try:
        content = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read model config {path}: {err}") from None
    if not isinstance(content, dict) or not all(isinstance(v, dict) for v in content.values()):
        raise ValueError(f"model config {path}: expected a mapping of model names to mappings of fields")
    for model, overrides in content.items():
        known = get_model(model).config_fields()
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"model config {path}: {model} has no field {unknown}; known: {', '.join(sorted(known)) or 'none'}")
    return content


def config_resolver(
    schemas: Mapping[str, FeatureSchema],
    file_overrides: Mapping[str, dict] | None = None,
    **cli_overrides: object,
) -> Callable[[str, str], dict]:
    """``config_for(model, dataset)`` for :func:`imputebench.runner.trials.expand`.

    ``cli_overrides`` with value None are ignored (the option was not given).
    """
    given = {k: v for k, v in cli_overrides.items() if v is not None}

    def config_for(model: str, dataset: str) -> dict:
        cls = get_model(model)
        known = cls.config_fields()
        preset = family_presets()[dataset_family(schemas[dataset])] if getattr(cls, "uses_family_presets", False) else {}
        config = {k: v for k, v in preset.items() if k in known}
        config.update(model_dataset_presets().get(model, {}).get(dataset, {}))
        config.update((file_overrides or {}).get(model, {}))
        config.update({k: v for k, v in given.items() if k in known})
        return config

    return config_for
