"""The tinyML hybrid CNN-ViT space with Pool-ViT blocks (seed 003, arXiv 2511.02992), under 100,000 parameters.

Skeleton (stated by the paper): a CNN stage, a pooling block, a hybrid ViT
stage and a classification block, for CIFAR-10 (32 x 32 x 3, 10 classes), with
a model-size limit of 100,000 parameters, which is this space's default
constraint (``default_constraints``: a run gets ``'constraint=params<=100000'``
unless it bounds ``params`` itself; ``'constraint=params<=inf'`` lifts it).

Decisions (option lists are **ours**: the paper's are not public; they are
sized so that the space straddles the 100 k limit):

- stem: ``stem.kernel`` {3, 5, 7}, ``stem.stride`` {1, 2} (topology),
  ``stem.channels`` {8, 16, 24, 32} (size);
- CNN stage, ``cnn_blocks`` positions (default 2): ``cnnN`` the block
  {residual, bottleneck, mbconv}, plus identity from the second position on
  (topology); ``cnnN.kernel`` {3, 5, 7}, ``cnnN.stride`` {1, 2},
  ``cnnN.groups`` {1, 2, 4} (residual and bottleneck: the k x k convs are
  grouped; mbconv's is depthwise) (topology); ``cnnN.channels`` {8, 16, 24, 32,
  48} and ``cnnN.ratio`` {1, 2, 4} (bottleneck: width ``channels / ratio``;
  mbconv: ``channels * ratio``) (size);
- pooling block: ``pool`` {max, avg, combined}, ``pool.kernel`` {3, 5}, stride 2 (topology);
- ViT stage, ``vit_blocks`` positions (default 3): ``vitN`` {mhsa, poolvit},
  plus identity from the second position on, so every arch has attention
  (topology). An MHSA pattern is a CNN block (``vitN.block``, ``.kernel``,
  ``.stride``, ``.groups``, ``.ratio`` as above) then attention; a Pool-ViT
  pattern is a stride-2 pooling (``vitN.pool`` {max, avg, combined},
  ``vitN.kernel`` its window) then attention on 4x fewer tokens. Both have
  ``vitN.channels`` {16, 24, 32, 48, 64} and ``vitN.head_dim`` {8, 16} (size)
  and ``vitN.heads`` {1, 2, 4} (topology: how the attention splits).

Decisions that do not apply are inactive (``conditional``): an identity
position's, groups of an mbconv, ratio of a residual block, CNN settings of a
Pool-ViT pattern, pooling type of an MHSA one.

Validity (``is_valid``): the last feature map is at least 2 x 2 at
``image_size`` (so attention mixes tokens), and a bottleneck's width
``channels / ratio`` is a multiple of its groups.

Readings of what the paper leaves open (ours, see also ``model.py``):

- **block layout**: MLPerf Tiny's ResNet-8 layout for the residual block (convs
  with bias, BatchNorm, 1x1 shortcut conv without BatchNorm where shapes
  change), so that ResNet-8 (``model.resnet8``) is built by the same blocks;
  bottleneck and inverted bottleneck follow ResNet and MobileNetV2 (with ReLU,
  not ReLU6); the inverted bottleneck widens its *output* width by ``ratio``.
- **attention**: ReLU linear attention only (the seed's "ReLU-based linear
  MHSA"); every pixel a token, no position embedding (the CNN stage serves as
  one); q, k, v as 1x1 convs; no MLP ratio: one 1x1 conv to the pattern's width.
- **Pool-ViT**: the whole map is pooled with stride 2 before attention, as the
  notes read the authors' code; its kernel is the pattern's ``kernel``.
- **depth**: positions that may be identity instead of the code's 1-5 blocks of
  1-3 patterns; no residual around a group of patterns (each pattern has its own).
- **weight sharing** (``supernet.py``): each block kind and pattern kind of a
  position has its own weights (SPOS choice blocks); widths, kernels, groups and
  heads are slices of them.

Closed-form ``params`` and ``macs`` (``cost.py``) equal the built model's
parameter count and half of torch's FLOP count at ``image_size``.
"""

from __future__ import annotations

import functools
from typing import Annotated

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.settings import Setting
from nas_lab.core.space import Decision, Space
from nas_lab.spaces.poolvit import cost
from nas_lab.spaces.poolvit.cost import (
    BLOCKS,
    CNN_CHANNELS,
    GROUPS,
    HEAD_DIMS,
    HEADS,
    KERNELS,
    POOL_KERNELS,
    POOLS,
    RATIOS,
    STEM_CHANNELS,
    STRIDES,
    VIT_CHANNELS,
)

IDENTITY = "identity"
PATTERNS = ("mhsa", "poolvit")
#: more than any side (``_reduce`` codes a (width, side) pair as one integer)
SIDES = 1024
#: the paper's model-size limit
MAX_PARAMS = 100_000
#: the CNN block settings of a position, in ``cost.cnn_block``'s argument order after the input width
CNN_FIELDS = ("channels", "kernel", "stride", "groups", "ratio")


class PoolViTSpace(Space):
    """Hybrid CNN-ViT tinyML space: CNN stage, pooling block, MHSA / Pool-ViT stage, classifier (seed 003)."""

    conditional = True
    default_constraints = (f"params<={MAX_PARAMS}",)
    #: zero-cost proxies' input batch (``objectives.zero_cost``): 8, at which the float64 Entropic Score costs a
    #: tenth of batch 64's and ranks archs the same (Kendall tau 0.98 over 16)
    zero_cost_batch = 8
    #: training augmentation (``oneshot.augment``): the paper states none, so CIFAR's usual crop and flip; the
    #: gradient norm clipped at 5, without which SGD at 0.1 drove the supernet's weights to inf within 3 epochs on
    #: digits (as it does some of these hybrids trained alone, ``benchmarks/bench_poolvit.py``)
    supernet_recipe = {"augment": "cifar", "grad_clip": 5.0}

    def __init__(
        self,
        cnn_blocks: Annotated[int, Setting(ge=1, le=4, help="positions of the CNN stage")] = 2,
        vit_blocks: Annotated[int, Setting(ge=1, le=4, help="positions of the ViT stage")] = 3,
        image_size: Annotated[int, Setting(ge=8, le=512, help="input side (px) validity and MACs are stated at")] = 32,
        num_classes: Annotated[int, Setting(ge=2, le=100_000, help="classes of build and supernet")] = 10,
    ):
        """The first position of each stage is never an identity. Bounds: 1..4 positions per stage (the paper's
        code stacks up to 5 blocks of up to 3 patterns, past any 100 k-parameter model); ``image_size`` 8..512
        (tinyML inputs are 32-96 px, and ``_reduce`` codes sides below ``SIDES``); ``num_classes`` 2..100,000
        (ImageNet-21k has 21,841). Within them the largest model has 9.0 million parameters (6.4 million of them
        in a 100,000-class classifier), so no combination is too large to build."""
        self.cnn_blocks, self.vit_blocks = cnn_blocks, vit_blocks
        self.image_size, self.num_classes = image_size, num_classes
        self.decisions = self._decisions()
        self.name = self.settings_name("poolvit")
        super().__init__()
        self.col = {n: i for i, n in enumerate(self.names)}
        # the one input side validity and MACs are stated at (what default_image_size and check_side see)
        self.resolution = self.min_side = self.max_side = self.side_step = self.image_size
        self._params_range = None

    def _decisions(self) -> tuple[Decision, ...]:
        out = [Decision("stem.kernel", KERNELS, "topology"), Decision("stem.stride", STRIDES, "topology"),
               Decision("stem.channels", STEM_CHANNELS, "size")]
        for i in range(1, self.cnn_blocks + 1):
            out += [Decision(f"cnn{i}", BLOCKS if i == 1 else (IDENTITY, *BLOCKS), "topology"),
                    *_cnn_decisions(f"cnn{i}.", CNN_CHANNELS)]
        out += [Decision("pool", POOLS, "topology"), Decision("pool.kernel", POOL_KERNELS, "topology")]
        for i in range(1, self.vit_blocks + 1):
            p = f"vit{i}."
            out += [Decision(f"vit{i}", PATTERNS if i == 1 else (IDENTITY, *PATTERNS), "topology"),
                    Decision(p + "block", BLOCKS, "topology"), *_cnn_decisions(p, VIT_CHANNELS),
                    Decision(p + "pool", POOLS, "topology"), Decision(p + "heads", HEADS, "topology"),
                    Decision(p + "head_dim", HEAD_DIMS, "size")]
        return tuple(out)

    def check_side(self, side: int | None, name: str = "resolution") -> int | None:
        """``side`` if it is ``image_size``, the side validity and MACs are stated at, else ``UserError``."""
        if side is None or side == self.image_size:
            return side
        raise UserError(f"{name} must be {self.image_size} px for space {self.name!r}, the side its validity and "
                        f"MACs are stated at, got {side}; set {name}={self.image_size}, or space.image_size={side}")

    # -- decoding ---------------------------------------------------------------------------
    def _value(self, archs: np.ndarray, name: str) -> np.ndarray:
        """Option values of decision ``name`` for a batch."""
        return np.asarray(self.decisions[self.col[name]].options)[archs[:, self.col[name]]]

    def _kind(self, archs: np.ndarray, name: str) -> np.ndarray:
        """Kind code of a position (0 identity, then the options in order; a first position has no identity)."""
        options = self.decisions[self.col[name]].options
        return archs[:, self.col[name]] + (0 if options[0] == IDENTITY else 1)

    def layout(self, archs) -> dict:
        """The batch decoded: ``stem`` (channels, kernel, stride), per CNN position ``(kind, channels, kernel, stride,
        groups, ratio)``, ``pool`` (kind, kernel), per ViT position ``(kind, block, channels, kernel, stride,
        groups, ratio, pool, heads, head_dim)``: ``(n,)`` arrays, kinds as ``cost`` codes, block kinds 1..3."""
        a = self.check(archs)
        v = functools.partial(self._value, a)
        cnn = [(self._kind(a, f"cnn{i}"), *(v(f"cnn{i}.{f}") for f in CNN_FIELDS))
               for i in range(1, self.cnn_blocks + 1)]
        vit = [(self._kind(a, f"vit{i}"), a[:, self.col[f"vit{i}.block"]] + 1,
                *(v(f"vit{i}.{f}") for f in CNN_FIELDS), a[:, self.col[f"vit{i}.pool"]], v(f"vit{i}.heads"),
                v(f"vit{i}.head_dim")) for i in range(1, self.vit_blocks + 1)]
        return {"stem": (v("stem.channels"), v("stem.kernel"), v("stem.stride")), "cnn": cnn,
                "pool": (a[:, self.col["pool"]], v("pool.kernel")), "vit": vit}

    def active(self, archs) -> np.ndarray:
        a = np.atleast_2d(archs)
        out = np.ones(a.shape, dtype=bool)
        for i in range(1, self.cnn_blocks + 1):
            kind = self._kind(a, f"cnn{i}")
            p = f"cnn{i}."
            for f in CNN_FIELDS:
                out[:, self.col[p + f]] = kind != cost.IDENTITY
            out[:, self.col[p + "groups"]] = (kind == cost.RESIDUAL) | (kind == cost.BOTTLENECK)
            out[:, self.col[p + "ratio"]] = (kind == cost.BOTTLENECK) | (kind == cost.MBCONV)
        for i in range(1, self.vit_blocks + 1):
            kind = self._kind(a, f"vit{i}")
            block = a[:, self.col[f"vit{i}.block"]] + 1
            p = f"vit{i}."
            mhsa = kind == cost.MHSA
            for f in ("channels", "kernel", "heads", "head_dim"):
                out[:, self.col[p + f]] = kind != cost.IDENTITY
            for f in ("block", "stride"):
                out[:, self.col[p + f]] = mhsa
            out[:, self.col[p + "groups"]] = mhsa & ((block == cost.RESIDUAL) | (block == cost.BOTTLENECK))
            out[:, self.col[p + "ratio"]] = mhsa & ((block == cost.BOTTLENECK) | (block == cost.MBCONV))
            out[:, self.col[p + "pool"]] = kind == cost.POOLVIT
        return out

    @property
    def cardinality(self) -> int:
        """Exact count of distinct archs (option combinations equal on active decisions count once; archs that
        ``is_valid`` rejects included): a product over stem, positions and pooling block."""
        per_block = {"residual": len(GROUPS), "bottleneck": len(GROUPS) * len(RATIOS), "mbconv": len(RATIOS)}
        cnn = len(KERNELS) * len(STRIDES) * len(CNN_CHANNELS) * sum(per_block.values())
        mhsa = len(KERNELS) * len(STRIDES) * sum(per_block.values())
        vit = len(VIT_CHANNELS) * len(HEADS) * len(HEAD_DIMS) * (mhsa + len(KERNELS) * len(POOLS))
        stem = len(KERNELS) * len(STRIDES) * len(STEM_CHANNELS)
        return (stem * len(POOLS) * len(POOL_KERNELS) * cnn * (1 + cnn) ** (self.cnn_blocks - 1)
                * vit * (1 + vit) ** (self.vit_blocks - 1))

    # -- closed-form costs and validity ---------------------------------------------------------
    def _costs(self, archs, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """``(params, macs, last side, divisible)`` of a batch at ``image_size``."""
        lay = self.layout(archs)
        width, kernel, stride = lay["stem"]
        side = cost.out_side(self.image_size, stride)
        params, per_pixel = cost.stem(width, kernel)
        macs = side**2 * per_pixel
        ok = np.ones(len(width), dtype=bool)
        for kind, channels, kernel, stride, groups, ratio in lay["cnn"]:
            p, m, side = cost.cnn_block(kind, width, channels, kernel, stride, groups, ratio, side)
            params, macs = params + p, macs + m
            ok &= _groups_fit(kind, channels, ratio, groups)
            width = np.where(kind == cost.IDENTITY, width, channels)
        side = cost.out_side(side, 2)  # the pooling block
        for kind, block, channels, kernel, stride, groups, ratio, _, heads, head_dim in lay["vit"]:
            p, m, side = cost.vit_pattern(kind, width, channels, block, kernel, stride, groups, ratio, heads,
                                          head_dim, side)
            params, macs = params + p, macs + m
            ok &= _groups_fit(np.where(kind == cost.MHSA, block, cost.IDENTITY), channels, ratio, groups)
            width = np.where(kind == cost.IDENTITY, width, channels)
        p, m = cost.head(width, num_classes or self.num_classes)
        return params + p, macs + m, side, ok

    def params(self, archs, num_classes: int | None = None) -> np.ndarray:
        """Parameter count of each arch, ``int64 (n,)``, equal to the built model's (closed form, no torch)."""
        return self._costs(archs, num_classes)[0]

    def macs(self, archs, num_classes: int | None = None) -> np.ndarray:
        """Multiply-accumulates of one forward pass of one ``image_size`` image, ``int64 (n,)`` (see ``cost.py``)."""
        return self._costs(archs, num_classes)[1]

    def flops(self, archs, num_classes: int | None = None) -> np.ndarray:
        """``2 x macs``: the total of torch's ``FlopCounterMode`` for one image."""
        return 2 * self.macs(archs, num_classes)

    def is_valid(self, archs) -> np.ndarray:
        """The last feature map is at least 2 x 2 at ``image_size``, and every bottleneck's width divides by its
        groups."""
        _, _, side, ok = self._costs(archs)
        return ok & (side >= 2)

    def lowest(self, metric: str) -> float | None:
        """The smallest ``params`` of a valid arch (exact), for refusing a cap no arch meets; None for other metrics."""
        return float(self.params_range()[0]) if metric == "params" else None

    def highest(self, metric: str) -> float | None:
        """The largest ``params`` of a valid arch (exact); None for other metrics."""
        return float(self.params_range()[1]) if metric == "params" else None

    def params_range(self) -> tuple[int, int]:
        """Exact ``(smallest, largest)`` parameter count of valid archs, by dynamic programming over positions: a
        position's parameters depend only on its own decisions and its input width, and validity on the side."""
        if self._params_range is None:
            self._params_range = self._extreme_params()
        return self._params_range

    def _extreme_params(self) -> tuple[int, int]:
        stem = self.layout(_grid(self, "stem"))["stem"]
        width, kernel, stride = stem
        params = cost.stem(width, kernel)[0]
        states = _reduce(width, cost.out_side(self.image_size, stride), params, params)
        for prefix in [f"cnn{i}" for i in range(1, self.cnn_blocks + 1)] + \
                      [f"vit{i}" for i in range(1, self.vit_blocks + 1)]:
            if prefix == "vit1":  # the pooling block halves the side
                states = {(w, int(cost.out_side(s, 2))): v for (w, s), v in states.items()}
            states = self._step(states, prefix)
        heads = {w: int(cost.head(w, self.num_classes)[0]) for w, _ in states}
        ends = [(lo + heads[w], hi + heads[w]) for (w, s), (lo, hi) in states.items() if s >= 2]
        return min(lo for lo, _ in ends), max(hi for _, hi in ends)

    def _step(self, states: dict, prefix: str) -> dict:
        """``{(width, side): (min, max) params so far}`` after position ``prefix``: every distinct setting of it
        (its representatives), from every state."""
        every = _grid(self, prefix)
        settings = every[np.all(self.representative(every) == every, axis=1)]
        stage, i = prefix[:3], int(prefix[3:]) - 1
        lay = self.layout(settings)[stage][i]
        results = []
        for (width, side), (lo, hi) in states.items():
            if stage == "cnn":
                kind, channels, kernel, stride, groups, ratio = lay
                p, _, after = cost.cnn_block(kind, width, channels, kernel, stride, groups, ratio, side)
                ok = _groups_fit(kind, channels, ratio, groups)
            else:
                kind, block, channels, kernel, stride, groups, ratio, _, heads, head_dim = lay
                p, _, after = cost.vit_pattern(kind, width, channels, block, kernel, stride, groups, ratio, heads,
                                               head_dim, side)
                ok = _groups_fit(np.where(kind == cost.MHSA, block, cost.IDENTITY), channels, ratio, groups)
            new_width = np.where(kind == cost.IDENTITY, width, channels)
            results.append((new_width[ok], after[ok], lo + p[ok], hi + p[ok]))
        return _reduce(*(np.concatenate(parts) for parts in zip(*results)))

    # -- models -----------------------------------------------------------------------------
    def path(self, arch) -> dict:
        """One arch's ``layout`` as Python ints: ``stem``, ``pool`` and one tuple per CNN and ViT position."""
        lay = self.layout(self.check(arch)[:1])
        ints = lambda t: tuple(int(x[0]) for x in t)
        return {"stem": ints(lay["stem"]), "cnn": [ints(p) for p in lay["cnn"]], "pool": ints(lay["pool"]),
                "vit": [ints(p) for p in lay["vit"]]}

    def shape(self, arch, num_classes: int | None = None):
        """The explicit ``model.Shape`` of one arch (identity positions left out)."""
        from nas_lab.spaces.poolvit.model import Cnn, Shape, Vit

        path = self.path(arch)
        cnn = tuple(Cnn(BLOCKS[kind - 1], *rest) for kind, *rest in path["cnn"] if kind)
        vit = []
        for kind, block, channels, kernel, stride, groups, ratio, pool, heads, head_dim in path["vit"]:
            if kind == cost.MHSA:
                vit.append(Vit(channels, heads, head_dim, cnn=Cnn(BLOCKS[block - 1], channels, kernel, stride, groups,
                                                                  ratio)))
            elif kind == cost.POOLVIT:
                vit.append(Vit(channels, heads, head_dim, pool=(POOLS[pool], kernel)))
        pool_kind, pool_kernel = path["pool"]
        return Shape(path["stem"], cnn, (POOLS[pool_kind], pool_kernel), tuple(vit), num_classes or self.num_classes)

    def build(self, arch, num_classes: int | None = None, **task):
        """The plain model of one arch, ``(B, 3, H, W)`` -> ``(B, num_classes)`` (default: the space's); fully
        convolutional, so other task keys do not change it."""
        from nas_lab.spaces.poolvit.model import PoolViTNet

        return PoolViTNet(self.shape(arch, num_classes))

    def supernet(self, num_classes: int | None = None, **task):
        """The weight-sharing supernet (``supernet.PoolViTSupernet``) whose slices are the ``build`` models."""
        from nas_lab.spaces.poolvit.supernet import PoolViTSupernet

        return PoolViTSupernet(self, num_classes or self.num_classes)


def _cnn_decisions(prefix: str, channels: tuple[int, ...]) -> list[Decision]:
    return [Decision(prefix + "channels", channels, "size"), Decision(prefix + "kernel", KERNELS, "topology"),
            Decision(prefix + "stride", STRIDES, "topology"), Decision(prefix + "groups", GROUPS, "topology"),
            Decision(prefix + "ratio", RATIOS, "size")]


def _groups_fit(block, channels, ratio, groups) -> np.ndarray:
    """Whether a CNN block of each ``block`` code (0 where there is none) has a bottleneck width its groups divide."""
    return (np.asarray(block) != cost.BOTTLENECK) | ((channels // ratio) % groups == 0)


def _grid(space: PoolViTSpace, prefix: str) -> np.ndarray:
    """Archs (option indices) taking every combination of the decisions of ``prefix`` (``stem``, ``cnn2``, ...),
    every other decision at option 0."""
    cols = [i for i, n in enumerate(space.names) if n == prefix or n.startswith(prefix + ".")]
    combos = np.indices(space.sizes[cols]).reshape(len(cols), -1)
    out = np.zeros((combos.shape[1], space.dim), dtype=np.int64)
    out[:, cols] = combos.T
    return out


def _reduce(width, side, low, high) -> dict:
    """``{(width, side): (smallest low, largest high)}`` over the given arrays."""
    keys, inverse = np.unique(np.asarray(width) * SIDES + side, return_inverse=True)
    lows, highs = np.full(len(keys), np.iinfo(np.int64).max), np.full(len(keys), np.iinfo(np.int64).min)
    np.minimum.at(lows, inverse, low)
    np.maximum.at(highs, inverse, high)
    return {(int(k // SIDES), int(k % SIDES)): (int(lo), int(hi)) for k, lo, hi in zip(keys, lows, highs)}
