"""ViTAS models: the built ViT has exactly the closed-form parameter count and 2 x the closed-form MACs by
torch's FLOP counter, its attention is standard multi-head attention, and the paper's reference models built by
the same code have their published sizes."""


import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from nas_lab.spaces.vitas import ViTASSpace
from nas_lab.spaces.vitas.cost import ViTShape, shape_macs, shape_params
from nas_lab.spaces.vitas.model import ViT

CPU = ViTASSpace(setting="cpu")
PAPER = ViTASSpace()


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def meta(build):
    """A model built on torch's meta device: the same modules and shapes, no memory and no initialisation cost
    (enough for parameter counts of 224-px models)."""
    with torch.device("meta"):
        return build()


def cpu_archs() -> np.ndarray:
    rng = np.random.default_rng(0)
    bare = CPU.arch_from(16, 1, [])  # no block at all
    largest = CPU.sizes - 1
    largest[CPU.names.index("patch")] = 0  # patch 4: the most tokens
    return np.vstack([bare, largest, CPU.sample(rng, 6)])


def test_built_models_have_the_closed_form_parameter_count():
    archs = cpu_archs()
    assert [numel(CPU.build(a)) for a in archs] == CPU.params(archs).tolist()
    # the paper's setting: three archs of about 1.3 G MACs
    paper = PAPER.budget_sampler(1.3e9).sample(np.random.default_rng(1), 3)
    # meta() calls each lambda at once, so capturing the loop's ``a`` is safe (B023)
    assert [numel(meta(lambda: PAPER.build(a))) for a in paper] == PAPER.params(paper).tolist()  # noqa: B023
    assert [numel(meta(lambda: PAPER.build(a, num_classes=100))) for a in paper] == (  # noqa: B023
        PAPER.params(paper, num_classes=100).tolist())


def test_deit_shaped_models_built_by_the_same_code_have_the_papers_sizes():
    ti = meta(lambda: ViT(ViTShape(16, 192, ((3, 576, 768),) * 12)))
    s = meta(lambda: ViT(ViTShape(16, 384, ((6, 1152, 1536),) * 12)))
    assert numel(ti) == shape_params(ti.shape) == 5_717_416  # DeiT reports 5.7 M
    assert numel(s) == shape_params(s.shape) == 22_050_664  # DeiT reports 22 M
    assert numel(meta(lambda: PAPER.build(PAPER.arch_from(16, 6, [(3, 3, 5)] * 12)))) == 6_048_414  # Table 8: 6.0 M


def test_flop_counter_counts_twice_the_closed_form_macs():
    """torch's FlopCounterMode counts 2 FLOPs per multiply-accumulate of the conv, linears and attention matmuls."""
    archs = cpu_archs()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for arch, flops in zip(archs, CPU.flops(archs)):
        model = CPU.build(arch).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
        assert counter.get_total_flops() == 2 * int(flops)  # exact, for both images
    small = ViTShape(8, 24, ((3, 18, 40), (1, 9, 16)), image_size=32, num_classes=7)  # widths off every grid
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        ViT(small)(x)
    assert counter.get_total_flops() == 2 * 2 * shape_macs(small)


def test_attention_is_standard_multi_head_attention():
    """With q width = embedding width, a block's attention equals torch's MultiheadAttention holding its weights."""
    torch.manual_seed(0)
    block = ViT(ViTShape(4, 48, ((6, 144, 96),), image_size=8)).blocks[0]
    mha = torch.nn.MultiheadAttention(48, 6, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(block.attn.qkv.weight)
        mha.in_proj_bias.copy_(torch.randn(144))
        block.attn.qkv.bias.copy_(mha.in_proj_bias)
        mha.out_proj.weight.copy_(block.attn.proj.weight)
        mha.out_proj.bias.copy_(block.attn.proj.bias)
        z = torch.randn(3, 5, 48)
        torch.testing.assert_close(block.attn(z), mha(z, z, z, need_weights=False)[0], rtol=1e-5, atol=1e-6)


def test_logits_shape_default_classes_and_another_input_side():
    arch = cpu_archs()[3]
    model = CPU.build(arch).eval()
    assert (CPU.num_classes, PAPER.num_classes) == (10, 1000)  # the declared hint: what the zero-cost proxies label
    assert CPU.build(arch, num_classes=7)(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    with torch.no_grad():
        out = model(torch.randn(4, 3, 32, 32))
        assert out.shape == (4, 10) and torch.isfinite(out).all()
        # a 64-px input gets the position embedding resized to its twice-as-fine grid
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_building_is_deterministic_under_a_seed():
    arch = cpu_archs()[2]
    torch.manual_seed(3)
    a = CPU.build(arch).state_dict()
    torch.manual_seed(3)
    b = CPU.build(arch).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert 0.015 < float(a["head.weight"].std()) < 0.025  # truncated normal, std 0.02
