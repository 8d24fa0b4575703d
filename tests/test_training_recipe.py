"""One-shot training recipes: the space names its supernet's, SGD settings keep their cache keys, AdamW warms up."""

import pytest
import torch

from nas_lab.core.errors import UserError
from nas_lab.oneshot.training import Settings, weight_optimizer
from nas_lab.spaces.autovit.space import AutoViTSpace
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.vitas import ViTASSpace


def test_auto_takes_the_space_recipe_and_unset_rates_the_optimisers():
    vit = Settings.resolve(ViTASSpace(setting="cpu"), None, 64, None, None, 4, "auto", "objective")
    assert (vit.optimizer, vit.epochs, vit.learning_rate) == ("adamw", 60, 1e-3)
    cnn = Settings.resolve(HyViTasSpace(), None, 64, None, None, 4, "auto", "objective")
    assert (cnn.optimizer, cnn.epochs, cnn.learning_rate) == ("sgd", 5, 0.1)
    # SGD's key is what it was before there was a choice, so supernets cached then are still found
    assert cnn.training() == {"epochs": 5, "batch_size": 64, "learning_rate": 0.1, "max_batches": None}
    assert vit.training()["optimizer"] == "adamw"
    mine = Settings.resolve(ViTASSpace(setting="cpu"), 3, 64, 0.01, None, 4, "sgd", "objective")
    assert (mine.optimizer, mine.epochs, mine.learning_rate) == ("sgd", 3, 0.01)
    with pytest.raises(UserError, match="objective.optimizer must be one of sgd, adamw"):
        Settings.resolve(None, None, 64, None, None, 4, "adam", "objective")


def test_pool_vit_recipe_clips_gradients_and_the_others_do_not():
    """Without clipping, SGD at 0.1 drove the default Pool-ViT supernet's weights to inf within 3 epochs on digits
    (every arch then scored alike and the run stopped)."""
    from nas_lab.spaces.poolvit.space import PoolViTSpace

    pool = Settings.resolve(PoolViTSpace(), None, 64, None, None, None, "auto", "objective")
    assert pool.grad_clip == 5.0 and pool.training()["grad_clip"] == 5.0  # a key of its own: no unclipped cache
    assert Settings.resolve(HyViTasSpace(), None, 64, None, None, None, "auto", "objective").grad_clip is None


def test_unset_recalibration_takes_the_space_recipe():
    """AutoViT re-estimates BN on 2 batches (its CPU schedule), HyViTas on the default 4; a given number wins,
    and recalibration is not part of the trained weights' key."""
    def batches(space, given):
        return Settings.resolve(space, None, 64, None, None, given, "auto", "objective")

    assert batches(AutoViTSpace(setting="cpu"), None).recalibration == 2
    assert batches(HyViTasSpace(), None).recalibration == 4
    assert batches(AutoViTSpace(setting="cpu"), 4).recalibration == 4
    assert batches(AutoViTSpace(setting="cpu"), None).training() == batches(AutoViTSpace(setting="cpu"), 4).training()


def test_adamw_warms_up_linearly_then_decays_to_zero_and_spares_biases_and_norms():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    settings = Settings(1, 8, 1e-3, None, 1, "adamw")
    optimizer, schedule = weight_optimizer(net.parameters(), settings, steps=100)
    decays = sorted((g["weight_decay"], sum(p.numel() for p in g["params"])) for g in optimizer.param_groups)
    assert decays == [(0.0, 4 + 4 + 4), (0.05, 16)]  # biases and LayerNorm scale/shift: no decay
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    # warm-up over the first 10 steps: 1/10, 2/10 ... of the peak, exactly by construction (float tolerance 1e-12)
    assert rates[:10] == pytest.approx([1e-4 * (i + 1) for i in range(10)], abs=1e-12)
    assert rates[10] == pytest.approx(1e-3, abs=1e-12)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert rates[-1] < 1e-6


def test_grad_clip_bounds_each_step_and_joins_the_key_only_when_set():
    """``grad_clip`` caps the gradient norm of every step (a from-scratch recipe that keeps hot hybrids finite)."""
    import numpy as np

    from nas_lab.oneshot.training import torch_generator, train_weights

    x, y = torch.randn(64, 8) * 100, torch.randint(0, 3, (64,))  # large inputs: large gradients

    def moved(clip):
        torch.manual_seed(0)
        net = torch.nn.Linear(8, 3)
        before = torch.cat([p.detach().flatten().clone() for p in net.parameters()])
        settings = Settings(1, 64, 0.1, None, 1, grad_clip=clip)
        train_weights(net, (x, y), settings, torch_generator(np.random.default_rng(0)), "t",
                      lambda a, b: torch.nn.functional.cross_entropy(net(a), b))
        return float((torch.cat([p.detach().flatten() for p in net.parameters()]) - before).norm())

    # one Nesterov step moves by lr x (1 + momentum) x |g| at most (plus a weight decay of 5e-4 x |w|)
    assert moved(1.0) <= 0.1 * 1.9 * 1.0 + 1e-3 < moved(None)
    assert "grad_clip" not in Settings(1, 64, 0.1, None, 1).training()
    assert Settings(1, 64, 0.1, None, 1, grad_clip=5.0).training()["grad_clip"] == 5.0
    with pytest.raises(UserError, match=r"objective.grad_clip must lie in \(0, 1,000,000\], got 0"):
        Settings(1, 64, 0.1, None, 1, grad_clip=0.0).check("objective")


def _linear_training(settings, **hooks):
    """A 3-class linear model trained on 64 fixed random images (flattened 8 features); what each step saw."""
    import numpy as np

    from nas_lab.oneshot.training import torch_generator, train_weights

    x, y = torch.randn(64, 8, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 3
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 3)
    seen = []

    def loss_of(a, target):
        logits = net(a)
        seen.append((logits.dtype, target.dtype))
        return torch.nn.functional.cross_entropy(logits, target)

    train_weights(net, (x, y), settings, torch_generator(np.random.default_rng(0)), "t", loss_of, **hooks)
    return net, seen


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                              ("fp16", torch.float16)])
def test_each_precision_runs_its_steps_under_autocast_and_keeps_float32_weights(precision, dtype):
    net, seen = _linear_training(Settings(1, 16, 0.1, None, 1, precision=precision))
    assert {logits for logits, _ in seen} == {dtype} and len(seen) == 4
    assert net.weight.dtype == torch.float32 and torch.isfinite(net.weight).all()


def test_precision_auto_is_bf16_on_cuda_and_fp32_on_cpu_and_joins_the_key_only_when_not_fp32():
    from nas_lab.oneshot.training import resolve_precision

    assert resolve_precision("auto", "cpu") == "fp32" and resolve_precision("auto", "cuda:1") == "bf16"
    assert resolve_precision("fp16", "cpu") == "fp16"
    base = Settings(1, 16, 0.1, None, 1)
    assert base.training() == {"epochs": 1, "batch_size": 16, "learning_rate": 0.1, "max_batches": None}
    assert Settings(1, 16, 0.1, None, 1, precision="bf16", compile=True, augment="deit").training() == {
        **base.training(), "precision": "bf16", "compile": True, "augment": "deit"}
    assert Settings.resolve(None, 1, 16, None, None, None, "auto", "o", device="cpu") == Settings(1, 16, 0.1, None, 4)


def test_augment_maps_every_training_batch_and_log_gets_each_step_and_each_epoch():
    """The augmentation's soft targets reach the loss; the log has the loss, rate and images/s of every step and the
    val accuracy of every epoch."""
    calls, logged = [], []

    def augment(x, y):
        calls.append(len(y))
        return x, torch.nn.functional.one_hot(y, 3).float() * 0.9 + 0.1 / 3  # label smoothing

    class Log:
        def scalars(self, step, values):
            logged.append((step, sorted(values)))

    _, seen = _linear_training(Settings(2, 16, 0.1, None, 1), augment=augment, log=Log(), val=lambda: 50.0)
    assert calls == [16] * 8 and {target for _, target in seen} == {torch.float32}
    steps = [(s, ["images_per_s", "loss", "lr"]) for s in range(1, 9)]
    assert logged == steps[:4] + [(4, ["val_accuracy"])] + steps[4:] + [(8, ["val_accuracy"])]
