"""uint8 image splits: encoding, row access, modality masks and image metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imputebench.data.multimodal import multimodal_dataset
from imputebench.data.prepare import prepare
from imputebench.data.protocols import get_protocol
from imputebench.data.sources import load_dataset
from imputebench.data.table import CompactTable
from imputebench.data.transforms import TableTransform
from imputebench.evaluate import image_errors
from imputebench.masks import modality_summary


def image_label(n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, 4), dtype=np.uint8)
    labels = rng.integers(0, 3, n)
    return multimodal_dataset("toy", [("img", pixels, (2, 2)), ("label", labels, ("a", "b", "c"))])


def test_compact_encoding_scales_pixels_one_hots_labels_and_hides_entries():
    data = image_label()
    observed = np.ones((6, 5), bool)
    observed[0, :4] = False  # row 0: image hidden
    observed[1, 4] = False  # row 1: label hidden
    transform = TableTransform.fit(data.values, observed, data.schema)
    table = transform.encode(data.values, observed)
    assert isinstance(table, CompactTable) and table.codes.dtype == torch.uint8
    x, seen = table.rows(torch.arange(6))
    assert x.dtype == torch.float32 and seen.shape == (6, 7)
    assert torch.equal(table.modality_observed, torch.tensor([[False, True], [True, False]] + [[True, True]] * 4))
    assert torch.allclose(x[2:, :4], torch.as_tensor(data.values[2:, :4] / 255.0, dtype=torch.float32))
    assert (x[0, :4] == 0).all() and (x[1, 4:] == 0).all() and not seen[0, :4].any() and not seen[1, 4:].any()
    assert torch.equal(x[2:, 4:].argmax(1), torch.as_tensor(data.values[2:, 4], dtype=torch.long))
    decoded = transform.decode(x)
    assert np.allclose(decoded[2:], data.values[2:])  # original units: intensities 0..255, label codes
    assert torch.equal(table.x, x) and torch.equal(table.observed, seen)
    chunked = torch.cat([part for part, _ in table.chunks(4)])
    assert torch.equal(chunked, x)


def test_compact_tables_refuse_partly_observed_modalities():
    data = image_label()
    observed = np.ones((6, 5), bool)
    observed[0, 0] = False
    with pytest.raises(ValueError, match="partly observed"):
        TableTransform.fit(data.values, np.ones((6, 5), bool), data.schema).encode(data.values, observed)


def test_modality_summary_is_the_mean_of_standardised_columns():
    data = image_label(50)
    x = data.values.astype(np.float64)
    std = x.std(0)
    z = np.where(std > 0, (x - x.mean(0)) / np.where(std > 0, std, 1.0), 0.0)
    expected = np.stack([z[:, :4].mean(1), z[:, 4]], axis=1)
    assert np.allclose(modality_summary(data.values, data.schema, chunk_rows=7), expected)


def test_prepare_masks_whole_modalities_and_keeps_compact_splits():
    data = prepare(load_dataset("digits_pairs"), get_protocol("vsae"), "mcar", 0.5, seed=0)
    assert all(isinstance(t, CompactTable) for t in (data.train, data.val, data.test, data.validation.truth))
    per_modality = data.observed.reshape(len(data.observed), 2, 64)
    assert (per_modality.all(2) == per_modality.any(2)).all()  # whole images observed or hidden
    both_hidden = (~per_modality.any(2)).all(1).mean()
    assert 0.15 < both_hidden < 0.35  # rows with nothing observed are kept (about r**2)
    assert torch.equal(data.validation.truth.modality_observed, torch.ones(len(data.splits.val), 2, dtype=torch.bool))
    again = prepare(load_dataset("digits_pairs"), get_protocol("vsae"), "mcar", 0.5, seed=0)
    assert again.mask_hash == data.mask_hash and torch.equal(again.train.codes, data.train.codes)


def test_image_errors_are_per_pixel_on_the_unit_scale_over_hidden_rows():
    data = image_label(3)
    truth = torch.from_numpy(data.values.astype(np.float64))
    preds = truth.clone()
    preds[0, :4] += 51.0  # 0.2 on the [0, 1] scale
    preds[1, :4] += 255.0  # row 1's image is observed: not scored
    held_out = torch.zeros(3, 5, dtype=torch.bool)
    held_out[0, :4] = held_out[2, :4] = True
    errors = image_errors(preds, truth, held_out, data.schema)
    assert errors == pytest.approx({"mse_img": 0.04 / 2, "mse": 0.04 / 2})
    assert image_errors(preds, truth, held_out, load_dataset("iris").schema) == {}  # no image, no image error
