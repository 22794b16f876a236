"""The light model catalogue (read by ``imputebench models`` and the leaderboard's † without loading
torch) says of every model exactly what its class says."""

import pytest

from imputebench.model_catalog import MODELS, trained_on_complete_data
from imputebench.models.registry import get_model, model_names


def test_every_registered_model_has_a_card_and_every_card_a_model():
    assert sorted(MODELS) == model_names()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_card_agrees_with_its_class(name):
    cls, card = get_model(name), MODELS[name]
    assert card.paper == cls.paper  # given by registration: the card is the one place it is written
    assert card.trained_on_complete_data == cls.trained_on_complete_data
    assert card.summary == (cls.__doc__ or "").strip().splitlines()[0]


def test_a_model_without_a_card_cannot_register():
    from imputebench.models.imputer import Imputer
    from imputebench.models.registry import register_model

    with pytest.raises(ValueError, match="no card in imputebench/model_catalog.py"):
        register_model("uncatalogued")(type("Uncatalogued", (Imputer,), {}))


def test_only_known_models_trained_on_complete_data_are_flagged():
    assert trained_on_complete_data("cvae_data")
    assert not trained_on_complete_data("cvae_mask")
    assert not trained_on_complete_data("a_model_this_version_no_longer_has")
