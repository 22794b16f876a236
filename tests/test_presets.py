"""Model configuration per trial: family presets, config files, command-line overrides."""

import tomllib
from pathlib import Path

import pytest

from helpers import correlated_dataset
from imputebench.data.sources import load_dataset
from imputebench.models.config_check import resolve_config
from imputebench.models.registry import get_model
from imputebench.runner.presets import (
    config_resolver,
    dataset_family,
    family_presets,
    model_dataset_presets,
    read_model_config,
)
from imputebench.runner.trials import expand
from imputebench.schema import Feature, FeatureSchema

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.relative_to(ROOT / "src").parent.parts) for p in (ROOT / "src" / "imputebench").rglob("__init__.py")
    }
    assert found | {"imputebench.configs", "imputebench.configs.reproduce"} == listed


def test_families_follow_the_feature_kinds():
    real, cat = Feature("a"), Feature("k", "categorical", ("x", "y"))
    assert dataset_family(FeatureSchema((real,))) == "numerical"
    assert dataset_family(FeatureSchema((cat,))) == "categorical"
    assert dataset_family(FeatureSchema((real, cat))) == "mixed"
    assert dataset_family(FeatureSchema((real, cat), modalities=(("image", (0,)), ("label", (1,))))) == "images"


def test_presets_carry_the_papers_learning_rates():
    presets = family_presets()
    assert presets["numerical"]["lr"] == 1e-3 and presets["categorical"]["lr"] == 1e-2
    assert presets["images"]["lr"] == 1e-4 and presets["numerical"]["max_epochs"] == 1000


def test_precedence_defaults_preset_file_command_line(tmp_path):
    toy = correlated_dataset(50)  # mixed: lr 1e-3
    cat_only = FeatureSchema((Feature("k", "categorical", ("x", "y")),))
    config_file = tmp_path / "m.yaml"
    config_file.write_text("vsae:\n  warmup_epochs: 7\n  max_epochs: 50\n")
    config_for = config_resolver({"toy": toy.schema, "cats": cat_only}, read_model_config(config_file), max_epochs=3, patience=None)
    vsae = config_for("vsae", "toy")  # the full configuration: every field, defaults included
    assert set(vsae) == get_model("vsae").config_fields()
    assert {k: vsae[k] for k in ("lr", "max_epochs", "patience", "warmup_epochs")} == {
        "lr": 1e-3, "max_epochs": 3, "patience": 100, "warmup_epochs": 7}
    assert config_for("vae", "cats")["lr"] == 1e-2
    assert config_for("mean", "toy") == {}  # classical models take no training preset
    assert config_for("mice", "toy") == {"max_iter": 10, "tol": 1e-3, "sample_posterior": True, "n_imputations": 10}
    trials = expand(["vsae", "mean"], ["toy"], ["mcar"], [0.5], [0], "vsae", config_for)
    other = expand(["vsae"], ["toy"], ["mcar"], [0.5], [0], "vsae", lambda m, d: {**config_for(m, d), "max_epochs": 4})
    assert trials[0].model_config["max_epochs"] == 3 and trials[0].key != other[0].key


@pytest.mark.parametrize(
    "text, message",
    [
        ("vsea:\n  lr: 1\n", "unknown model 'vsea'"),
        ("vsae:\n  latent: 3\n", "key vsae.latent = 3: unknown field; known: batch_size"),
        ("- vsae\n", "expected a mapping"),
        ("vsae: [1, 2\n", "cannot read model config"),
    ],
)
def test_bad_model_config_files_are_named(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises((ValueError, KeyError), match=message):
        read_model_config(path)


def test_vaeac_takes_its_authors_epochs_per_dataset_below_files_and_command_line(tmp_path):
    toy = correlated_dataset(50)
    schemas = {"mushroom": toy.schema, "whitewine": toy.schema, "zoo": toy.schema}
    config_for = config_resolver(schemas)
    assert model_dataset_presets()["vaeac"]["yeast"] == {"max_epochs": 300, "patience": 300}
    defaults = {name: resolve_config(get_model(name), {}) for name in ("vaeac", "miwae")}
    # no family preset for VAEAC
    assert config_for("vaeac", "mushroom") == {**defaults["vaeac"], "max_epochs": 50, "patience": 50}
    assert config_for("vaeac", "zoo") == defaults["vaeac"]  # no authors' command: the model's defaults
    assert config_for("miwae", "mushroom") == defaults["miwae"]
    config_file = tmp_path / "m.yaml"
    config_file.write_text("vaeac:\n  max_epochs: 20\n")
    overridden = config_resolver(schemas, read_model_config(config_file), patience=5)
    assert overridden("vaeac", "whitewine") == {**defaults["vaeac"], "max_epochs": 20, "patience": 5}


def test_the_shipped_long_version_config_is_valid():
    assert read_model_config(ROOT / "configs" / "vsae-long.yaml")["vsae"]["latent_per_feature"] == 2


def test_uci_families(mirror_dir):
    assert dataset_family(load_dataset("yeast", mirror_dir).schema) == "numerical"
    assert dataset_family(load_dataset("mushroom", mirror_dir).schema) == "categorical"
    assert dataset_family(load_dataset("heart", mirror_dir).schema) == "mixed"
