"""Zero-cost proxies: each one pinned on a tiny network whose score is worked out by hand, then on real spaces."""

import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from nas_lab.core import registry
from nas_lab.core.errors import UserError
from nas_lab.core.task import default_image_size
from nas_lab.objectives.zero_cost import activations, entropic, gradients, inputs, size, synflow
from nas_lab.objectives.zero_cost.proxies import Proxy, evaluate_proxies, evaluate_proxy
from nas_lab.spaces.autovit.space import AutoViTSpace
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.nb201 import NB201Space
from nas_lab.spaces.poolvit import PoolViTSpace
from nas_lab.spaces.vitas import ViTASSpace

PROXIES = ("params", "flops", "naswot", "snip", "grad_norm", "jacob_cov", "synflow", "logsynflow", "entropic")
SEED_DEPENDENT = ("naswot", "snip", "grad_norm", "jacob_cov", "synflow", "logsynflow", "entropic")
NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
NB201_NO_PATH = "|none~0|+|none~0|avg_pool_3x3~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
K = gradients.JACOB_K


def linear(weight, bias=False) -> nn.Linear:
    w = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=bias)
    with torch.no_grad():
        layer.weight.copy_(w)
    return layer


class HalfSquare(nn.Module):
    """x -> x^2 / 2 per element: the input Jacobian of the summed output is x itself."""

    def forward(self, x):
        return 0.5 * x.flatten(1) ** 2


class InputBlind(nn.Module):
    """Output ignores the input, like an NB201 cell whose ``none`` edges cut every path."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return self.bias.expand(len(x), 3)


# -- registry ------------------------------------------------------------------------------------------------


def test_every_proxy_is_registered_under_its_own_name():
    assert set(PROXIES) <= set(registry.names("proxy"))
    for name in PROXIES:
        proxy = registry.load("proxy", name)
        assert isinstance(proxy, Proxy) and proxy.name == name and proxy.version >= 1 and proxy.summary
    assert [n for n in PROXIES if registry.load("proxy", n).needs_labels] == ["snip", "grad_norm"]


def test_unknown_proxy_names_the_valid_ones():
    with pytest.raises(UserError, match="unknown proxy 'zen'.*naswot"):
        evaluate_proxy(NB201Space(), (0,) * 6, "zen")


# -- each proxy on a hand-made network ----------------------------------------------------------------------------


def test_params_counts_every_trainable_parameter():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))  # 3*2 + 2, then BN weight and bias 2 + 2
    assert size.params(model, torch.zeros(1, 3), None) == 12


def test_flops_are_twice_the_multiply_accumulates_of_one_image():
    assert size.flops(nn.Linear(4, 3), torch.zeros(7, 4), None) == 2 * 4 * 3
    # 3x3 kernel over a 5x5 map without padding: 9 outputs of 9 MACs each
    assert size.flops(nn.Conv2d(1, 1, 3), torch.zeros(2, 1, 5, 5), None) == 2 * 9 * 9


def test_naswot_is_the_log_determinant_of_code_agreements():
    # ReLU codes 110, 100, 000: agreements K = [[3, 2, 1], [2, 3, 2], [1, 2, 3]], det 8
    x = torch.tensor([[1.0, 1, -1], [1, -1, -1], [-1, -1, -1]]).view(3, 1, 1, 3)
    assert activations.naswot(nn.Sequential(nn.Flatten(), nn.ReLU()), x, None) == pytest.approx(math.log(8))
    # a GELU is positive exactly where a ReLU is: the same codes again, K doubles, det x 2^3
    both = nn.Sequential(nn.Flatten(), nn.ReLU(), nn.GELU())
    assert activations.naswot(both, x, None) == pytest.approx(math.log(64))
    # no rectified unit tells the images apart: a zero kernel, scored -inf like any singular one (it once raised)
    assert activations.naswot(nn.Flatten(), x, None) == -math.inf


def test_naswot_scores_a_vitas_arch_of_identities_only_the_worst_instead_of_stopping_a_study():
    space = ViTASSpace(setting="cpu")
    arch = space.from_values({"patch": space.describe(space.sample(np.random.default_rng(0), 1)[0])["patch"],
                              "embed.ratio": 1.0, **{f"block{i + 1}": "identity" for i in range(space.positions)}})
    assert evaluate_proxies(space, arch, ["naswot"], resolution=32, batch_size=2)["naswot"] == -math.inf


def test_snip_and_grad_norm_of_a_linear_softmax_classifier():
    # logits z = x = (1, 2), label 0: dL/dz = softmax(z) - e0 = e/(1+e) * (-1, 1), dL/dW = dL/dz x^T
    model, x, y = linear([[1, 0], [0, 1]]), torch.tensor([[1.0, 2.0]]), torch.tensor([0])
    s = math.e / (1 + math.e)
    assert gradients.snip(model, x, y) == pytest.approx(s * (1 + 2), rel=1e-6)  # |g * W| on the diagonal only
    assert gradients.grad_norm(model, x, y) == pytest.approx(s * math.sqrt(1 + 4 + 1 + 4), rel=1e-6)
    assert model.weight.grad is None  # gradients are taken, not accumulated into the model


def test_synflow_and_logsynflow_of_a_two_layer_linear_net():
    # |W1| = [[1, 2], [3, 0]], |W2| = [1, 2]; ones input: h = |W1| 1 = (3, 3), R = |W2| h = 9.
    # dR/dW1[i, j] = |W2|[i] -> sum |W1 * g1| = R; dR/dW2[j] = h[j] -> sum |W2 * g2| = R.
    w1, w2 = linear([[1, -2], [3, 0]]), linear([[1, 2]])
    model = nn.Sequential(w1, nn.BatchNorm1d(2), nn.ReLU(), w2)  # the BatchNorm is removed, as in Abdelfattah et al.
    x = torch.randn(4, 2)
    assert synflow.synflow(model, x, None) == pytest.approx(2 * 9)
    # log(1 + g): W1 rows weigh log 2 and log 3, W2 entries log 4
    assert synflow.logsynflow(model, x, None) == pytest.approx(
        (1 + 2) * math.log(2) + 3 * math.log(3) + (1 + 2) * math.log(4))
    assert w1.weight[0, 1] == -2 and isinstance(model[1], nn.BatchNorm1d)  # the model itself is unchanged


class Quotient(nn.Module):
    """R = (w1 x) / (w2 x): the denominator's weight gets a negative gradient, as in a linear attention."""

    def __init__(self, w1: float, w2: float):
        super().__init__()
        self.num, self.den = linear([[w1]]), linear([[w2]])

    def forward(self, x):
        return self.num(x) / self.den(x)


def test_logsynflow_takes_the_gradients_magnitude_where_it_is_negative():
    # ones input, |w1| = 3, |w2| = 1: R = 3, dR/dw1 = 1, dR/dw2 = -3 (below -1, where log(g + 1) is undefined)
    assert synflow.logsynflow(Quotient(3.0, -1.0), torch.ones(1, 1), None) == pytest.approx(
        3 * math.log(2) + math.log(4))


def test_synflow_is_the_depth_times_the_path_sum_of_a_deeper_positive_chain():
    # bias-free linear chain, |weights|: every layer's sum of |w * dR/dw| equals R = 1^T |W3||W2||W1| 1
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=shape).astype(np.float32).astype(float) for shape in ((4, 3), (5, 4), (2, 5))]
    model = nn.Sequential(*(linear(m.tolist()) for m in mats))
    path_sum = np.ones(2) @ np.abs(mats[2]) @ np.abs(mats[1]) @ np.abs(mats[0]) @ np.ones(3)
    assert synflow.synflow(model, torch.zeros(1, 3), None) == pytest.approx(3 * path_sum, rel=1e-9)


def test_jacob_cov_scores_uncorrelated_jacobians_highest():
    # Jacobian rows = the inputs: zero-mean and orthogonal, so the correlation matrix is I (eigenvalues 1)
    x = torch.tensor([[1.0, -1, 0, 0], [0, 0, 1, -1]])
    assert gradients.jacob_cov(HalfSquare(), x, None) == pytest.approx(-2 * (math.log(1 + K) + 1 / (1 + K)))
    # a linear map has the same Jacobian for every image: all-ones correlation, eigenvalues (B, 0, ..., 0)
    b = 5
    identical = -(math.log(b + K) + 1 / (b + K) + (b - 1) * (math.log(K) + 1 / K))
    assert gradients.jacob_cov(nn.Linear(4, 3), torch.randn(b, 4), None) == pytest.approx(identical, rel=1e-6)
    assert math.isnan(gradients.jacob_cov(InputBlind(), torch.randn(b, 4), None))


def test_entropic_is_the_entropy_of_max_normalised_relu_maps():
    conv = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(-2.0)
    model = nn.Sequential(conv, nn.BatchNorm2d(1), nn.GELU())
    # |w| = 2, BatchNorm gone, GELU -> ReLU: (1, 0.5, 0, 0.25), already max-normalised;
    # entropies -a log a = (0, log 2 / 2, 0, log 2 / 2), mean log 2 / 4
    x = torch.tensor([0.5, 0.25, -0.5, 0.125]).view(1, 1, 1, 4)
    assert entropic.entropic(model, x, None) == pytest.approx(math.log(2) / 4, abs=1e-7)
    with torch.no_grad():
        conv.weight.fill_(7.0)  # a map is divided by its own maximum: the scale drops out
    assert entropic.entropic(model, x, None) == pytest.approx(math.log(2) / 4, abs=1e-7)
    # every activation layer adds its own mean entropy; maps are normalised one (sample, channel) at a time
    two = nn.Sequential(model, nn.ReLU())
    assert entropic.entropic(two, x, None) == pytest.approx(2 * math.log(2) / 4, abs=1e-7)
    assert entropic.entropic(two, torch.cat([x, 3 * x]), None) == pytest.approx(2 * math.log(2) / 4, abs=1e-7)
    assert isinstance(model[2], nn.GELU) and conv.weight.item() == 7.0  # only a copy was changed


class FunctionalReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return torch.relu(self.conv(x))


def test_entropic_refuses_a_network_without_activation_modules():
    """Functional activations are invisible to the hooks: refused, not scored 0 (Pool-ViT once was)."""
    with pytest.raises(ValueError, match="entropic needs activation modules"):
        entropic.entropic(FunctionalReLU(), torch.rand(2, 1, 4, 4), None)


@pytest.mark.parametrize("space", [HyViTasSpace(), NB201Space(), ViTASSpace(setting="cpu"), AutoViTSpace(setting="cpu"),
                                   PoolViTSpace()], ids=lambda s: s.name)
def test_the_decoupled_searchers_proxies_are_positive_and_finite_on_every_space(space):
    """The Entropic Score and LogSynflow on three archs of each space that builds models (tiny inputs)."""
    for arch in space.sample(np.random.default_rng(0), 3):
        values = evaluate_proxies(space, arch, ["entropic", "logsynflow"], resolution=32, batch_size=2)
        assert all(math.isfinite(v) and v > 0 for v in values.values()), (space.name, values)


# -- inputs ----------------------------------------------------------------------------------------------------


def test_make_batch_is_seeded_labelled_and_leaves_the_global_rng_alone():
    space = HyViTasSpace()
    state = torch.get_rng_state()
    x, y = inputs.make_batch(space, 24, 256, seed=3)
    assert x.shape == (256, 3, 24, 24) and x.dtype == torch.float32 and y.shape == (256,)
    assert 0 <= int(y.min()) and int(y.max()) < 500 and len(torch.unique(y)) > 100  # HyViTas: 500 classes
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=0.05)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=0.05)
    # natural-image statistics: neighbouring pixels and colour channels correlate (white noise: 0)
    assert torch.corrcoef(torch.stack([x[..., :-1].flatten(), x[..., 1:].flatten()]))[0, 1] > 0.5
    assert torch.corrcoef(x.transpose(0, 1).flatten(1))[0, 1:].sub(inputs.CHANNEL_CORRELATION).abs().max() < 0.02
    again, _ = inputs.make_batch(space, 24, 256, seed=3)
    other, _ = inputs.make_batch(space, 24, 256, seed=4)
    assert torch.equal(x, again) and not torch.equal(x, other)
    u, _ = inputs.make_batch(space, 24, 256, seed=3, kind="uniform")
    assert -0.5 <= float(u.min()) < -0.49 and 0.49 < float(u.max()) < 0.5
    assert torch.equal(state, torch.get_rng_state())
    _, y10 = inputs.make_batch(NB201Space(), 8, 64, seed=0)
    assert set(y10.tolist()) == set(range(10))
    with pytest.raises(UserError, match="data, uniform"):
        inputs.make_batch(space, 8, 2, seed=0, kind="cifar")


# -- real spaces ------------------------------------------------------------------------------------------------


def test_default_image_size():
    assert default_image_size(NB201Space()) == 32
    assert default_image_size(HyViTasSpace()) == 64
    assert default_image_size(HyViTasSpace(), "cuda:1") == 160  # a GPU trains at the paper's resolution
    assert default_image_size(NB201Space(), "cuda") == 32


def test_evaluate_proxy_is_deterministic_and_seeded_and_leaves_the_global_rng_alone():
    space = NB201Space()
    arch = space.from_strings(NB201_BEST)[0]
    state = torch.get_rng_state()
    kw = dict(resolution=8, batch_size=8)
    first = evaluate_proxies(space, arch, PROXIES, seed=0, **kw)
    assert torch.equal(state, torch.get_rng_state())
    assert first == evaluate_proxies(space, arch, PROXIES, seed=0, **kw)
    other = evaluate_proxies(space, arch, PROXIES, seed=1, **kw)
    for name in SEED_DEPENDENT:
        assert other[name] != first[name], name
    assert other["params"] == first["params"] and other["flops"] == first["flops"]
    # sharing one build across proxies gives what each proxy gives alone (exact: each proxy starts from the
    # same seeded weights and batch and runs the same code in this process)
    for name in ("naswot", "synflow", "entropic", "snip"):
        assert evaluate_proxy(space, arch, name, seed=0, **kw) == first[name], name


def test_size_proxies_match_the_spaces_closed_forms():
    hyvitas, nb201 = HyViTasSpace(), NB201Space()
    arch = hyvitas.arch(1234)
    assert evaluate_proxy(hyvitas, arch, "params") == hyvitas.params(arch[None])[0]
    assert (evaluate_proxy(hyvitas, arch, "flops", resolution=hyvitas.resolution, batch_size=1)
            == hyvitas.flops(arch[None])[0])
    best = nb201.from_strings(NB201_BEST)
    assert evaluate_proxy(nb201, best[0], "params") == nb201.params(best)[0]


@pytest.mark.parametrize("space, arch", [(HyViTasSpace(), 4100), (NB201Space(), 6111)], ids=["hyvitas", "nb201"])
def test_every_proxy_is_finite_on_a_real_arch_and_timed(space, arch):
    arch = space.arch(arch)
    values = evaluate_proxies(space, arch, PROXIES, batch_size=4)
    assert all(math.isfinite(v) for v in values.values()), values
    start = time.perf_counter()
    evaluate_proxy(space, arch, "naswot")
    took = time.perf_counter() - start
    print(f"\n{space.name} arch {space.index(arch)}: naswot at the default {default_image_size(space)} px, "
          f"batch 64: {took:.3f} s; {values}")


def test_a_cell_cut_off_from_its_input():
    """``none`` edges cut every path: no signal or gradient crosses the cell; FreeREA's values agree (-inf, 0)."""
    space = NB201Space()
    values = evaluate_proxies(space, space.from_strings(NB201_NO_PATH)[0], PROXIES, resolution=8, batch_size=8)
    assert values["naswot"] == -math.inf  # every image gets the same code: K is singular
    assert values["synflow"] == values["logsynflow"] == values["snip"] == values["grad_norm"] == 0.0
    assert values["entropic"] == 0.0  # every activation map is zero
    assert math.isnan(values["jacob_cov"])  # the output does not depend on the image: no correlation
    assert values["params"] > 0 and values["flops"] > 0
