"""The poolvit models: closed-form params and MACs equal the built model's parameter count and half of torch's
FLOP count, MLPerf Tiny's ResNet-8 has its published size, and the linear attention and pooling compute what
model.py says.

Tolerance: the linear attention against its quadratic definition, rtol 1e-4 / atol 1e-5 (float32 sums in
another order over 16 tokens).
"""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nas_lab.spaces.poolvit import PoolViTSpace, cost
from nas_lab.spaces.poolvit.model import RESNET8, linear_attention, pool, resnet8

SPACE = PoolViTSpace()


def counted(model, side=32) -> tuple[int, int]:
    """``(parameters, MACs)`` of one forward pass of one image, MACs as torch's FLOPs / 2."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.rand(1, 3, side, side))
    total = counter.get_total_flops()
    assert total % 2 == 0
    return sum(p.numel() for p in model.parameters()), total // 2


def every_kind() -> np.ndarray:
    """Archs covering every block kind in both stages, every pattern and pooling kind, groups, ratios and strides."""
    base = {"stem.kernel": 5, "stem.stride": 1, "stem.channels": 8, "cnn1": "bottleneck", "cnn1.channels": 16,
            "cnn1.kernel": 3, "cnn1.stride": 2, "cnn1.groups": 2, "cnn1.ratio": 2, "cnn2": "mbconv",
            "cnn2.channels": 16, "cnn2.kernel": 7, "cnn2.stride": 1, "cnn2.ratio": 4, "pool": "combined",
            "pool.kernel": 5, "vit1": "mhsa", "vit1.block": "residual", "vit1.channels": 24, "vit1.kernel": 3,
            "vit1.stride": 1, "vit1.groups": 4, "vit1.heads": 4, "vit1.head_dim": 8, "vit2": "poolvit",
            "vit2.kernel": 3, "vit2.pool": "max", "vit2.channels": 48, "vit2.heads": 2, "vit2.head_dim": 16,
            "vit3": "mhsa", "vit3.block": "mbconv", "vit3.channels": 48, "vit3.kernel": 5, "vit3.stride": 1,
            "vit3.ratio": 2, "vit3.heads": 1, "vit3.head_dim": 8}
    other = {**base, "cnn1": "residual", "cnn1.groups": 4, "cnn2": "identity", "pool": "avg", "vit1": "poolvit",
             "vit1.pool": "combined", "vit2": "mhsa", "vit2.block": "bottleneck", "vit2.stride": 2, "vit2.groups": 2,
             "vit2.ratio": 4, "vit2.kernel": 5, "vit3": "identity"}
    return np.vstack([SPACE.from_values(base), SPACE.from_values(other)])


ARCHS = np.vstack([every_kind(), SPACE.sample(np.random.default_rng(0), 8)])


@pytest.mark.parametrize("arch", ARCHS.tolist(), ids=lambda a: str(SPACE.index(np.array(a))))
def test_closed_form_params_and_macs_equal_the_model(arch):
    params, macs = counted(SPACE.build(arch))
    assert params == SPACE.params(np.array(arch)[None])[0]
    assert macs == SPACE.macs(np.array(arch)[None])[0] and 2 * macs == SPACE.flops(np.array(arch)[None])[0]


def test_resnet8_has_mlperf_tinys_size():
    """MLPerf Tiny's ResNet-8 (CIFAR-10): 78,186 trainable parameters as its reference Keras model counts them
    (convs with bias, BatchNorm scale and shift; Keras' total of 78,666 adds the 480 BatchNorm moving statistics,
    which torch keeps as buffers); the seed quotes 75 k."""
    model = resnet8()
    params, macs = counted(model)
    assert params == 78_186
    side, width, closed_p, closed_m = 32, 16, *cost.stem(16, 3)
    closed_m = side**2 * closed_m
    for block in RESNET8.cnn:
        p, m, side = cost.cnn_block(cost.RESIDUAL, width, block.channels, block.kernel, block.stride, 1, 1, side)
        closed_p, closed_m, width = closed_p + p, closed_m + m, block.channels
    head_p, head_m = cost.head(width, 10)
    assert (params, macs) == (closed_p + head_p, closed_m + head_m) and macs == 12_501_632
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10) and len(model.cnn) == 3 and model.pool is None


def test_linear_attention_is_its_quadratic_definition():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2 * 8, 4, 4, generator=g) for _ in range(3))
    out = linear_attention(q, k, v, heads=2)
    for head in range(2):
        rows = slice(8 * head, 8 * head + 8)
        qh, kh, vh = (t[:, rows].flatten(2).transpose(1, 2) for t in (q, k, v))  # (b, N, d)
        weights = qh.relu() @ kh.relu().transpose(1, 2)  # (b, N, N): ReLU(q_i) . ReLU(k_j)
        expected = (weights @ vh) / (weights.sum(-1, keepdim=True) + 1e-6)
        torch.testing.assert_close(out[:, rows].flatten(2).transpose(1, 2), expected, rtol=1e-4, atol=1e-5)


def test_pooling_kinds():
    x = torch.rand(1, 2, 5, 5)
    big, mean = pool(x, "max", 3), pool(x, "avg", 3)
    assert big.shape == (1, 2, 3, 3) and (big >= mean).all()
    torch.testing.assert_close(pool(x, "combined", 3), (big + mean) / 2, rtol=0, atol=0)
    torch.testing.assert_close(mean[0, 0, 0, 0], x[0, 0, :2, :2].mean(), rtol=1e-6, atol=1e-7)  # padding not counted


def test_classes_and_input_sides():
    arch = ARCHS[0]
    assert SPACE.build(arch)(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert SPACE.build(arch, num_classes=5)(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    assert SPACE.params(arch[None], num_classes=5)[0] == SPACE.params(arch[None])[0] - 5 * 49  # 48 + 1 per class
    assert PoolViTSpace(num_classes=100).build(arch)(torch.rand(2, 3, 32, 32)).shape == (2, 100)
