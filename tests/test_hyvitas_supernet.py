"""HyViTas supernet: slices equal the built models, the one-hot mixture equals the single path,
gradients stay on the path / reach the architecture weights, BN recalibration per path: the behaviour of the
one-shot contract (nas_lab.oneshot.contract.Supernet; its isinstance check is in test_oneshot_layer.py).

Tolerance: a path, the one-hot mixture and the extracted model compute the same float32 operations in another
order or with masks; logits of order 1 agree to rtol 1e-5, atol 1e-6."""

import copy
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_lab.spaces.hyvitas import HyViTasSpace

SPACE = HyViTasSpace()
SMALLEST = np.zeros(SPACE.dim, dtype=np.int64)
LARGEST = SPACE.sizes - 1
ARCHS = np.vstack([SMALLEST, LARGEST, SPACE.sample(np.random.default_rng(0), 5)])
CLASSES = 10


def one_hot(arch, dtype=torch.float32):
    return [F.one_hot(torch.tensor(int(i)), int(n)).to(dtype) for i, n in zip(arch, SPACE.sizes)]


@pytest.fixture(scope="module")
def supernet():
    """Random weights and non-trivial BatchNorm affine parameters and running stats (eval mode)."""
    torch.manual_seed(0)
    net = SPACE.supernet(num_classes=CLASSES)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.3)
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_space_offers_a_supernet_holding_the_largest_model(supernet):
    assert "supernet" in SPACE.capabilities()
    assert sum(p.numel() for p in supernet.parameters()) == SPACE.params(LARGEST, num_classes=CLASSES)[0]


@pytest.mark.parametrize("arch", ARCHS.tolist(), ids=lambda a: "".join(map(str, a)))
def test_single_path_and_one_hot_mixture_equal_the_extracted_model(supernet, arch):
    # 64x64 so that stage 4 still has 2x2 tokens: at 32x32 its attention sees one
    # token, and a wrong head layout would go unnoticed there.
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = supernet.extract(arch).eval()(x)
        torch.testing.assert_close(supernet(x, arch), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(supernet(x, weights=one_hot(arch)), expected, rtol=1e-5, atol=1e-6)
    assert expected.shape == (2, CLASSES) and expected.std() > 0.1


def test_train_mode_uses_per_path_batch_stats_and_updates_only_the_slice(supernet):
    arch = ARCHS[3]
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    model = supernet.extract(arch).train()
    path, mixture = copy.deepcopy(supernet).train(), copy.deepcopy(supernet).train()
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(path(x, arch), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mixture(x, weights=one_hot(arch)), expected, rtol=1e-5, atol=1e-6)
    # the running stats the path updated are those the standalone model updated
    updated = path.extract(arch).state_dict()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(updated[name], value, rtol=1e-5, atol=1e-6, msg=name)
    stem_norm, width = path.stem[1], SPACE.describe(arch)["stage1.dim"]
    assert torch.equal(stem_norm.running_mean[width:], supernet.stem[1].running_mean[width:])
    assert not torch.equal(stem_norm.running_mean[:width], supernet.stem[1].running_mean[:width])


def test_single_path_gradients_stay_on_the_slice(supernet):
    arch = ARCHS[4]
    net = copy.deepcopy(supernet).train()
    # 64x64: at 32x32 stage 4 has a single token, whose attention gives q and k no gradient
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    F.cross_entropy(net(x, arch), torch.arange(2)).backward()
    grads = torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in net.parameters()])
    # tag every supernet weight with its own id, extract: the ids in the model are the slice
    ids = copy.deepcopy(net)
    with torch.no_grad():
        start = 1
        for p in ids.parameters():
            p.copy_(torch.arange(start, start + p.numel(), dtype=p.dtype).reshape(p.shape))
            start += p.numel()
    used_ids = torch.cat([p.flatten() for p in ids.extract(arch).parameters()]).long()
    used = torch.zeros_like(grads, dtype=torch.bool)
    used[used_ids - 1] = True
    assert len(used_ids) == SPACE.params(arch, num_classes=CLASSES)[0] == used.sum()
    assert (grads[~used] == 0).all()
    assert (grads[used] != 0).float().mean() > 0.999


def test_mixture_gradients_reach_the_architecture_weights():
    torch.manual_seed(4)
    net = SPACE.supernet(num_classes=CLASSES).double().eval()
    # 64x64: at 32x32 stages 3 and 4 are 2x2 and 1x1, where every attn.kernel option sees the
    # whole map, so that decision (rightly) gets no gradient there
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    alphas = torch.randn(SPACE.dim, 3, dtype=torch.float64, requires_grad=True)

    def loss(a):
        return F.cross_entropy(net(x, weights=list(a.softmax(-1))), torch.tensor([1, 2]))

    loss(alphas).backward()
    assert (alphas.grad.abs().sum(1) > 1e-8).all()  # every decision moves the loss
    # and the relaxation is differentiable as written: the directional derivative along a
    # random direction, by central differences, equals the autograd gradient's projection
    direction = torch.randn(alphas.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    eps = 1e-5
    with torch.no_grad():
        numeric = (loss(alphas + eps * direction) - loss(alphas - eps * direction)) / (2 * eps)
    assert numeric.item() == pytest.approx((alphas.grad * direction).sum().item(), rel=1e-6)


def test_recalibration_reestimates_the_paths_bn_stats(supernet):
    arch = ARCHS[5]
    net = copy.deepcopy(supernet)
    gen = torch.Generator().manual_seed(5)
    batches = [(torch.randn(8, 3, 32, 32, generator=gen) * 2 + 1, torch.zeros(8)) for _ in range(3)]
    # reference: the standalone model's BN stats re-estimated as the cumulative average
    model = net.extract(arch)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for images, _ in batches:
            model(images)
    assert net.recalibrate(arch, batches) is net and not net.training
    assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    x = batches[0][0]
    with torch.no_grad():
        torch.testing.assert_close(net(x, arch), model.eval()(x), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(net(x, arch), supernet(x, arch), rtol=1e-2)


def test_bad_calls_are_refused(supernet):
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(TypeError, match="either an arch"):
        supernet(x)
    with pytest.raises(ValueError, match="one vector per decision"):
        supernet(x, weights=one_hot(SMALLEST)[:7])


def test_spos_and_darts_training_steps_learn(capsys):
    """A few SPOS steps (random paths) and DARTS steps (mixture) fit a fixed batch; prints images/s."""
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    y = torch.randint(0, CLASSES, (64,), generator=torch.Generator().manual_seed(7))
    rng = np.random.default_rng(6)
    figures = {}
    for mode, steps in (("single path", 8), ("mixture", 4)):
        torch.manual_seed(6)
        net = SPACE.supernet(num_classes=CLASSES).train()
        alphas = torch.zeros(SPACE.dim, 3, requires_grad=True)
        opt = torch.optim.Adam(list(net.parameters()) + [alphas], lr=2e-3)
        losses = []
        for step, arch in enumerate(SPACE.sample(rng, steps)):
            if step == 1:  # the first step also pays one-off set-up costs
                start = time.perf_counter()
            kwargs = {"arch": arch} if mode == "single path" else {"weights": list(alphas.softmax(-1))}
            loss = F.cross_entropy(net(x, **kwargs), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        figures[mode] = 64 * (steps - 1) / (time.perf_counter() - start)
        assert np.mean(losses[-2:]) < 0.5 * losses[0], (mode, losses)
    with capsys.disabled():
        print("\nHyViTas supernet training, batch 64 at 32x32, forward+backward+Adam, "
              f"{torch.get_num_threads()} threads: " + ", ".join(f"{k} {v:.0f} img/s" for k, v in figures.items()))
