"""The ViTAS super-transformer: single paths equal the extracted standalone models, gradients stay on the path,
the sharing switches (private class tokens, private q/k, private v) hold and use the weights they say, and the
one-shot training and path evaluation SPOS and objective=supernet.* run on it.

Tolerance: a path and its extracted model compute the same float32 operations, except that the path runs q-k and v
as two matmuls where the model runs one fused q-k-v matmul; outputs agree to rtol 1e-5, atol 1e-5 on logits of
order 1 (they differ by about 1e-7 in practice).
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_lab.core.errors import UserError
from nas_lab.oneshot import training as st
from nas_lab.oneshot.evaluation import PathEvaluator
from nas_lab.spaces.vitas import ViTASSpace

CPU = ViTASSpace(setting="cpu", positions=4)
RTOL, ATOL = 1e-5, 1e-5


def archs_of(space, n=5, seed=0) -> np.ndarray:
    bare = space.arch_from(space.patch_sizes[-1], 1, [])
    largest = space.sizes - 1
    largest[space.names.index("patch")] = 0
    return np.vstack([bare, largest, space.sample(np.random.default_rng(seed), n)])


def perturbed(net):
    """Weights of order 1 (LayerNorm affine, head), so that a wrong slice changes the logits visibly."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name:
                p.copy_(torch.rand_like(p) + 0.5 if name.endswith("weight") else torch.randn_like(p) * 0.3)
        net.head.weight.mul_(50)
    return net.eval()


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return perturbed(CPU.supernet())


@pytest.mark.parametrize("arch", archs_of(CPU).tolist(), ids=lambda a: "".join(map(str, a)))
def test_single_path_equals_the_extracted_model(supernet, arch):
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model = supernet.extract(arch).eval()
        expected = model(x)
        torch.testing.assert_close(supernet(x, arch), expected, rtol=RTOL, atol=ATOL)
    assert type(model) is type(CPU.build(arch)) and expected.shape == (3, 10) and expected.std() > 0.3
    assert sum(p.numel() for p in model.parameters()) == CPU.params(np.asarray(arch))[0]


@pytest.mark.parametrize("params", [
    {"private_class_token": False}, {"private_qk": False}, {"private_qk": False, "private_v": True},
    {"private_v": True}, {"block_level": True},
], ids=str)
def test_every_sharing_variant_extracts_its_paths(params):
    space = ViTASSpace(setting="cpu", positions=3, **params)
    torch.manual_seed(1)
    net = perturbed(space.supernet())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for arch in space.sample(np.random.default_rng(3), 3):
            torch.testing.assert_close(net(x, arch), net.extract(arch).eval()(x), rtol=RTOL, atol=ATOL)


def test_switches_set_which_weights_are_private():
    def counts(**params):
        net = ViTASSpace(setting="cpu", positions=2, **params).supernet()
        return len(net.cls_token), len(net.blocks[0].qk), len(net.blocks[0].v), len(net.patch_embed)

    assert counts() == (3, 4, 1, 3)  # the paper's best: class token per patch size, q/k per head count, v shared
    assert counts(private_class_token=False, private_qk=False) == (1, 1, 1, 3)  # share all (Table 2 row 5)
    assert counts(private_qk=False, private_v=True) == (3, 1, 4, 3)  # share q, k only (row 6)
    assert counts(private_v=True) == (3, 4, 4, 3)  # nothing shared (row 4)
    assert counts(heads=(4,)) == (3, 1, 1, 3)  # one head count: nothing to keep per head count


def test_paths_use_their_own_private_weights(supernet):
    """Changing the q/k of 2 heads changes the archs with 2 heads and no other; the class token of patch 8 likewise."""
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    two = CPU.arch_from(8, 5, [(2, 4, 4), (2, 6, 3)])
    eight = CPU.arch_from(8, 5, [(8, 4, 4), (8, 6, 3)])
    four = CPU.arch_from(4, 5, [(8, 4, 4), (8, 6, 3)])
    net = copy.deepcopy(supernet)
    with torch.no_grad():
        before = [net(x, a) for a in (two, eight, four)]
        for block in net.blocks:
            block.qk[CPU.heads.index(2)].weight.normal_()
        net.cls_token[CPU.patch_sizes.index(8)].normal_(0, 3)
        after = [net(x, a) for a in (two, eight, four)]
    assert not torch.allclose(before[0], after[0]) and not torch.allclose(before[1], after[1])
    torch.testing.assert_close(before[2], after[2], rtol=0, atol=0)  # patch 4, 8 heads: untouched


def test_gradients_stay_on_the_path(supernet):
    net = copy.deepcopy(supernet).train()
    arch = CPU.arch_from(8, 4, [None, (4, 3, 5), None, (2, 10, 1)])
    d, (q, m) = CPU.embed_widths[3], (CPU.q_widths[2], CPU.mlp_widths[4])
    F.cross_entropy(net(torch.randn(2, 3, 32, 32), arch), torch.arange(2)).backward()
    used = net.blocks[1]
    assert used.qk[CPU.heads.index(4)].weight.grad[:q, :d].abs().sum() > 0
    assert used.qk[CPU.heads.index(4)].weight.grad[q:CPU.q_widths[-1]].abs().sum() == 0  # q rows beyond the slice
    assert used.fc1.weight.grad[m:].abs().sum() == 0 and used.fc1.weight.grad[:, d:].abs().sum() == 0
    assert used.qk[CPU.heads.index(2)].weight.grad is None  # another head count's private q/k
    assert all(p.grad is None for p in net.blocks[0].parameters())  # an identity position
    assert net.pos_embed[CPU.patch_sizes.index(4)].grad is None and net.norm.weight.grad[d:].abs().sum() == 0
    assert net.cls_token.grad[CPU.patch_sizes.index(16)].abs().sum() == 0


def test_mixtures_are_refused_and_recalibration_is_a_no_op(supernet):
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(UserError, match="runs one arch per forward pass"):
        supernet(x, weights=[torch.ones(n) / n for n in CPU.sizes])
    arch = archs_of(CPU)[3]
    state = copy.deepcopy(supernet.state_dict())
    assert supernet.recalibrate(arch, [x]) is supernet
    assert all(torch.equal(state[k], v) for k, v in supernet.state_dict().items())


def test_one_shot_training_and_path_evaluation_run_on_it():
    """The loop SPOS and objective=supernet.* run: budget-aware single-path training, then inherited accuracies."""
    space = ViTASSpace(setting="cpu", positions=4, budget_macs=0.5e6)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(48, 3, 32, 32, generator=g), torch.randint(0, 10, (48,), generator=g)
    x[:, 0] += y[:, None, None] / 5  # a learnable signal
    settings = st.Settings(epochs=2, batch_size=16, learning_rate=0.05, max_batches=None, recalibration=1)
    trained = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        net = st.new_supernet(space, 10, rng, torch.device("cpu"))
        start = copy.deepcopy(net.state_dict())
        st.train_single_path(net, space, (x, y), settings, rng, "test")
        evaluator = PathEvaluator(net, space, (x, y), settings, rng)
        archs = space.sample(np.random.default_rng(8), 3)
        trained.append([evaluator.accuracy(a, (x, y)) for a in archs])
    assert trained[0] == trained[1]  # same seed, same weights and scores
    assert any(not torch.equal(start[k], v) for k, v in net.state_dict().items())
    assert all(0 <= a <= 100 for a in trained[0])


@pytest.mark.parametrize("searcher", [
    ["searcher=nsga2", "searcher.population=4", "constraint=macs<=2e5", "budget=6"],
    ["searcher=spos", "searcher.epochs=1", "searcher.max_batches=2", "searcher.population=4",
     "searcher.generations=1", "searcher.parents=2", "budget=1"],
    ["searcher=random", "budget=3"],
])
def test_searches_run_on_vitas_with_the_supernet_objective(tmp_path, capsys, searcher):
    """NSGA-II within a MACs budget, SPOS and random search, end to end on a tiny CPU setting (2 positions)."""
    import json

    from nas_lab.cli.main import main

    code = main(["run", "space=vitas", "space.setting=cpu", "space.positions=2", "space.budget_macs=2e5",
                 "objective=supernet.id", "objective.epochs=1", "objective.max_batches=2",
                 f"objective.cache={tmp_path}", "--no-save", "--json", "--no-progress", *searcher])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    best = result["best"]
    assert 0 <= best["metrics"]["id"] <= 100
    assert result["objective_info"]["optimizer"] == "adamw"
    if "constraint=macs<=2e5" in searcher:
        assert best["metrics"]["macs"] <= 2e5
