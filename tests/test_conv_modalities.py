"""The convolutional per-modality encoders and decoders: each modality's network reads and writes only its own
pixels, in the datasets' (height, width, channel) column order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imputebench.data.multimodal import multimodal_dataset
from imputebench.models.registry import get_model
from imputebench.nn.conv_modalities import ConvModalityDecoders, ConvModalityEncoders
from imputebench.nn.layout import SchemaLayout

HWC = 28 * 28 * 3


def layout(n: int = 3, shape: tuple[int, ...] = (28, 28, 3)) -> SchemaLayout:
    width = int(np.prod(shape))
    parts = [(f"m{j}", np.zeros((4, width), dtype=np.uint8), shape) for j in range(n)]
    return SchemaLayout(multimodal_dataset("conv", parts).schema)


def test_each_encoder_reads_only_its_own_modalitys_pixels():
    torch.manual_seed(0)
    net = ConvModalityEncoders(layout(), 8)
    x = torch.rand(2, 3 * HWC, requires_grad=True)
    out = net(x)  # (b, M, 8)
    assert out.shape == (2, 3, 8)
    for m in range(3):
        (grad,) = torch.autograd.grad(out[:, m].sum(), x, retain_graph=True)
        own = torch.zeros(3 * HWC, dtype=torch.bool)
        own[m * HWC:(m + 1) * HWC] = True
        assert (grad[:, ~own] == 0).all() and (grad[:, own] != 0).any()


def test_each_decoder_writes_only_its_own_modalitys_pixels_from_its_own_input():
    torch.manual_seed(0)
    net = ConvModalityDecoders(layout(), 5)
    inputs = torch.randn(2, 3, 5, requires_grad=True)
    out = net(inputs)  # (b, D)
    assert out.shape == (2, 3 * HWC)
    for m in range(3):
        (grad,) = torch.autograd.grad(out[:, m * HWC:(m + 1) * HWC].sum(), inputs, retain_graph=True)
        assert (grad[:, m] != 0).any() and (torch.cat([grad[:, :m], grad[:, m + 1:]], 1) == 0).all()


def test_pixels_keep_the_datasets_height_width_channel_order():
    """A decoder output laid out as an image and read back as columns is the identity on the pixel order: the
    channel of column (h * 28 + w) * 3 + c is c. Checked by making the last transposed convolution emit its
    channel index as a constant."""
    net = ConvModalityDecoders(layout(1), 4)
    last = net.trunk[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.arange(3, dtype=torch.float))
    out = net(torch.randn(1, 1, 4))[0]  # (HWC,)
    assert torch.equal(out, torch.arange(3, dtype=torch.float).repeat(28 * 28))


def test_schemas_other_than_28x28_images_are_refused():
    with pytest.raises(ValueError, match="28x28 image"):
        ConvModalityEncoders(layout(2, (8, 8)), 4)
    model = get_model("mopoe")(seed=0, image_networks="conv")
    with pytest.raises(ValueError, match="28x28 image"):
        model.build_networks(multimodal_dataset("mixed", [("img", np.zeros((4, 784), np.uint8), (28, 28)),
                                                          ("label", np.zeros(4, int), ("a", "b"))]).schema)
