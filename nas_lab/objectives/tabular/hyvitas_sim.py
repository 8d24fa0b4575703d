"""``hyvitas-sim``: a deterministic, SIMULATED stand-in for the HyViTas-Bench table.

HyViTas-Bench's released data (seed 000) cannot be downloaded here, so this
module generates a table over the real HyViTas space (6,561 archs, 3 training
seeds) from a fixed seed. Its numbers are NOT training results: they are drawn
from the model below, calibrated to the statistics the paper publishes. Params
and FLOPs are exact (``space.params`` / ``space.flops``).

Generative model (one independent random stream per step):

1. Latent ID quality ``q``: a size term, concave in ``log params`` with its peak
   at 2.9 M params (larger models lose a little, smaller ones a lot), plus
   additive effects of kernels, expansions and early-stage widths, plus an
   arch-level random effect.
2. ID top-1 of a converged arch: an affine map of ``q`` that puts the best arch
   at 73.66 % and the space mean at 68.60 % (paper, section IV-A). Archs with
   the bottleneck ``stage1.dim 16, conv.expansion 1, conv.kernel 3`` train worse;
   a random subset of them (mostly with ``stage2.dim 32``) *collapses* to
   41-46 %, and every accuracy of a collapsed arch (ID, top-5, OoD) is scaled by
   the same factor.
3. Seeds: per-arch noise ``sigma`` (~0.24, larger for a random 6 % minority,
   the bottleneck archs and most of all the collapsed ones), centred over the
   three seeds so the mean over seeds is the arch's value; accuracies are
   rounded to the 25,000-image validation set (0.004 %). Top-5 is a logistic
   map of each seed's top-1 with a little noise.
4. OoD: per dataset a standardised score ``a * z_id + b * z_size + c * noise``
   whose correlations with ID and with log params are set in closed form to
   hit the paper's Kendall taus (Fig. 5) and its finding that size predicts C-5
   and Stylized accuracy better than it predicts ID. ImageNet-C severity ``s``
   mixes the C-1 and C-5 scores, plus a per-corruption score. Accuracy is a
   mean level times ``exp(spread * score)``, plus seed noise correlated with the
   ID seed noise. Mean levels are OUR ASSUMPTION (the paper's Table 4 numbers
   are not in our text): Sketch 25 %, Stylized 11 %, C-1 ~56 %, C-5 ~21 %,
   per corruption from a typical ImageNet-C difficulty profile.
5. ``train.attempts``: 3 plus failed attempts, negative-binomial with a failure
   rate that is tiny for most archs, high for the bottleneck and certain (at
   least one) for collapsed archs. ``train.hours`` (one run, A100): three
   clusters at ~10, 30 and 44 h (77 / 14 / 9 %), membership rising with
   FLOPs but noisy, so not explained by size (paper, appendix B: mean 16 h).
6. ``latency.<device>`` (ms, batch 1): fixed overhead + per-op launch cost x
   op count + FLOPs / effective throughput + weight bytes / bandwidth, with 2 %
   measurement jitter; per-op launch cost dominates on GPUs, which makes the
   RTX 5090/4090 faster than A100/H100 as in the paper's appendix A.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.space import Space, option_values
from nas_lab.objectives.tabular.table import CORRUPTIONS, SEVERITIES, Table, corruption_column
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.hyvitas.cost import DEPTH

__all__ = ["CORRUPTIONS", "DEVICES", "DEVICE_PROFILES", "build_table", "generate"]

_SEED = 20250600  # fixed: the table is part of the library, not of a run
_SEEDS = 3
_BEST, _MEAN = 73.66, 68.60  # paper, section IV-A
_VAL_IMAGES = 25_000  # RedImageNet validation set: accuracy resolution 100/25,000 %


class Device(NamedTuple):
    """Latency profile of one platform: ms = fixed + ops * per_op + FLOPs / throughput + bytes / bandwidth."""

    id: str
    name: str
    kind: str  # edge, cpu, consumer-gpu, server-gpu
    fixed_ms: float
    per_op_us: float
    gflops: float  # effective at batch 1
    gbytes_s: float


DEVICE_PROFILES = (
    Device("orin_nano", "NVIDIA Jetson Orin Nano", "edge", 0.5, 55.0, 600.0, 68.0),
    Device("agx_orin", "NVIDIA Jetson AGX Orin", "edge", 0.3, 30.0, 2000.0, 204.0),
    Device("xavier_nx", "NVIDIA Jetson Xavier NX", "edge", 0.6, 70.0, 400.0, 59.0),
    Device("rpi5", "Raspberry Pi 5 (Cortex-A76)", "edge", 1.0, 90.0, 18.0, 17.0),
    Device("rpi4", "Raspberry Pi 4 (Cortex-A72)", "edge", 2.0, 200.0, 6.0, 8.0),
    Device("i9_13900k", "Intel Core i9-13900K", "cpu", 0.1, 12.0, 250.0, 80.0),
    Device("ryzen9_7950x", "AMD Ryzen 9 7950X", "cpu", 0.1, 11.0, 280.0, 80.0),
    Device("xeon_8358", "Intel Xeon Platinum 8358", "cpu", 0.2, 20.0, 180.0, 150.0),
    Device("epyc_7763", "AMD EPYC 7763", "cpu", 0.2, 18.0, 200.0, 200.0),
    Device("graviton3", "AWS Graviton3 (Neoverse V1)", "cpu", 0.2, 22.0, 120.0, 300.0),
    Device("apple_m2", "Apple M2 (CPU)", "cpu", 0.1, 14.0, 150.0, 100.0),
    Device("rtx5090", "NVIDIA GeForce RTX 5090", "consumer-gpu", 0.05, 7.0, 8000.0, 1792.0),
    Device("rtx4090", "NVIDIA GeForce RTX 4090", "consumer-gpu", 0.05, 7.5, 7000.0, 1008.0),
    Device("rtx3090", "NVIDIA GeForce RTX 3090", "consumer-gpu", 0.06, 9.0, 4000.0, 936.0),
    Device("rtx3060", "NVIDIA GeForce RTX 3060", "consumer-gpu", 0.06, 9.5, 2000.0, 360.0),
    Device("h100", "NVIDIA H100 SXM", "server-gpu", 0.08, 10.0, 9000.0, 3350.0),
    Device("a100", "NVIDIA A100 SXM", "server-gpu", 0.08, 11.0, 6000.0, 2039.0),
    Device("l40s", "NVIDIA L40S", "server-gpu", 0.07, 9.8, 6000.0, 864.0),
    Device("v100", "NVIDIA V100 SXM2", "server-gpu", 0.08, 12.0, 3500.0, 900.0),
)
#: ids of the 19 latency columns, ``latency.<id>``
DEVICES = tuple(d.id for d in DEVICE_PROFILES)

# -- step 1: latent quality (accuracy points before the affine calibration) ----
_PEAK_PARAMS = 2.9e6
_SIZE_SLOPE, _SIZE_CURVE, _OVERSIZE_SLOPE = 2.0, 2.0, 10.0
_EFFECTS = {
    "conv.kernel": {3: -0.75, 5: 0.15, 7: 0.6},
    "conv.expansion": {1: -1.35, 2: 0.0, 4: 0.6},
    "attn.kernel": {3: -0.3, 5: 0.15, 7: 0.15},
    "stage1.dim": {16: -1.5, 32: 0.0, 48: 0.45},
    "stage2.dim": {32: -1.8, 64: 0.0, 96: 0.6},
}
_RANDOM_EFFECT = 0.5
_BOTTLENECK_PENALTY = 1.5
# -- step 2: collapse of bottleneck archs, by stage2.dim
_COLLAPSE_P = {32: 0.6, 64: 0.05, 96: 0.0}
_COLLAPSED_ACC = (41.5, 45.5)
# -- step 3: seed noise
_SIGMA, _SIGMA_SPREAD = 0.24, 0.25
_UNSTABLE_FRACTION, _UNSTABLE_FACTOR = 0.06, (3.0, 6.0)
_BOTTLENECK_SIGMA_FACTOR, _COLLAPSED_SIGMA = 2.0, (1.2, 2.2)
_TOP5_LOGIT = (1.075, 1.14, 0.03)  # logit(top5) = a + b * logit(top1) + c * noise
# -- step 4: OoD, (Pearson with ID score, Pearson with log-params score, mean level % or None
# for ImageNet-C, whose levels come from _RETENTION, relative spread)
_OOD = {
    "sketch": (0.88, 0.62, 25.0, 0.10),
    "stylized": (0.38, 0.78, 11.0, 0.14),
    "c1": (0.78, 0.68, None, 0.06),
    "c5": (0.10, 0.74, None, 0.14),
}
_CORRUPTION_SHARE = 0.35  # weight of the per-corruption score
# ImageNet-C retention (OoD / ID accuracy) at severities 1 and 5, geometric in between
_RETENTION = {
    "gaussian_noise": (0.78, 0.12), "shot_noise": (0.76, 0.12), "impulse_noise": (0.70, 0.12),
    "defocus_blur": (0.78, 0.20), "glass_blur": (0.75, 0.17), "motion_blur": (0.86, 0.28),
    "zoom_blur": (0.75, 0.32), "snow": (0.75, 0.28), "frost": (0.82, 0.30), "fog": (0.83, 0.40),
    "brightness": (0.97, 0.80), "contrast": (0.88, 0.10), "elastic_transform": (0.88, 0.33),
    "pixelate": (0.90, 0.40), "jpeg_compression": (0.90, 0.65),
}  # fmt: skip
_OOD_SEED_CORR = 0.5  # correlation of an OoD seed deviation with the ID one
# -- step 5: training
_FAIL_P = (0.004, 0.12, 0.30)  # per attempt: other, bottleneck, collapsed archs
_HOURS = ((10.0, 0.77), (30.0, 0.14), (44.0, 0.09))  # (centre, share) per cluster
_HOURS_FLOPS_WEIGHT, _HOURS_SPREAD = 1.0, 0.025
# -- step 6: latency
_LATENCY_JITTER = 0.02

_STREAMS = ("quality", "collapse", "seeds", "top5", "ood", "attempts", "hours", "latency")


@cache
def _cached(space_name: str) -> Table:
    return generate(HyViTasSpace())


def build_table(space: Space) -> Table:
    """SIMULATED HyViTas-Bench table (not the released data), calibrated to the paper's statistics.

    Generated once per process, then shared read-only.
    """
    if space.name != HyViTasSpace.name or space.decisions != HyViTasSpace.decisions:
        raise UserError(f"table 'hyvitas-sim' is defined over space 'hyvitas' only, not {space.name!r}; "
                        "use space=hyvitas or load a table for this space with table=PATH")
    return _cached(space.name)


def generate(space: Space) -> Table:
    """Generate the simulated table afresh (deterministic: same output on every call)."""
    archs = space.all_archs()
    n = len(archs)
    v = option_values(space, archs, space.names)
    params, flops = space.params(archs), space.flops(archs)
    rng = dict(zip(_STREAMS, map(np.random.default_rng, np.random.SeedSequence(_SEED).spawn(len(_STREAMS)))))

    # 1-2: latent quality, collapse and calibrated mean ID top-1
    bottleneck = (v["stage1.dim"] == 16) & (v["conv.expansion"] == 1) & (v["conv.kernel"] == 3)
    quality = _quality(v, params, bottleneck, rng["quality"])
    p_collapse = _lookup(v["stage2.dim"], _COLLAPSE_P) * bottleneck
    collapsed = rng["collapse"].random(n) < p_collapse
    collapsed_acc = rng["collapse"].uniform(*_COLLAPSED_ACC, n)
    gap = quality.max() - quality
    scale = ((~collapsed).sum() * _BEST - n * _MEAN + collapsed_acc[collapsed].sum()) / gap[~collapsed].sum()
    healthy = _BEST - scale * gap  # the accuracy each arch would reach without collapsing
    id_mean = np.where(collapsed, collapsed_acc, healthy)
    shrink = id_mean / healthy  # 1 except for collapsed archs

    # 3: seeds
    r = rng["seeds"]
    sigma = _SIGMA * np.exp(_SIGMA_SPREAD * r.standard_normal(n))
    sigma *= np.where(r.random(n) < _UNSTABLE_FRACTION, r.uniform(*_UNSTABLE_FACTOR, n), 1.0)
    sigma = np.where(bottleneck, sigma * _BOTTLENECK_SIGMA_FACTOR, sigma)
    sigma = np.where(collapsed, r.uniform(*_COLLAPSED_SIGMA, n), sigma)
    noise = r.standard_normal((n, _SEEDS))
    noise -= noise.mean(axis=1, keepdims=True)  # centred: the seed mean is id_mean
    top1 = id_mean[:, None] + sigma[:, None] * noise
    a, b, c = _TOP5_LOGIT
    logit1 = np.log(top1 / (100.0 - top1))
    top5 = 100.0 / (1.0 + np.exp(-(a + b * logit1 + c * rng["top5"].standard_normal(top1.shape))))

    columns = {"id.top1": _quantise(top1), "id.top5": _quantise(top5)}
    columns.update(_ood(quality, params, id_mean, shrink, sigma, noise, rng["ood"]))
    columns["train.attempts"] = _attempts(bottleneck, collapsed, rng["attempts"])
    columns["train.hours"] = np.round(_hours(flops, rng["hours"]), 2)
    columns.update(_latency(space, params, flops, rng["latency"]))
    columns["params"] = params
    columns["flops"] = flops
    for col in columns.values():
        col.flags.writeable = False  # the cached table is shared: keep it intact
    return Table(space, columns, name="hyvitas-sim", simulated=True,
                 description="simulated HyViTas-Bench stand-in (deterministic, calibrated to the paper's "
                             "published statistics; not real training results)")


def _lookup(values: np.ndarray, mapping: dict) -> np.ndarray:
    """Vectorised ``mapping[value]`` for a column of option values."""
    keys = np.array(list(mapping))
    return np.array(list(mapping.values()), dtype=float)[np.searchsorted(keys, values)]


def _quality(v, params, bottleneck, rng) -> np.ndarray:
    x = np.log(params / _PEAK_PARAMS)
    size = np.where(x < 0, _SIZE_SLOPE * x - _SIZE_CURVE * x**2, -_OVERSIZE_SLOPE * x)
    topology = sum(_lookup(v[name], effects) for name, effects in _EFFECTS.items())
    return size + topology - _BOTTLENECK_PENALTY * bottleneck + _RANDOM_EFFECT * rng.standard_normal(len(x))


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


def _ood(quality, params, id_mean, shrink, sigma, noise, rng) -> dict[str, np.ndarray]:
    """Per-seed OoD accuracies: scores with set correlations to ID and size, mapped to accuracy levels."""
    z_id, z_size = _standardise(quality), _standardise(np.log(params))
    r = np.mean(z_id * z_size)
    n = len(z_id)
    scores = {}
    for name, (rho_id, rho_size, _, _) in _OOD.items():
        # corr(score, z_id) = rho_id and corr(score, z_size) = rho_size, unit variance
        w_id = (rho_id - rho_size * r) / (1 - r**2)
        w_size = (rho_size - rho_id * r) / (1 - r**2)
        w_noise = np.sqrt(1 - w_id**2 - w_size**2 - 2 * w_id * w_size * r)
        scores[name] = w_id * z_id + w_size * z_size + w_noise * rng.standard_normal(n)

    def per_seed(score, level, spread):
        arch = level * np.exp(spread * score) * shrink
        mixed = _OOD_SEED_CORR * noise + np.sqrt(1 - _OOD_SEED_CORR**2) * rng.standard_normal((n, _SEEDS))
        # seed noise shrinks with the accuracy level, so hard corruptions stay positive
        return _quantise(arch[:, None] + (sigma * np.sqrt(arch / id_mean))[:, None] * mixed)

    out = {}
    for name in ("sketch", "stylized"):
        level, spread = _OOD[name][2:]
        out[f"ood.{name}"] = per_seed(scores[name], level, spread)
    for corruption in CORRUPTIONS:
        own = rng.standard_normal(n)
        first, last = _RETENTION[corruption]
        for s in SEVERITIES:
            w = (s - 1) / (len(SEVERITIES) - 1)
            shared = _standardise((1 - w) * scores["c1"] + w * scores["c5"])
            score = np.sqrt(1 - _CORRUPTION_SHARE**2) * shared + _CORRUPTION_SHARE * own
            spread = (1 - w) * _OOD["c1"][3] + w * _OOD["c5"][3]
            level = _MEAN * first * (last / first) ** w
            out[corruption_column(corruption, s)] = per_seed(score, level, spread)
    return out


def _attempts(bottleneck, collapsed, rng) -> np.ndarray:
    """Attempts needed for 3 converged runs: 3 + failures (a collapsed arch always fails at least once)."""
    p = np.where(collapsed, _FAIL_P[2], np.where(bottleneck, _FAIL_P[1], _FAIL_P[0]))
    return (_SEEDS + collapsed + rng.negative_binomial(_SEEDS, 1 - p)).astype(np.int64)


def _hours(flops, rng) -> np.ndarray:
    """GPU-hours of one run: a noisy FLOPs-driven cluster, then a small spread inside it."""
    z = _standardise(np.log(flops))
    u = rng.random(len(z))
    drive = _HOURS_FLOPS_WEIGHT * z + np.log(u / (1 - u))  # logistic noise
    shares = np.cumsum([share for _, share in _HOURS])[:-1]
    cluster = np.searchsorted(np.quantile(drive, shares), drive)
    centre = np.array([c for c, _ in _HOURS])[cluster]
    return centre * np.exp(_HOURS_SPREAD * (0.5 * z + rng.standard_normal(len(z))))


def _latency(space, params, flops, rng) -> dict[str, np.ndarray]:
    # kernels launched per forward: stem 2, downsamplings 2 each, ConvNeXt block 6,
    # attention sub-block 6 more, head 3 (the same for every arch of this space)
    ops = 2 + 2 * 3 + 3 + DEPTH * (2 * 6 + 2 * 12)
    out = {}
    for d in DEVICE_PROFILES:
        ms = d.fixed_ms + ops * d.per_op_us / 1e3 + flops / (d.gflops * 1e6) + 4.0 * params / (d.gbytes_s * 1e6)
        out[f"latency.{d.id}"] = np.round(ms * np.exp(_LATENCY_JITTER * rng.standard_normal(len(ms))), 4)
    return out


def _quantise(acc: np.ndarray) -> np.ndarray:
    """Round accuracies to what a 25,000-image validation set can report (multiples of 0.004 %)."""
    step = 100.0 / _VAL_IMAGES
    return np.round(np.round(acc / step) * step, 3)
