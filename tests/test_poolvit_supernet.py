"""The poolvit supernet: single paths equal the extracted standalone models, grouped convs and heads take the slices
supernet.py says, gradients stay on the path, BatchNorm recalibration and the one-shot contract hold, and the
one-shot training and path evaluation of SPOS and objective=supernet.* run on it.

Tolerance: a path and its extracted model run the same float32 operations on the same weights; logits agree to
rtol 1e-5, atol 1e-6 (they agree exactly in practice).
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_poolvit_model import every_kind

from nas_lab.core.config import RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.core.runner import run
from nas_lab.oneshot import training as st
from nas_lab.oneshot.contract import Supernet, check_supernet, runs_mixtures
from nas_lab.oneshot.evaluation import PathEvaluator
from nas_lab.spaces.poolvit import PoolViTSpace

SPACE = PoolViTSpace()
RTOL, ATOL = 1e-5, 1e-6
ARCHS = np.vstack([every_kind(), SPACE.sample(np.random.default_rng(3), 2)])


@pytest.fixture(scope="module")
def supernet():
    """Random BatchNorm statistics and affine weights, so that a wrong slice of them changes the logits."""
    torch.manual_seed(0)
    net = SPACE.supernet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    return net.eval()


def images(n=2, seed=1):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ARCHS.tolist(), ids=lambda a: str(SPACE.index(np.array(a))))
def test_single_path_equals_the_extracted_model(supernet, arch):
    x = images()
    with torch.no_grad():
        model = supernet.extract(arch).eval()
        expected = model(x)
        torch.testing.assert_close(supernet(x, arch), expected, rtol=RTOL, atol=ATOL)
    assert expected.shape == (2, 10) and expected.std() > 1e-3
    assert sum(p.numel() for p in model.parameters()) == SPACE.params(np.array(arch)[None])[0]


def test_paths_differ_and_share_weights(supernet):
    """Two archs that differ only in a width compute different logits from the same tensors."""
    arch = every_kind()[0]
    wider = arch.copy()
    wider[SPACE.names.index("vit2.channels")] += 1
    x = images()
    with torch.no_grad():
        assert not torch.allclose(supernet(x, arch), supernet(x, wider))


def test_groups_and_heads_take_their_slices(supernet):
    arch = every_kind()[0]  # vit1: residual with 4 groups on 24 channels, 4 heads of 8
    model = supernet.extract(arch)
    super_conv = supernet.vit[0].cnn.residual.conv1.conv.weight  # dense (64, 48, 7, 7)
    static = model.vit[0].mix.conv1.conv.weight  # (24, 16 / 4, 3, 3): input is cnn2's 16 channels
    assert static.shape == (24, 4, 3, 3)
    for j in range(4):  # group j: outputs 6j..6j+5 read inputs 4j..4j+3, centre 3 x 3 of the 7 x 7
        torch.testing.assert_close(static[6 * j:6 * j + 6], super_conv[6 * j:6 * j + 6, 4 * j:4 * j + 4, 2:5, 2:5],
                                   rtol=0, atol=0)
    attn, q = model.vit[0].vit.attn, supernet.vit[0].mhsa.attn.q.weight  # 4 heads of 8 out of 4 x 16 rows
    rows = torch.cat([torch.arange(16 * h, 16 * h + 8) for h in range(4)])
    torch.testing.assert_close(attn.q.weight, q[rows, :24], rtol=0, atol=0)


def test_gradients_stay_on_the_path(supernet):
    net = copy.deepcopy(supernet).train()
    arch = every_kind()[1]  # cnn1 residual, cnn2 identity, vit1 poolvit, vit2 mhsa bottleneck, vit3 identity
    F.cross_entropy(net(images(), arch), torch.arange(2)).backward()
    assert net.cnn[0].residual.conv1.conv.weight.grad.abs().sum() > 0
    assert net.cnn[0].residual.conv1.conv.weight.grad[16:].abs().sum() == 0  # beyond the 16 output channels
    assert all(p.grad is None for p in net.cnn[0].bottleneck.parameters())  # another block kind
    assert all(p.grad is None for p in net.cnn[1].parameters()) and all(p.grad is None for p in net.vit[2].parameters())
    assert all(p.grad is None for p in net.vit[0].mhsa.parameters())  # vit1 is a Pool-ViT pattern
    used = net.vit[1].cnn.bottleneck.conv.conv.weight.grad  # 48 / 4 = 12 wide, 2 groups of 6
    assert used[:6, :6].abs().sum() > 0 and used[:6, 6:12].abs().sum() == 0  # off-diagonal blocks untouched


def test_recalibration_and_the_contract(supernet):
    net = copy.deepcopy(supernet)
    assert isinstance(net, Supernet) and check_supernet(net, SPACE) is net and not runs_mixtures(net)
    arch = every_kind()[1]
    x = images(8, seed=5)
    assert net.recalibrate(arch, [x]) is net and not net.training
    norm = net.stem.bn  # cumulative average over one batch: that batch's statistics of the stem's 8 channels
    conv = net.stem.conv(x, 8, 5, 1)
    torch.testing.assert_close(norm.running_mean[:8], conv.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(norm.running_var[:8], conv.var(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    with pytest.raises(UserError, match="runs one arch per forward pass"):
        net(x, weights=[torch.ones(n) / n for n in SPACE.sizes])


def test_one_shot_training_and_path_evaluation_run_on_it():
    """The loop SPOS and objective=supernet.* run: uniform single-path training, then inherited accuracies, the
    same for the same seed. (Whole CLI runs also score OoD variants, minutes on 2 cores: see the README.)"""
    space = PoolViTSpace(cnn_blocks=1, vit_blocks=1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)
    settings = st.Settings(epochs=1, batch_size=8, learning_rate=0.05, max_batches=None, recalibration=1)
    scores = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        net = st.new_supernet(space, 10, rng, torch.device("cpu"))
        start = copy.deepcopy(net.state_dict())
        st.train_single_path(net, space, (x, y), settings, rng, "test")
        evaluator = PathEvaluator(net, space, (x, y), settings, rng)
        scores.append([evaluator.accuracy(a, (x, y)) for a in space.sample(np.random.default_rng(8), 2)])
    assert scores[0] == scores[1] and all(0 <= a <= 100 for a in scores[0])
    assert any(not torch.equal(start[k], v) for k, v in net.state_dict().items())


def test_spos_keeps_its_evolution_within_the_parameter_cap(monkeypatch, tmp_path):
    """SPOS draws and breeds only archs within the run's closed-form bounds, so the arch it derives meets the cap
    (5,000 parameters: about 7 % of uniformly drawn archs of this variant)."""
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path))
    cfg = RunConfig(space="poolvit", searcher="spos", objective="zc.params", constraints=["params<=5000"]).apply([
        "space.cnn_blocks=1", "space.vit_blocks=1", "searcher.epochs=1", "searcher.max_batches=1",
        "searcher.batch_size=8", "searcher.recalibration=1", "searcher.population=3", "searcher.generations=1",
        "searcher.parents=2"])
    space, objective, searcher = build(cfg)
    result = run(space, objective, searcher, budget=1, seed=0)
    assert result.searcher_report["archs scored"] == 6
    derived = space.arch(result.searcher_report["derived arch"])
    assert space.params(derived[None])[0] <= 5000 and result.history["feasible"].all()
