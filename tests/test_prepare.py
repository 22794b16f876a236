from types import SimpleNamespace

import numpy as np
import pytest
import torch

from helpers import correlated_dataset
from imputebench.data.dataset import Dataset, DatasetError
from imputebench.data.datamodule import IndexBatches, TabularDataModule
from imputebench.data.prepare import prepare
from imputebench.data.protocols import PROTOCOLS, get_protocol, split_rows
from imputebench.data.transforms import TableTransform
from imputebench.models.registry import UnknownNameError, get_model


@pytest.mark.parametrize("name, test_share, val_share", [("vsae", 0.2, 0.2), ("vaeac", 0.25, 0.25)])
def test_protocol_split_sizes_are_disjoint_and_cover(name, test_share, val_share):
    splits = split_rows(1000, get_protocol(name), seed=3)
    assert len(splits.test) == 1000 * test_share
    assert len(splits.val) == round(1000 * (1 - test_share) * val_share)
    everything = np.concatenate([splits.train, splits.val, splits.test])
    assert sorted(everything) == list(range(1000))


def test_transductive_scores_the_training_rows():
    splits = split_rows(50, PROTOCOLS["transductive"], seed=0)
    assert np.array_equal(splits.train, splits.test) and len(splits.val) == 0


def test_unknown_protocol_lists_known_ones():
    with pytest.raises(UnknownNameError, match="vsae, vaeac, transductive"):
        get_protocol("paper")


def test_transforms_use_observed_training_entries_only():
    data = correlated_dataset()
    prepared = prepare(data, get_protocol("vsae"), "mcar", 0.5, seed=1)
    train_rows, observed = prepared.splits.train, prepared.observed[prepared.splits.train]
    column = data.values[train_rows, 0][observed[:, 0]]
    assert prepared.transform.mean[0] == pytest.approx(column.mean())
    assert prepared.transform.std[0] == pytest.approx(column.std())

    # Scramble every test value and every hidden training value: nothing fitted may change.
    values = data.values.copy()
    rng = np.random.default_rng(0)
    values[prepared.splits.test, :3] = rng.normal(100, 50, size=(len(prepared.splits.test), 3))
    hidden_train = np.zeros_like(prepared.observed)
    hidden_train[train_rows] = ~prepared.observed[train_rows]
    hidden_train[:, 3] = False  # keep category codes valid
    values[hidden_train] = rng.normal(-100, 50, size=hidden_train.sum())
    scrambled = prepare(Dataset(data.name, values, data.schema), get_protocol("vsae"), "mcar", 0.5, seed=1)
    assert scrambled.mask_hash == prepared.mask_hash
    np.testing.assert_array_equal(scrambled.transform.mean, prepared.transform.mean)
    np.testing.assert_array_equal(scrambled.transform.std, prepared.transform.std)
    assert torch.equal(scrambled.train.x, prepared.train.x)


def test_prepared_tables_hide_every_unobserved_value():
    prepared = prepare(correlated_dataset(), get_protocol("vaeac"), "mcar", 0.5, seed=0)
    for table in (prepared.train, prepared.val, prepared.test):
        assert torch.all(table.x[~table.observed] == 0)
    # categorical blocks of observed entries are one-hot
    block = prepared.test.x[:, 3:6][prepared.test.observed_features[:, 3]]
    assert torch.all(block.sum(1) == 1)
    assert prepared.test_held_out.mean() == pytest.approx(0.5, abs=0.1)


def test_same_seed_same_data_other_seed_other_mask():
    data = correlated_dataset()
    a, b = (prepare(data, get_protocol("vsae"), "mcar", 0.3, seed=7) for _ in range(2))
    assert a.mask_hash == b.mask_hash and torch.equal(a.test.x, b.test.x)
    assert prepare(data, get_protocol("vsae"), "mcar", 0.3, seed=8).mask_hash != a.mask_hash


def test_decode_inverts_encode():
    data = correlated_dataset()
    prepared = prepare(data, get_protocol("vsae"), "mcar", 0.5, seed=0)
    full = np.ones_like(prepared.test_truth, dtype=bool)
    encoded = prepared.transform.encode(prepared.test_truth, full)
    np.testing.assert_allclose(prepared.transform.decode(encoded.x), prepared.test_truth, rtol=1e-5, atol=1e-4)


def test_all_missing_training_columns_fail_clearly():
    data = correlated_dataset(50)
    observed = np.ones(data.values.shape, dtype=bool)
    observed[:, 1] = False
    with pytest.raises(DatasetError, match=r"\['b'\] have no observed training entries"):
        TableTransform.fit(data.values, observed, data.schema)


def test_a_feature_the_mask_leaves_constant_is_centred_not_scaled():
    """Yeast's `pox` at 70% MCAR: its observed training entries may all be 0 while hidden ones are not."""
    data = correlated_dataset(50)
    values = data.values.copy()
    observed = np.ones(values.shape, dtype=bool)
    values[:, 2] = np.where(np.arange(50) < 45, 4.0, 9.0)
    observed[45:, 2] = False  # the 9s are hidden: every observed entry is 4
    transform = TableTransform.fit(values, observed, data.schema)
    assert transform.mean[2] == 4.0 and transform.std[2] == 1.0
    table = transform.encode(values, np.ones_like(observed))
    column = table.x[:, 2]  # features a, b, c are numeric and come first: encoded column 2 is c
    assert column[:45].abs().max() == 0 and torch.allclose(column[45:], torch.tensor(5.0))


def test_dataset_validation_rejects_unusable_tables():
    data = correlated_dataset(30)
    constant = data.values.copy()
    constant[:, 0] = 1.0
    with pytest.raises(DatasetError, match="feature 'a' is constant"):
        Dataset("c", constant, data.schema).validate()
    missing = data.values.copy()
    missing[:, 1] = np.nan
    with pytest.raises(DatasetError, match="feature 'b' is entirely missing"):
        Dataset("m", missing, data.schema).validate()
    with pytest.raises(DatasetError, match="no rows"):
        Dataset("e", data.values[:0], data.schema).validate()
    with pytest.raises(DatasetError, match="do not match"):
        Dataset("s", data.values[:, :2], data.schema)


def attached(datamodule: TabularDataModule, model: object) -> TabularDataModule:
    """``datamodule`` as a trainer fitting ``model`` sees it (its loaders ask the trainer's module)."""
    datamodule.trainer = SimpleNamespace(lightning_module=model)
    return datamodule


def test_datamodule_batches_by_index_on_the_device():
    model = get_model("vae")(seed=0, batch_size=32)
    module = attached(TabularDataModule(correlated_dataset(), "vsae", "mcar", 0.5, seed=0), model)
    module.setup()
    train = module.data.train
    batches = list(module.train_dataloader())
    assert len(batches) == len(module.train_dataloader()) == -(-train.n_rows // 32)
    stacked = torch.cat([x for x, _ in batches])
    assert stacked.shape == train.x.shape
    # a permutation of the training rows, every row exactly once
    assert torch.allclose(stacked.sum(0), train.x.sum(0), atol=1e-4)
    assert all(x.device == train.x.device and obs.dtype == torch.bool for x, obs in batches)
    twin = attached(TabularDataModule(correlated_dataset(), "vsae", "mcar", 0.5, seed=0), model)
    twin.setup()
    assert torch.equal(next(iter(twin.train_dataloader()))[0], batches[0][0])  # same seed, same order
    val = list(module.val_dataloader())
    assert sum(len(x) for x, _, _ in val) == module.data.val.n_rows
    assert torch.equal(torch.cat([truth for _, _, truth in val]), module.data.validation.truth)  # for selection only
    assert torch.cat([x for x, _ in module.predict_dataloader()]).equal(module.data.test.x)  # the test split, in order


def test_datamodule_gives_complete_rows_to_models_trained_on_complete_data():
    module = TabularDataModule(correlated_dataset(), "vsae", "mcar", 0.5, seed=0)
    module.setup()
    assert module.training_table(get_model("cvae_data")()).observed.all()
    assert not module.training_table(get_model("cvae_mask")()).observed.all()


def test_a_model_builds_its_networks_from_the_datamodule_in_setup():
    model = get_model("vae")(seed=0)
    assert model.schema is None and not list(model.parameters())  # constructed without data
    module = TabularDataModule(correlated_dataset(), "vsae", "mcar", 0.5, seed=0)
    with pytest.raises(TypeError, match="DataModule"):
        model.build_for(None)
    model.build_for(module)
    assert model.schema == module.schema and list(model.parameters())


def test_index_batches_reject_bad_batch_size():
    prepared = prepare(correlated_dataset(), get_protocol("vsae"), "mcar", 0.5, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        IndexBatches(prepared.train, 0, shuffle=True)


@pytest.mark.parametrize("batch_size", [7, 64, 1000])
def test_index_batches_fill_the_last_batch_with_the_epochs_first_rows(batch_size):
    """VAEAC's authors top a short last batch up to batch_size (extend_batch): every row once,
    then the first rows of the same order again, cycling when the table is smaller than a batch."""
    train = prepare(correlated_dataset(), get_protocol("vsae"), "mcar", 0.5, seed=0).train
    loader = IndexBatches(train, batch_size, shuffle=True, seed=3, fill_last=True)
    plain = IndexBatches(train, batch_size, shuffle=True, seed=3)
    batches, plain_batches = [x for x, _ in loader], [x for x, _ in plain]
    assert len(batches) == len(loader) == len(plain_batches) == -(-train.n_rows // batch_size)
    assert all(x.shape[0] == batch_size for x in batches)
    order = torch.cat(plain_batches)  # the epoch's order: the same generator state gives the same permutation
    filled = torch.cat(batches)
    assert torch.equal(filled[: train.n_rows], order)
    cycled = order.repeat(-(-filled.shape[0] // train.n_rows), 1)
    assert torch.equal(filled, cycled[: filled.shape[0]])
