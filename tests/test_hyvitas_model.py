"""HyViTas models: size calibration, closed-form cost vs. torch, import hygiene."""


import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from nas_lab.nn.blocks import SelfAttention
from nas_lab.spaces.hyvitas import HyViTasSpace

SPACE = HyViTasSpace()
SMALLEST = np.zeros(SPACE.dim, dtype=np.int64)
LARGEST = SPACE.sizes - 1


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_extremes_match_the_papers_sizes():
    # The sizes are quoted as 4.04 M and 0.50 M: the built models must round to
    # them at that precision (within 5,000 parameters), not merely be close.
    assert round(n_params(SPACE.build(LARGEST)) / 1e6, 2) == 4.04
    assert round(n_params(SPACE.build(SMALLEST)) / 1e6, 2) == 0.50


def test_closed_form_params_equal_built_models():
    archs = np.vstack([SPACE.sample(np.random.default_rng(0), 20), SMALLEST, LARGEST])
    built = [n_params(SPACE.build(a)) for a in archs]
    np.testing.assert_array_equal(SPACE.params(archs), built)
    # the class count only enters through the head
    assert SPACE.params(LARGEST, num_classes=10)[0] == n_params(SPACE.build(LARGEST, num_classes=10))


def test_closed_form_flops_equal_torch_flop_counter():
    archs = np.vstack([SPACE.sample(np.random.default_rng(1), 3), SMALLEST, LARGEST])
    x = torch.randn(1, 3, SPACE.resolution, SPACE.resolution)
    counted = []
    for arch in archs:
        model = SPACE.build(arch).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        counted.append(counter.get_total_flops())
    np.testing.assert_array_equal(SPACE.flops(archs), counted)


def test_forward_gives_logits_per_image():
    torch.manual_seed(0)
    out = SPACE.build(SPACE.sample(np.random.default_rng(2), 1)[0])(torch.randn(2, 3, 160, 160))
    assert out.shape == (2, 500)
    assert torch.isfinite(out).all()


def test_attention_matches_torch_multihead_attention():
    # Same weights through torch's own implementation catch any head split/merge mistake.
    torch.manual_seed(0)
    block = SelfAttention(64, heads=8).eval()
    reference = torch.nn.MultiheadAttention(64, 8, batch_first=True).eval()
    with torch.no_grad():
        reference.in_proj_weight.copy_(block.qkv.weight)
        reference.in_proj_bias.copy_(block.qkv.bias)
        reference.out_proj.weight.copy_(block.proj.weight)
        reference.out_proj.bias.copy_(block.proj.bias)
        x = torch.randn(2, 64, 5, 5)
        tokens = block.norm(x).flatten(2).transpose(1, 2)
        attended = reference(tokens, tokens, tokens, need_weights=False)[0]
        expected = x + attended.transpose(1, 2).reshape(x.shape)
        torch.testing.assert_close(block(x), expected)



def test_param_counts_over_the_whole_space():
    params = SPACE.params(SPACE.all_archs())
    assert params.shape == (SPACE.cardinality,) and params.dtype == np.int64
    assert params.min() == SPACE.params(SMALLEST)[0] == 498_884
    assert params.max() == SPACE.params(LARGEST)[0] == 4_036_916
    flops = SPACE.flops(SPACE.all_archs())
    assert flops.argmin() == 0 and flops.argmax() == SPACE.cardinality - 1
