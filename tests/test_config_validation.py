"""Model configurations are resolved in full and checked against their declarations before anything trains."""

from __future__ import annotations

import pytest

from imputebench.data.sources import load_dataset
from imputebench.models.config_check import ConfigValueError, resolve_config
from imputebench.models.registry import get_model, model_names
from imputebench.runner.presets import config_resolver, read_model_config


@pytest.mark.parametrize("name", model_names())
def test_every_model_resolves_its_defaults_to_every_field(name):
    cls = get_model(name)
    config = resolve_config(cls, {})
    assert set(config) == set(cls.config_fields())
    assert resolve_config(cls, config) == config  # a resolved configuration resolves to itself


@pytest.mark.parametrize("name, overrides, problem", [
    ("vae", {"max_epochs": "two"}, "max_epochs = 'two': Input should be a valid integer"),
    ("vae", {"max_epochs": 0}, "max_epochs = 0: Input should be greater than or equal to 1"),
    ("vae", {"lr": -1}, "lr = -1: Input should be greater than 0"),
    ("vae", {"pixel_likelihood": "gausian"}, "pixel_likelihood = 'gausian': Input should be 'bernoulli' or 'gaussian'"),
    ("gain", {"hint_rate": 1.5}, "hint_rate = 1.5: Input should be less than or equal to 1"),
    ("vsae", {"missing_fill": "zero"}, "missing_fill = 'zero': Input should be 'noise' or 'zeros'"),
    ("mice", {"max_iter": 0}, "max_iter = 0: Input should be greater than or equal to 1"),
    ("missforest", {"n_estimators": "many"}, "n_estimators = 'many'"),
    ("vae", {"epochs": 3}, "epochs = 3: unknown field; known: batch_size"),
])
def test_a_bad_value_is_refused_naming_the_model_field_and_value(name, overrides, problem):
    with pytest.raises(ConfigValueError, match=None) as caught:
        resolve_config(get_model(name), overrides)
    assert str(caught.value).startswith(f"{name}: ") and problem in str(caught.value)


def test_values_are_normalised_so_one_setting_has_one_identity():
    cls = get_model("vae")
    assert resolve_config(cls, {"lr": "1e-3"}) == resolve_config(cls, {"lr": 0.001}) == resolve_config(cls, {})
    assert resolve_config(cls, {"max_epochs": 5.0})["max_epochs"] == 5


def test_a_model_constructed_with_a_bad_value_fails_at_once():
    with pytest.raises(ConfigValueError, match="vae: patience = -3"):
        get_model("vae")(patience=-3)


def test_the_resolver_names_where_a_refused_value_came_from(tmp_path):
    schemas = {"iris": load_dataset("iris").schema}
    path = tmp_path / "m.yaml"
    path.write_text("vae:\n  lr: 0.01\n")
    resolve = config_resolver(schemas, read_model_config(path), path, max_epochs=5)
    config = resolve("vae", "iris")
    assert (config["lr"], config["max_epochs"], config["hidden_width"]) == (0.01, 5, 256)
    with pytest.raises(ValueError, match=r"vae on iris: lr = -1 \(from --model-config .*m.yaml, key vae\)"):
        config_resolver(schemas, {"vae": {"lr": -1}}, path)("vae", "iris")
    bad = tmp_path / "bad.yaml"
    bad.write_text("vae:\n  max_epochs: two\n")
    with pytest.raises(ValueError, match=r"model config .*bad.yaml: key vae.max_epochs = 'two'"):
        read_model_config(bad)
