import pytest
import torch

from imputebench.schema import Feature, FeatureSchema


def mixed_schema() -> FeatureSchema:
    return FeatureSchema((Feature("a"), Feature("colour", "categorical", ("r", "g", "b")), Feature("b", "count"),
                          Feature("yes", "categorical", ("n", "y"))))


def test_column_arithmetic():
    schema = mixed_schema()
    assert schema.widths == (1, 3, 1, 2)
    assert schema.offsets == (0, 1, 4, 5)
    assert schema.encoded_dim == 7
    assert schema.slices[1] == slice(1, 4)
    assert schema.numeric_indices == (0, 2) and schema.categorical_indices == (1, 3)
    assert schema.column_feature == (0, 1, 1, 1, 2, 3, 3)
    assert schema.summary() == "1 real, 2 categorical, 1 count"


def test_one_hot_round_trip_and_expand():
    schema = mixed_schema()
    values = torch.tensor([[0.5, 2.0, 3.0, 1.0], [-1.0, 0.0, 0.0, 0.0]])
    encoded = schema.one_hot(values)
    assert encoded.tolist() == [[0.5, 0, 0, 1, 3.0, 0, 1], [-1.0, 1, 0, 0, 0.0, 1, 0]]
    assert torch.equal(schema.collapse(encoded), values)
    mask = torch.tensor([[True, False, True, True]])
    assert schema.expand(mask).tolist() == [[True, False, False, False, True, True, True]]


def test_missing_codes_become_zero_blocks_and_bad_codes_fail():
    schema = mixed_schema()
    encoded = schema.one_hot(torch.tensor([[0.0, float("nan"), 1.0, 1.0]]))
    assert encoded[0, 1:4].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="category code"):
        schema.one_hot(torch.tensor([[0.0, 3.0, 1.0, 1.0]]))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Feature("x", "categorical", ("only",)), "at least 2 categories"),
        (lambda: Feature("x", "real", ("a", "b")), "has no categories"),
        (lambda: Feature("x", "weird"), "unknown kind"),
        (lambda: FeatureSchema((Feature("x"), Feature("x"))), "duplicate"),
        (lambda: FeatureSchema(()), "at least one"),
        (lambda: FeatureSchema((Feature("x"), Feature("y")), (("m", (0,)),)), "cover every feature"),
        (lambda: FeatureSchema((Feature("x"), Feature("y")), (("m", (0, 1)), ("n", (1,)))), "overlaps"),
    ],
)
def test_invalid_schemas_fail_clearly(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_modality_groups():
    schema = FeatureSchema(tuple(Feature(f"p{i}") for i in range(4)), (("left", (0, 1)), ("right", (2, 3))))
    assert schema.modality_groups == (("left", (0, 1)), ("right", (2, 3)))
    assert len(FeatureSchema((Feature("x"), Feature("y"))).modality_groups) == 2
