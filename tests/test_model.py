"""The network: gated convolutions and the IIVI coarse/refine network."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from archive_inpaint.models.gated_conv import GatedConv2d, GatedUpConv2d
from archive_inpaint.models.iivi_net import IIVINet, IIVINetConfig
from engine_fixtures import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _box_hole(n: int, h: int, w: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    y0, y1, x0, x1 = box
    hole = torch.zeros(n, 1, h, w)
    hole[:, :, y0:y1, x0:x1] = 1.0
    return hole


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "size_in", "size_out"),
    [
        (3, 1, 1, (16, 12), (16, 12)),
        (5, 1, 1, (16, 12), (16, 12)),
        (3, 2, 1, (16, 12), (8, 6)),
        (3, 2, 1, (15, 11), (8, 6)),
        (3, 1, 4, (16, 12), (16, 12)),
        (3, 1, 16, (20, 20), (20, 20)),
    ],
)
def test_gated_conv_output_shape(kernel, stride, dilation, size_in, size_out):
    torch.manual_seed(0)
    layer = GatedConv2d(3, 5, kernel, stride=stride, dilation=dilation)
    out = layer(torch.randn(2, 3, *size_in))
    assert out.shape == (2, 5, *size_out)
    # One convolution underneath, with a feature half and a gate half.
    assert layer.conv.out_channels == 10


@pytest.mark.parametrize("activation", [nn.ELU, nn.ReLU])
def test_gated_conv_is_activated_feature_times_sigmoid_gate(activation):
    torch.manual_seed(1)
    layer = GatedConv2d(3, 5, 3, activation=activation)
    x = torch.randn(1, 3, 8, 8)
    raw = layer.conv(x)
    act = F.elu if activation is nn.ELU else F.relu
    expected = act(raw[:, :5]) * torch.sigmoid(raw[:, 5:])
    torch.testing.assert_close(layer(x), expected)


def test_gated_up_conv_doubles_size():
    torch.manual_seed(0)
    layer = GatedUpConv2d(6, 3)
    assert layer(torch.randn(2, 6, 5, 7)).shape == (2, 3, 10, 14)


@pytest.mark.parametrize("size", [(16, 16), (24, 32), (20, 12)])
@pytest.mark.parametrize("use_refine", [True, False])
def test_iivi_output_shapes(size, use_refine):
    torch.manual_seed(0)
    net = IIVINet(IIVINetConfig(width=4, use_refine=use_refine)).eval()
    h, w = size
    image = torch.rand(2, 3, h, w) * 2 - 1
    hole = _box_hole(2, h, w, (2, 8, 3, 9))
    with torch.no_grad():
        out = net(image, hole)
    assert out.coarse.shape == (2, 3, h, w)
    assert out.coarse.abs().max() <= 1.0
    if use_refine:
        assert out.refined is not None
        assert out.refined.shape == (2, 3, h, w)
        assert out.refined.abs().max() <= 1.0
        assert out.final is out.refined
    else:
        assert out.refined is None
        assert out.final is out.coarse


def test_width_changes_parameter_count():
    narrow = _count(IIVINet(IIVINetConfig(width=4)))
    wide = _count(IIVINet(IIVINetConfig(width=8)))
    assert wide > narrow
    # Convolution weights grow with width squared: doubling the width roughly quadruples them.
    assert 3.0 < wide / narrow < 4.5


def test_refine_off_has_no_refine_parameters():
    with_refine = IIVINet(IIVINetConfig(width=4, use_refine=True))
    without = IIVINet(IIVINetConfig(width=4, use_refine=False))
    assert without.refine is None
    assert not any(name.startswith("refine.") for name, _ in without.named_parameters())
    assert _count(without) == _count(with_refine.coarse)
    assert _count(without) < _count(with_refine)


@pytest.mark.parametrize("size", [(30, 32), (32, 22), (18, 18), (2, 4)])
def test_input_not_multiple_of_four_raises(size):
    net = IIVINet(IIVINetConfig(width=4))
    h, w = size
    with pytest.raises(ValueError, match="multiple of 4"):
        net(torch.zeros(1, 3, h, w), torch.zeros(1, 1, h, w))


@pytest.mark.parametrize("use_refine", [True, False])
def test_hole_content_does_not_reach_the_output(use_refine):
    torch.manual_seed(3)
    net = IIVINet(IIVINetConfig(width=4, use_refine=use_refine)).eval()
    image = torch.rand(2, 3, 24, 32) * 2 - 1
    hole = _box_hole(2, 24, 32, (5, 14, 6, 20))
    other = image.clone()
    inside = hole.expand_as(image).bool()
    other[inside] = torch.rand(int(inside.sum())) * 2 - 1  # new content inside the hole only
    assert not torch.equal(image, other)
    with torch.no_grad():
        a, b = net(image, hole), net(other, hole)
    assert torch.equal(a.coarse, b.coarse)
    if use_refine:
        assert torch.equal(a.refined, b.refined)

    # Control: the same change to a known pixel does change the output.
    known_change = image.clone()
    known_change[:, :, 1, 1] = -known_change[:, :, 1, 1] + 0.5
    with torch.no_grad():
        c = net(known_change, hole)
    assert not torch.equal(a.final, c.final)
