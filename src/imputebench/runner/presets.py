"""Each trial's model configuration: dataclass defaults < family preset < the model authors'
per-dataset settings < config file < command line.

The family presets (learning rate and epochs per dataset family, VSAE appendix
B.3 / long version D) and the per-model, per-dataset settings (e.g. VAEAC's epochs
from its authors' reproduction commands) live in ``configs/training.yaml``, shipped
in the package as ``imputebench.configs``. A ``--model-config`` YAML file maps model names to
overrides (``configs/vsae-long.yaml``). ``--max-epochs`` / ``--patience`` win
over both. The result is the model's full configuration (every field, defaults included),
each value checked against its ``Config`` declaration. Only fields the ``Config`` declares are kept from a preset,
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

from imputebench.models.config_check import ConfigValueError, resolve_config
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
    """A YAML mapping ``model -> {field: value}``; names, fields and every value (type and range, from the model's
    ``Config``) are checked, and an error names the file and the key."""
    try:
        content = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read model config {path}: {err}") from None
    if not isinstance(content, dict) or not all(isinstance(v, dict) for v in content.values()):
        raise ValueError(f"model config {path}: expected a mapping of model names to mappings of fields")
    for model, overrides in content.items():
        try:
            resolve_config(get_model(model), overrides, model)
        except ConfigValueError as err:
            problems = "; ".join(f"key {model}.{p.field} = {p.value!r}: {p.message}" for p in err.problems)
            raise ValueError(f"model config {path}: {problems}") from None
    return content


#: how the command line's options are named in messages
CLI_OPTIONS = {"max_epochs": "--max-epochs", "patience": "--patience"}


def config_resolver(
    schemas: Mapping[str, FeatureSchema],
    file_overrides: Mapping[str, dict] | None = None,
    file_path: Path | None = None,
    *,
    file_label: str | None = None,
    **cli_overrides: object,
) -> Callable[[str, str], dict]:
    """``config_for(model, dataset)`` for :func:`imputebench.runner.trials.expand`: the model's full configuration
    (every field, defaults included, validated), the layers applied in the order of this module's docstring.

    ``cli_overrides`` with value None are ignored (the option was not given). A refused value raises a
    ValueError that names the model, the dataset, the field and where the value came from (``file_label``
    names where ``file_overrides`` came from, by default the ``--model-config`` file).
    """
    given = {k: v for k, v in cli_overrides.items() if v is not None}
    if file_label is None:
        file_label = f"--model-config {file_path}" if file_path is not None else "--model-config"

    def config_for(model: str, dataset: str) -> dict:
        cls = get_model(model)
        known = cls.config_fields()
        family = dataset_family(schemas[dataset])
        preset = family_presets()[family] if getattr(cls, "uses_family_presets", False) else {}
        layers = [
            (f"configs/training.yaml, key families.{family}", {k: v for k, v in preset.items() if k in known}),
            (f"configs/training.yaml, key models.{model}.{dataset}", model_dataset_presets().get(model, {}).get(dataset, {})),
            (f"{file_label}, key {model}", (file_overrides or {}).get(model, {})),
            *((CLI_OPTIONS.get(k, k), {k: v}) for k, v in given.items() if k in known),
        ]
        merged, source = {}, {}
        for label, values in layers:
            merged.update(values)
            source.update(dict.fromkeys(values, label))
        try:
            return resolve_config(cls, merged, model)
        except ConfigValueError as err:
            problems = "; ".join(f"{p.field} = {p.value!r} (from {source.get(p.field, 'its defaults')}): {p.message}"
                                 for p in err.problems)
            raise ValueError(f"{model} on {dataset}: {problems}") from None

    return config_for
