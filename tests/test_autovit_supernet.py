"""The AutoViT supernet: single paths equal the extracted standalone models (weights and BatchNorm statistics
inherited by slicing), gradients stay on the path, recalibration re-estimates the path's BatchNorm statistics, and
uniform single-path training runs through the one-shot layer, SPOS and objective=supernet.id.

Tolerance: a path and its extracted model run the same float32 operations on the same values (the fusion conv's
weight is the two halves of the supernet's, concatenated), so logits of order 1 agree to rtol 1e-5, atol 1e-5.
"""

import contextlib
import copy
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SumObjective
from test_autovit_model import one_thread  # noqa: F401 (an autouse fixture: torch on one thread here too)

from nas_lab.cli.main import main
from nas_lab.core.errors import UserError
from nas_lab.core.runner import run
from nas_lab.core.task import Task
from nas_lab.objectives.supernet import SupernetObjective
from nas_lab.oneshot import training as st
from nas_lab.oneshot.contract import Supernet, check_supernet, supports_mixture
from nas_lab.oneshot.evaluation import PathEvaluator
from nas_lab.searchers.random import RandomSearch
from nas_lab.searchers.spos import SinglePathOneShot
from nas_lab.spaces.autovit import AutoViTSpace, Variant

#: Table 1's layout at a tenth of its widths: every kind of decision with two options, tiny and fast
TINY = Variant("tiny", (8, 12), ((8, 12), (12, 16), (16, 24)), ((1, 2), (1, 2), (1, 2)),
               ((16, 24), (24, 32), (32, 40), (40, 48)), (1, 2), (1, 2), (1.5, 2.0), (3, 4), (16, 32))
SPACE = AutoViTSpace(TINY, setting="cpu", head_dim=4)
RTOL = ATOL = 1e-5


def archs_of(space, n=4, seed=0) -> np.ndarray:
    return np.vstack([np.zeros(space.dim, np.int64), space.sizes - 1, space.sample(np.random.default_rng(seed), n)])


def perturbed(net):
    """BatchNorm affine weights away from (1, 0) and a larger classifier, so that a wrong slice changes the logits
    visibly (running statistics are re-estimated per path, as path evaluation does)."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
        net.head.classifier.weight.mul_(50)
    return net.eval()


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return perturbed(SPACE.supernet())


@pytest.mark.parametrize("space", [SPACE,
                                   AutoViTSpace(TINY, setting="cpu", head_dim=4, per_layer=True, mb_expansion=2)],
                         ids=["per stage", "per layer, expansion 2"])
def test_single_paths_equal_the_extracted_models(space):
    torch.manual_seed(1)
    net = perturbed(space.supernet())
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    calibration = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    for arch in archs_of(space):
        net.recalibrate(arch, [calibration])
        with torch.no_grad():
            model = net.extract(arch).eval()
            expected = model(x)
            torch.testing.assert_close(net(x, arch), expected, rtol=RTOL, atol=ATOL)
        assert expected.shape == (3, 10) and expected.std(dim=0).mean() > 0.05  # logits depend on the image
        assert type(model) is type(space.build(arch))
        assert sum(p.numel() for p in model.parameters()) == space.params(arch)[0]


def test_extracted_models_share_no_tensors(supernet):
    arch = archs_of(SPACE)[3]
    model = supernet.extract(arch)
    ours = {p.data_ptr() for p in supernet.parameters()} | {b.data_ptr() for b in supernet.buffers()}
    assert not ours & ({p.data_ptr() for p in model.parameters()} | {b.data_ptr() for b in model.buffers()})


def test_gradients_stay_on_the_path(supernet):
    net = copy.deepcopy(supernet).train()
    values = {"stem.width": 8, "mb1.depth": 1, "stages": 3, "t1.width": 16, "t1.depth": 1, "t1.heads": 1,
              "t1.mlp_ratio": 1.5, "t2.depth": 2, "t2.heads": 2, "t3.depth": 2, "pool.width": 16}
    arch = np.zeros(SPACE.dim, np.int64)
    for name, value in values.items():
        arch[SPACE.names.index(name)] = SPACE.decisions[SPACE.names.index(name)].options.index(value)
    assert SPACE.is_valid(arch[None])[0]
    F.cross_entropy(net(torch.randn(2, 3, 32, 32), arch), torch.arange(2)).backward()
    assert all(p.grad is None for p in net.t4.parameters())  # a 3-stage arch
    assert all(p.grad is None for p in net.mb1[1].parameters())  # beyond MB-1's depth
    assert all(p.grad is None for p in net.t1.block.layers[1].parameters())  # beyond T-1's depth
    layer = net.t1.block.layers[0]
    qkv = layer.attn.qkv.weight.grad.unflatten(0, (3, -1))  # q, k, v rows: 2 heads x 4 at most
    assert qkv[:, :4, :16].abs().sum() > 0 and qkv[:, 4:].abs().sum() == 0 and qkv[:, :, 16:].abs().sum() == 0
    assert layer.mlp.fc1.weight.grad[24:].abs().sum() == 0 and layer.mlp.fc1.weight.grad[:24].abs().sum() > 0
    assert net.stem.conv.weight.grad[8:].abs().sum() == 0 and net.stem.conv.weight.grad[:8].abs().sum() > 0
    fuse = net.t1.block.fuse.conv.weight.grad  # (24, 48, 3, 3): input channels 0-15 and 24-39 are the path's
    assert fuse[:16, :16].abs().sum() > 0 and fuse[:16, 24:40].abs().sum() > 0
    assert fuse[:, 16:24].abs().sum() == 0 and fuse[:, 40:].abs().sum() == 0 and fuse[16:].abs().sum() == 0
    assert net.head.classifier.weight.grad[:, 16:].abs().sum() == 0


def test_recalibration_re_estimates_the_paths_batchnorm_statistics(supernet):
    net = copy.deepcopy(supernet)
    arch = archs_of(SPACE)[2]
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    assert net.recalibrate(arch, [(x, torch.zeros(8))]) is net and not net.training  # eval mode kept
    model = net.extract(arch)
    with torch.no_grad():
        stem = model.stem.conv(x)
    width = stem.shape[1]
    torch.testing.assert_close(net.stem.bn.running_mean[:width], stem.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(net.stem.bn.running_var[:width], stem.var(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert (net.stem.bn.running_mean[width:] == 0).all()  # reset; the path does not reach these channels


def test_it_offers_the_one_shot_contract_and_refuses_mixtures(supernet):
    assert isinstance(supernet, Supernet) and check_supernet(supernet, SPACE) is supernet
    assert not supports_mixture(SPACE) and not supports_mixture(AutoViTSpace("s"))
    with pytest.raises(UserError, match="runs one arch per forward pass"):
        supernet(torch.randn(1, 3, 32, 32), weights=[torch.ones(n) / n for n in SPACE.sizes])
    full = AutoViTSpace("xxs").supernet(num_classes=10)
    assert full.num_classes == 10 and full.head.classifier.out_features == 10 and len(full.t4.block.layers) == 5


def test_uniform_single_path_training_updates_weights_deterministically():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g)
    x[:, 0] += y[:, None, None] / 5  # a learnable signal
    settings = st.Settings.resolve(SPACE, 2, 16, None, None, 1, "auto", "test")
    assert settings.optimizer == "adamw"
    scores = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        net = st.new_supernet(SPACE, 10, rng, torch.device("cpu"))
        start = copy.deepcopy(net.state_dict())
        st.train_single_path(net, SPACE, (x, y), settings, rng, "test")
        evaluator = PathEvaluator(net, SPACE, (x, y), settings, rng)
        scores.append([evaluator.accuracy(a, (x, y)) for a in SPACE.sample(np.random.default_rng(8), 3)])
    assert scores[0] == scores[1] and all(0 <= s <= 100 for s in scores[0])
    assert any(not torch.equal(start[k], v) for k, v in net.state_dict().items())


def test_spos_and_the_supernet_objective_search_a_tiny_variant(tmp_path):
    """Both train the supernet once by uniform single-path sampling and score archs with inherited weights."""
    tiny = {"epochs": 1, "batch_size": 16, "max_batches": 2, "recalibration": 1}
    spos = SinglePathOneShot(task=Task(), population=2, generations=1, parents=2, **tiny)
    result = run(SPACE, SumObjective(SPACE), spos, budget=5, seed=0)
    report = result.searcher_report
    assert result.evaluations == 1 and report["archs scored"] == 4 and 0 <= report["supernet val accuracy %"] <= 100
    objective = SupernetObjective(SPACE, "id", task=Task(), cache=str(tmp_path), **tiny)
    result = run(SPACE, objective, RandomSearch(), budget=3, seed=0)
    assert result.evaluations == 3 and len(list(tmp_path.glob("*.pt"))) == 1  # trained once, cached
    assert ((0 <= result.history["value"]) & (result.history["value"] <= 100)).all()


def test_the_cli_searches_a_paper_variant_with_a_training_free_proxy(tmp_path, monkeypatch):
    """``space=autovit`` with Table 1's variants through ``nas-lab run`` (a proxy objective: no training)."""
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path))  # computes its values: never reads or fills ~/.cache
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", "space=autovit", "space.variant=s", "searcher=rea", "objective=zc.params", "budget=5",
                     "--no-save"])
    assert code == 0, err.getvalue()
    assert "autovit-s (1,387,266,048 architectures)" in out.getvalue()
