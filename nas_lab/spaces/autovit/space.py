"""The AutoViT space (seed 001, Table 1): three hybrid MobileNetV2 / MobileViT spaces, XXS, XS and S.

Decisions of ``space.variant=xxs|xs|s`` (Table 1's options, exactly):

- ``stem.width``: the 3 x 3 stem conv, {16, 24};
- ``mb1`` … ``mb3``: a MobileNetV2 stage each, ``.width`` (per variant) and
  ``.depth`` ({1, 2} for MB-1, {2, 3} for MB-2 and MB-3);
- ``stages``: 3 or 4 transformer stages; T-4's decisions are inactive with 3;
- ``t1`` … ``t4``: a MobileViT-style stage each, ``.width`` (per variant),
  ``.depth`` {2, 3, 4, 5} (transformer layers), ``.heads`` ({2, 3, 4} XXS,
  {4, 5, 6} XS, {7, 8, 9} S) and ``.mlp_ratio`` {1.5, 2};
- ``pool.width``: the width of the final MBPool ({1000, 1280} XXS and XS,
  {1280, 1560} S).

Widths and the MLP ratio are tagged ``size``; depths and the stage count ``topology``;
heads ``size`` (they set the q-k-v width, see below).

**Width rule** (``space.width_rule``): the paper keeps only archs whose widths grow
across stages. ``nondecreasing`` (the default): every stage is at least as wide as
the one before it, from the stem through the last transformer stage; ``increasing``:
the same, and the transformer stages strictly widen (the paper's "gradually
increasing across transformer stages"); ``none``. ``is_valid`` applies the rule and
sampling, mutation and crossover only return valid archs. Table 1's options
overlap end to start (XXS T-1 {48, 64}, T-2 {64, 80} …), so ``nondecreasing``
removes only XXS archs with a 24-wide stem before a 16-wide MB-1; ``increasing``
keeps 5 of the 16 transformer width combinations of a 4-stage arch.

**Readings of what the paper leaves open** (ours; ``model.py`` has the layers):

- **heads and MLP ratio per stage** (default), as the paper's Table 5 reports its
  found archs (one heads / ratio per stage); ``space.per_layer=true`` gives every
  transformer layer its own (``t1.layer3.heads``, inactive beyond the depth), as
  AutoFormer does.
- **head dim fixed** (``space.head_dim``, 16, MobileViT-XXS's 64 / 4): q, k and v are
  each ``heads x head_dim`` wide, so a head count is a width and weight sharing
  keeps the first heads (AutoFormer's reading). Table 1's head counts do not divide
  most of its widths (64 / 3, 80 / 3), which rules out ``width / heads``.
- **transformer stage width** = the MobileViT block's channels and its transformer
  dim ``d`` (Table 1 gives one width per stage).
- **MBConv expansion** 1 (Table 1; ``space.mb_expansion``; Table 5 prints 2), kernel 3.
- **MBPool** = OFA / NASViT's final block: 1 x 1 conv to 6 x the last width, BN,
  SiLU, global pooling, 1 x 1 conv to ``pool.width``, SiLU, then the classifier.
- **where downsampling happens** (``space.setting``): ``paper``: 256 x 256 input,
  strides stem 2, MB-1 1, MB-2 2, MB-3 2, T-1 1, T-2 2, T-3 2, T-4 1, so the
  transformer stages run on 32², 16², 8² and 8² maps (MobileViT's 32², 16², 8², and
  an optional fourth stage that keeps the 8² map, so the head sees 8 x 8 with 3 or 4
  stages); 1,000 classes. ``cpu`` (**ours**, for 32 x 32 images, 10 classes): strides
  2, 1, 1, 2, 1, 2, 1, 1, so the MobileNetV2 stages run on 16² and 8² maps and the
  transformer stages on 8², 4², 4², 4² (sequences of 16 and 4 tokens: a forward pass
  costs 15-143 M MACs, not the 0.2-1.8 G of the paper's setting). Patches are 2 x 2
  (``space.patch``), so inputs are multiples of 64 (paper) or 16 (cpu).

**Sizes.** ``cardinality`` counts every arch (conditional decisions counted once),
``valid_cardinality`` those the width rule keeps; the paper says 10^16, cut to 10^10
by the rule. Ours (exact; heads and MLP ratio per stage or per layer; all archs, and
those each width rule keeps):

========  ============================================  ============================================
variant   per stage: all / nondecreasing / increasing   per layer: all / nondecreasing / increasing
========  ============================================  ============================================
XXS       1.39e9 / 1.04e9 / 3.29e8                      3.10e19 / 2.32e19 / 7.26e18
XS, S     1.39e9 / 1.39e9 / 4.39e8                      3.10e19 / 3.10e19 / 9.68e18
========  ============================================  ============================================

Neither reading gives 10^16, nor does any width rule over Table 1 remove a factor
10^6 (``tests/test_autovit_space.py`` pins these numbers; ``README.md`` compares).
Parameter ranges against Table 1's are in ``README.md``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.settings import Setting
from nas_lab.core.space import Decision, Space
from nas_lab.spaces.autovit import blocks, cost


@dataclass(frozen=True)
class Variant:
    """The options of one supernet's space (a row block of Table 1). ``params_m``: the paper's parameter range
    in millions (``None`` for a space of ours)."""

    name: str
    stem: tuple[int, ...]
    mb_widths: tuple[tuple[int, ...], ...]
    mb_depths: tuple[tuple[int, ...], ...]
    t_widths: tuple[tuple[int, ...], ...]
    t_depths: tuple[int, ...]
    heads: tuple[int, ...]
    mlp_ratios: tuple[float, ...]
    stages: tuple[int, ...]
    pool: tuple[int, ...]
    params_m: tuple[float, float] | None = None


_MB_DEPTHS = ((1, 2), (2, 3), (2, 3))
_T = {"t_depths": (2, 3, 4, 5), "mlp_ratios": (1.5, 2.0), "stages": (3, 4)}
VARIANTS = {
    "xxs": Variant("xxs", (16, 24), ((16, 24), (24, 32), (32, 48)), _MB_DEPTHS,
                   ((48, 64), (64, 80), (80, 96), (96, 112)), heads=(2, 3, 4), pool=(1000, 1280), params_m=(1.0, 1.8),
                   **_T),
    "xs": Variant("xs", (16, 24), ((24, 32), (32, 48), (48, 64)), _MB_DEPTHS,
                  ((64, 80), (80, 96), (96, 112), (112, 128)), heads=(4, 5, 6), pool=(1000, 1280), params_m=(1.6, 2.6),
                  **_T),
    "s": Variant("s", (16, 24), ((24, 32), (32, 48), (48, 64)), _MB_DEPTHS,
                 ((64, 96), (96, 128), (128, 160), (160, 192)), heads=(7, 8, 9), pool=(1280, 1560), params_m=(4.0, 7.2),
                 **_T),
}


@dataclass(frozen=True)
class Preset:
    """Input side, classes and per-stage strides (stem, MB-1..3, T-1..T-4) of one setting."""

    image_size: int
    num_classes: int
    strides: tuple[int, ...]


SETTINGS = {
    "paper": Preset(256, 1000, (2, 1, 2, 2, 1, 2, 2, 1)),
    "cpu": Preset(32, 10, (2, 1, 1, 2, 1, 2, 1, 1)),
}
WIDTH_RULES = ("nondecreasing", "increasing", "none")


@dataclass(frozen=True)
class Skeleton:
    """What every model of a space shares: strides (stem, MB-1..3, T-1..T-4), q-k-v width per head, MBConv
    expansion, MobileViT patch side, classes."""

    strides: tuple[int, ...]
    head_dim: int
    mb_expansion: int
    patch: int
    num_classes: int


@dataclass(frozen=True)
class Shape:
    """Explicit widths of one model: ``mb`` holds ``(width, depth)`` per MobileNetV2 stage, ``transformer``
    ``(width, ((heads, mlp hidden width), ...))`` per transformer stage, one pair per layer."""

    stem: int
    mb: tuple[tuple[int, int], ...]
    transformer: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]
    pool: int


class AutoViTSpace(Space):
    """AutoViT's hybrid MobileNetV2 / MobileViT space, one of its three supernets' (seed 001, Table 1)."""

    conditional = True
    #: MobileNetV2 and MobileViT blocks activate with SiLU only: no ReLU or GELU unit for NASWOT to code
    rectifiers = False
    #: the one-shot layer's recipe (``oneshot.training``): MobileViT trains with AdamW; each scored arch's BN is
    #: re-estimated on 2 train batches, not 4, which cuts a score from 0.86 to 0.58 s (cpu setting, 2 threads) so
    #: the coarse-to-fine schedule's 1,000 scores fit 10 min here; over 40 archs the two agree at Kendall tau 0.82
    #: (mean difference 0.8 points); the supernets train with DeiT's augmentation (L289, ``oneshot.augment``)
    supernet_recipe: ClassVar[dict] = {"optimizer": "adamw", "recalibration": 2, "augment": "deit"}

    def __init__(
        self,
        variant: Annotated[str | Variant, Setting(choices=tuple(VARIANTS), help="Table 1's supernet space (a "
                                                   "Variant object from Python)")] = "xxs",
        setting: Annotated[str, Setting(choices=tuple(SETTINGS), help="input side, strides and classes: paper "
                                        "(256 px, 1,000) or cpu (32 px, 10)")] = "paper",
        per_layer: Annotated[bool, Setting(help="heads and MLP ratio per transformer layer, not per stage")] = False,
        width_rule: Annotated[str, Setting(choices=WIDTH_RULES, help="how stage widths must grow")] = "nondecreasing",
        head_dim: Annotated[int, Setting(ge=1, le=128, help="q-k-v channels per attention head")] = 16,
        mb_expansion: Annotated[int, Setting(ge=1, le=16, help="MBConv expansion ratio")] = 1,
        patch: Annotated[int, Setting(ge=1, le=8, help="MobileViT patch side")] = 2,
        num_classes: Annotated[int | None, Setting(ge=2, le=100_000, help="classes (default: the setting's)")] = None,
    ):
        """Bounds (``settings``): ``head_dim`` 1..128 (MobileViT uses 16-64, ViT-B 64); ``mb_expansion``
        1..16 (MobileNetV2 uses 6); ``patch`` 1..8 (the paper setting's last map is 8 x 8) and it must divide the
        setting's last map, a relation checked here; ``num_classes`` 2..100,000 (ImageNet-21k has 21,841). Within
        them the largest model has 0.18 billion parameters and 11 G MACs (S, 100,000 classes), so ``check_fits``
        refuses only a ``Variant`` of one's own that is too large."""
        self.spec = variant if isinstance(variant, Variant) else VARIANTS[variant]
        base = SETTINGS[setting]
        self.num_classes = base.num_classes if num_classes is None else num_classes
        self.variant, self.setting, self.per_layer, self.width_rule = self.spec.name, setting, per_layer, width_rule
        self.head_dim, self.mb_expansion, self.patch = head_dim, mb_expansion, patch
        self.skeleton = Skeleton(base.strides, self.head_dim, self.mb_expansion, self.patch, self.num_classes)
        # inputs: the last map (``image / total stride``) must split into whole patches
        self.resolution = base.image_size
        self.min_side = self.side_step = math.prod(base.strides) * self.patch
        if self.resolution % self.side_step:
            last = self.resolution // math.prod(base.strides)
            raise UserError(f"space.patch={patch} does not divide the {last} x {last} last map of setting "
                            f"{setting!r}; valid: {', '.join(str(p) for p in range(1, last + 1) if last % p == 0)}")
        self.max_stages, self.max_depth = max(self.spec.stages), max(self.spec.t_depths)
        if self.max_stages > len(self.spec.t_widths) or len(self.spec.mb_widths) != 3:
            raise UserError(f"variant {self.variant!r} needs 3 MobileNetV2 stages and a width per transformer stage")
        self._options, self._fixed = {}, {}
        self.decisions = self._decisions()
        self.name = self.settings_name(f"autovit-{self.variant}", variant=None)
        super().__init__()
        self._col = {n: i for i, n in enumerate(self.names)}
        self.check_fits()

    # -- construction -------------------------------------------------------------------------------
    def _decisions(self) -> tuple[Decision, ...]:
        v = self.spec
        rows = [("stem.width", v.stem, "size")]
        for i, (widths, depths) in enumerate(zip(v.mb_widths, v.mb_depths)):
            rows += [(f"mb{i + 1}.width", widths, "size"), (f"mb{i + 1}.depth", depths, "topology")]
        rows.append(("stages", v.stages, "topology"))
        for j in range(self.max_stages):
            t = f"t{j + 1}."
            rows += [(t + "width", v.t_widths[j], "size"), (t + "depth", v.t_depths, "topology")]
            layers = [f"layer{k + 1}." for k in range(self.max_depth)] if self.per_layer else [""]
            for layer in layers:
                rows += [(t + layer + "heads", v.heads, "size"), (t + layer + "mlp_ratio", v.mlp_ratios, "size")]
        rows.append(("pool.width", v.pool, "size"))
        out = []
        for name, options, tag in rows:
            options = tuple(options)
            if not options:
                raise UserError(f"variant {self.variant!r} gives {name} no option")
            if len(options) == 1:  # a fixed value, not a decision
                self._fixed[name] = options[0]
            else:
                out.append(Decision(name, options, tag))
                self._options[name] = np.asarray(options)
        return tuple(out)

    # -- values of archs ------------------------------------------------------------------------------
    def _values(self, archs: np.ndarray, name: str) -> np.ndarray:
        """Option values ``(n,)`` of decision ``name`` (its fixed value when the variant fixes it)."""
        if name in self._fixed:
            return np.full(len(archs), self._fixed[name])
        return self._options[name][archs[:, self._col[name]]]

    def _layer_name(self, stage: int, layer: int, what: str) -> str:
        return f"t{stage + 1}.layer{layer + 1}.{what}" if self.per_layer else f"t{stage + 1}.{what}"

    def plan(self, archs) -> dict[str, np.ndarray]:
        """Widths of a batch of archs: ``stem``, ``pool`` ``(n,)``; ``mb_width``, ``mb_depth`` ``(n, 3)``;
        ``t_width``, ``t_depth`` ``(n, stages)`` and ``heads``, ``hidden`` (MLP width) ``(n, stages, depth)``,
        0 where a stage or layer is absent."""
        a = self.check(archs)
        n, stages_n, depth_n = len(a), self.max_stages, self.max_depth
        stages = self._values(a, "stages")
        out = {"stem": self._values(a, "stem.width").astype(np.int64),
               "pool": self._values(a, "pool.width").astype(np.int64),
               "mb_width": np.stack([self._values(a, f"mb{i}.width") for i in (1, 2, 3)], 1).astype(np.int64),
               "mb_depth": np.stack([self._values(a, f"mb{i}.depth") for i in (1, 2, 3)], 1).astype(np.int64)}
        t_width, t_depth = np.zeros((n, stages_n), np.int64), np.zeros((n, stages_n), np.int64)
        heads, hidden = np.zeros((n, stages_n, depth_n), np.int64), np.zeros((n, stages_n, depth_n), np.int64)
        for j in range(stages_n):
            on = stages > j
            width, depth = self._values(a, f"t{j + 1}.width"), self._values(a, f"t{j + 1}.depth")
            t_width[:, j], t_depth[:, j] = np.where(on, width, 0), np.where(on, depth, 0)
            for k in range(depth_n):
                layer_on = on & (depth > k)
                h = self._values(a, self._layer_name(j, k, "heads"))
                r = self._values(a, self._layer_name(j, k, "mlp_ratio"))
                heads[:, j, k] = np.where(layer_on, h, 0)
                hidden[:, j, k] = np.where(layer_on, np.rint(width * r), 0)
        return {**out, "t_width": t_width, "t_depth": t_depth, "heads": heads, "hidden": hidden}

    def shape(self, arch) -> Shape:
        """The explicit widths of one arch."""
        p = {k: v[0] for k, v in self.plan(arch).items()}
        transformer = tuple(
            (int(w), tuple((int(h), int(m)) for h, m in zip(p["heads"][j, :d], p["hidden"][j, :d])))
            for j, (w, d) in enumerate(zip(p["t_width"], p["t_depth"])) if d > 0)
        return Shape(int(p["stem"]), tuple((int(w), int(d)) for w, d in zip(p["mb_width"], p["mb_depth"])),
                     transformer, int(p["pool"]))

    # -- conditional decisions and the width rule -------------------------------------------------------
    def active(self, archs) -> np.ndarray:
        """T-4's decisions are inactive in a 3-stage arch; with ``per_layer``, a layer's beyond its stage's depth."""
        a = np.atleast_2d(archs)
        out = np.ones(a.shape, dtype=bool)
        stages = self._values(a, "stages")
        for name, col in self._col.items():
            if name.startswith("t"):
                j = int(name[1:name.index(".")]) - 1
                on = stages > j
                if ".layer" in name:
                    k = int(name.split(".")[1][len("layer"):]) - 1
                    on = on & (self._values(a, f"t{j + 1}.depth") > k)
                out[:, col] = on
        return out

    def is_valid(self, archs) -> np.ndarray:
        """The width rule (``space.width_rule``) per arch."""
        p = self.plan(archs)
        widths = np.concatenate([p["stem"][:, None], p["mb_width"], p["t_width"]], axis=1)
        return widths_ok(widths, self.width_rule)

    # -- sizes ----------------------------------------------------------------------------------------
    def _count(self, rule: str) -> int:
        """Archs whose widths ``rule`` keeps: per stage count, the width combinations the rule keeps times
        the choices that do not touch widths (exact; at most 2^8 width combinations are enumerated)."""
        v = self.spec
        per_layer = len(v.heads) * len(v.mlp_ratios)
        stage = sum(per_layer**d for d in v.t_depths) if self.per_layer else len(v.t_depths) * per_layer
        rest = math.prod(len(d) for d in v.mb_depths) * len(v.pool)
        total = 0
        for s in v.stages:
            combos = np.array(list(itertools.product(v.stem, *v.mb_widths, *v.t_widths[:s])), dtype=np.int64)
            padded = np.pad(combos, ((0, 0), (0, self.max_stages - s)))
            total += int(widths_ok(padded, rule).sum()) * rest * stage**s
        return total

    @property
    def cardinality(self) -> int:
        """Every arch, including those the width rule rejects (exact, closed form)."""
        return self._count("none")

    @property
    def valid_cardinality(self) -> int:
        """Archs the width rule keeps (exact, closed form)."""
        return self._count(self.width_rule)

    def params(self, archs, num_classes: int | None = None) -> np.ndarray:
        """Parameter count of each arch, ``int64 (n,)``, equal to the built model's (closed form, no torch)."""
        return cost.params(self.plan(archs), self._skeleton(num_classes))

    def macs(self, archs, num_classes: int | None = None, side: int | None = None) -> np.ndarray:
        """Multiply-accumulates of one forward pass of one ``side`` x ``side`` image (default: the setting's),
        ``int64 (n,)``; torch's FLOP counter counts twice this (``cost.py``)."""
        side = self.resolution if side is None else self.check_side(side, "side")
        return cost.macs(self.plan(archs), self._skeleton(num_classes), side)

    def flops(self, archs, num_classes: int | None = None, side: int | None = None) -> np.ndarray:
        """``2 x macs``: the total of torch's ``FlopCounterMode`` for one image."""
        return 2 * self.macs(archs, num_classes, side)

    def highest(self, metric: str) -> float | None:
        """An upper bound of ``params`` and ``macs``: those of the arch with every decision at its largest option
        (both grow with every option; the width rule may reject that arch, so it bounds rather than equals)."""
        if metric not in ("params", "macs"):
            return None
        return float(getattr(self, metric)((self.sizes - 1)[None])[0])

    def _skeleton(self, num_classes: int | None) -> Skeleton:
        if num_classes is None or num_classes == self.num_classes:
            return self.skeleton
        return Skeleton(self.skeleton.strides, self.head_dim, self.mb_expansion, self.patch, int(num_classes))

    # -- models -------------------------------------------------------------------------------------------
    def build(self, arch, num_classes: int | None = None, **task):
        """The model of one arch (``model.AutoViT``), ``(B, 3, S, S)`` -> ``(B, num_classes)`` logits (default: the
        space's), for any side ``S`` the space takes (fully convolutional); other task keys do not change it."""
        from nas_lab.spaces.autovit.model import AutoViT

        return AutoViT(self.shape(arch), self._skeleton(num_classes))

    def supernet(self, num_classes: int | None = None, **task):
        """The weight-sharing supernet (``supernet.AutoViTSupernet``) whose slices are the ``build`` models."""
        from nas_lab.spaces.autovit.supernet import AutoViTSupernet

        return AutoViTSupernet(self, num_classes or self.num_classes)

    # -- the block contract of a latency look-up table (objectives/latency/contract.py) --------------
    def latency_blocks(self, side: int) -> list[tuple[str, tuple[int, ...]]]:
        """Every distinct block (stem, MBConvs, MobileViT enter / layer / leave, head) with its input shape."""
        return blocks.blocks(self, side)

    def latency_slots(self, archs) -> np.ndarray:
        """``(n, 42)`` positions in ``latency_blocks`` of each arch's blocks in the order the model runs them,
        -1 where the arch skips one."""
        return blocks.slots(self, archs)

    def latency_module(self, name: str):
        """The torch module of one block of ``latency_blocks`` (``parts.block``)."""
        from nas_lab.spaces.autovit.parts import block

        return block(next(spec for n, spec, _ in blocks.catalogue(self) if n == name), self.skeleton)


def widths_ok(widths: np.ndarray, rule: str) -> np.ndarray:
    """``(n,)`` bool: whether each row of stage widths (stem, MB-1..3, T-1..; 0 for an absent transformer stage)
    keeps ``rule``."""
    ok = np.ones(len(widths), dtype=bool)
    if rule == "none":
        return ok
    prev, cur = widths[:, :-1], widths[:, 1:]
    on = cur > 0
    ok &= (~on | (cur >= prev)).all(axis=1)
    if rule == "increasing":  # pairs from T-1 -> T-2 on (column 4 of ``cur``)
        ok &= (~on[:, 4:] | (cur[:, 4:] > prev[:, 4:])).all(axis=1)
    return ok
