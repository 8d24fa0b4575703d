"""The ViTAS space (seed 004, Table 1): 3 · 10 · 401^16 ≈ 1.34 × 10^43 plain vision transformers.

Decisions (``setting=paper``, the paper's Table 1):

- ``patch``: patch size {14, 16, 32} of the linear projection (tag ``topology``);
- ``embed.ratio``: embedding width ``i/10`` of 384, ``i = 1..10`` (``size``);
- 16 positions ``block1`` … ``block16``, each ``identity`` or ``transformer``
  (``topology``: it sets the depth); a transformer position has
  ``blockN.heads`` in {3, 6, 12, 16} (``topology``: it regroups the attention
  without changing any parameter count or MAC), ``blockN.qkv.ratio`` (the fused
  q-k-v width ``i/10`` of 1440, so q, k and v each ``48 i``, which every head
  count divides) and ``blockN.mlp.ratio`` (MLP hidden width ``i/10`` of 1440)
  (both ``size``). An identity position's three decisions are inactive, so a
  position has 1 + 4 · 10 · 10 = 401 distinct choices.

Widths are ``round(max · i / 10)``: the ratio-6 embedding of 384 is 230, as in
the paper's Table 8. Input 224 × 224, 1,000 classes. Other settings
(``space.setting=``):

- ``large``: Table 9's maxima 768 / 2880 / 2880, the rest as ``paper``;
- ``cpu`` (**ours**, not the paper's): for 32 × 32 images and 10 classes, patch
  sizes {4, 8, 16} (8 × 8, 4 × 4 and 2 × 2 patch grids: fewer tokens than the
  paper's 16 × 16, 14 × 14 and 7 × 7, so a subnet's forward stays in
  milliseconds), every width maximum divided by 6 (embedding 64, q-k-v 240, MLP
  240: the paper's width proportions), head counts {1, 2, 4, 8} so that every
  per-q width ``8 i`` splits evenly, and 8 positions instead of 16
  (``space.positions=16`` gives the paper's depth).

``space.block_level=true`` is the paper's block-level space (section 5.3): one
block searched and stacked 12 times (6 for ``cpu``) at a fixed patch size (16;
4 for ``cpu``), i.e. ``embed.ratio``, ``heads``, ``qkv.ratio``, ``mlp.ratio``:
10 · 4 · 10 · 10 = 4,000 archs.

Readings of what the paper leaves open (ours):

- **position embedding and patch projection across patch sizes**: each patch
  size has its own projection conv and its own position embedding (sized to its
  patch grid at the input side), in every model and in the super-transformer,
  where blocks are shared across patch sizes and these two are not. A shared
  table would have to be resampled between 16 × 16, 14 × 14 and 7 × 7 grids;
  the paper ablates privatising only the class token (``private_class_token``).
- **identity probability**: one probability for all positions. Uniform sampling
  treats positions alike, and the paper's equation ``B = E_{α~S(p)}[B(α)]`` fixes
  one scalar, where one per position would be under-determined. The expected
  MACs are linear in it (decisions are independent), so it is solved exactly in
  closed form rather than by a search (``budget_sampler``).

The super-transformer's sharing switches (``private_class_token``,
``private_qk``, ``private_v``) are space parameters too, so a study grid can
vary them like any other space parameter; see ``supernet.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.settings import Setting, declared
from nas_lab.core.space import MAX_MACS, Decision, Space
from nas_lab.spaces.vitas import cost
from nas_lab.spaces.vitas.cost import ViTShape

#: ratio numerators: width ``i / 10`` of a maximum
RATIOS = tuple(range(1, 11))
IDENTITY, TRANSFORMER = "identity", "transformer"


@dataclass(frozen=True)
class Preset:
    """The fixed values of one named setting of the space."""

    patch_sizes: tuple[int, ...]
    heads: tuple[int, ...]
    max_embed: int
    max_qkv: int  # q, k and v together
    max_mlp: int
    image_size: int
    num_classes: int
    positions: int  # arch level: positions that are identity or a transformer block
    block_patch: int  # block level: the fixed patch size
    block_depth: int  # block level: how many times the searched block is stacked


SETTINGS = {
    "paper": Preset((14, 16, 32), (3, 6, 12, 16), 384, 1440, 1440, 224, 1000, 16, 16, 12),
    "large": Preset((14, 16, 32), (3, 6, 12, 16), 768, 2880, 2880, 224, 1000, 16, 16, 12),
    "cpu": Preset((4, 8, 16), (1, 2, 4, 8), 64, 240, 240, 32, 10, 8, 4, 6),
}


def ratio_width(maximum: int, ratio) -> np.ndarray:
    """``round(maximum * ratio / 10)`` (halves up), vectorised; 0 for ratio 0."""
    return (np.asarray(maximum, dtype=np.int64) * np.asarray(ratio, dtype=np.int64) * 2 + 10) // 20


class ViTASSpace(Space):
    """ViTAS: patch size, embedding width, and 16 positions of identity or a searched transformer block (seed 004)."""

    conditional = True
    #: the one-shot layer's training recipe for this supernet (``oneshot.training``): transformers want AdamW and
    #: more epochs than a CNN to learn anything on a small dataset; the paper's weak augmentation for the
    #: super-transformer (CutMix and erasing, Table 4) and DeiT's to retrain a found arch, without CutMix under
    #: 1.3 GFLOPs (the paper's FLOPs are multiply-accumulates; ``oneshot.augment``)
    supernet_recipe: ClassVar[dict] = {"optimizer": "adamw", "epochs": 60, "augment": "vitas",
                                       "retrain": {"augment": "deit", "augment_below_macs": (1.3e9, "deit-nocutmix")}}

    def __init__(
        self,
        setting: Annotated[str, Setting(choices=tuple(SETTINGS), help="paper | large (Tables 1 and 9) | cpu (ours, "
                                        "32 px)")] = "paper",
        block_level: Annotated[bool, Setting(help="search one block, stacked positions times, at one patch "
                                             "size")] = False,
        positions: Annotated[int | None, Setting(ge=1, le=64, help="identity-or-block positions (default 16; "
                                                 "cpu 8; block level 12, cpu 6)")] = None,
        image_size: Annotated[int | None, Setting(ge=8, le=1024, help="input side (default: the setting's)")] = None,
        num_classes: Annotated[int | None, Setting(ge=2, le=100_000, help="classes (default: the setting's)")] = None,
        patch_sizes: Annotated[tuple[int, ...] | None, Setting(ge=1, le=1024, help="patch size options (default: "
                                                               "the setting's)")] = None,
        heads: Annotated[tuple[int, ...] | None, Setting(ge=1, le=128, help="head count options (default: the "
                                                         "setting's)")] = None,
        budget_macs: Annotated[float | None, Setting(gt=0, le=MAX_MACS, help="expected MACs of a sampled arch "
                                                     "(default: identities drawn with probability 1/2)")] = None,
        private_class_token: Annotated[bool, Setting(help="the super-transformer's class token per patch "
                                                       "size")] = True,
        private_qk: Annotated[bool | None, Setting(help="q/k per head count (default: when heads are "
                                                     "searched)")] = None,
        private_v: Annotated[bool, Setting(help="v per head count")] = False,
    ):
        """``block_level``: search one block stacked ``positions`` times at a fixed patch size; ``budget_macs``:
        ``sample`` draws identities with the probability that makes the expected MACs of a sampled arch equal
        this; ``private_class_token``, ``private_qk``, ``private_v``: the super-transformer's sharing switches.

        Bounds: ``positions`` 1..64 (the paper's deepest has 16); ``image_size`` 8..1,024; ``num_classes``
        2..100,000 (ImageNet-21k has 21,841); ``patch_sizes`` and ``heads`` at least 1, and the relations the
        declaration cannot say are checked here: every patch size divides the input side, every head count the
        q widths, a block-level space has one patch size, the private switches need searched heads. Past those,
        ``check_fits`` refuses a space whose largest model has over 10^12 MACs per image (a 1,024 px input in
        4 px patches: 65,536 tokens)."""
        base = SETTINGS[setting]
        self.setting, self.block_level = setting, block_level
        self.image_size = base.image_size if image_size is None else image_size
        self.num_classes = base.num_classes if num_classes is None else num_classes
        self.positions = (base.block_depth if block_level else base.positions) if positions is None else positions
        self.patch_sizes = tuple(sorted(set(patch_sizes))) if patch_sizes else base.patch_sizes
        if block_level and not patch_sizes:
            self.patch_sizes = (base.block_patch,)
        if block_level and len(self.patch_sizes) > 1:
            raise UserError(f"the block-level space fixes one patch size, so space.patch_sizes must name one, "
                            f"got {','.join(map(str, self.patch_sizes))}")
        bad = [p for p in self.patch_sizes if self.image_size % p]
        if bad:
            valid = [p for p in range(1, self.image_size + 1) if self.image_size % p == 0]
            raise UserError(f"patch size {bad[0]} does not divide the input side {self.image_size} "
                            f"(space.image_size); valid patch sizes: {', '.join(map(str, valid))}")
        self.heads = tuple(sorted(set(heads))) if heads else base.heads
        self.max_embed, self.max_qkv, self.max_mlp = base.max_embed, base.max_qkv, base.max_mlp
        self.embed_widths = tuple(int(w) for w in ratio_width(self.max_embed, RATIOS))
        self.q_widths = tuple(int(w) for w in ratio_width(self.max_qkv // 3, RATIOS))  # q (= k = v) width
        self.mlp_widths = tuple(int(w) for w in ratio_width(self.max_mlp, RATIOS))
        for h in self.heads:
            odd = [w for w in self.q_widths if w % h]
            if odd:
                raise UserError(f"{h} heads cannot split the q width {odd[0]} of setting {setting!r} evenly; "
                                f"valid head counts divide {math.gcd(*self.q_widths)}")
        searched_heads = len(self.heads) > 1
        for name, value in (("private_qk", private_qk), ("private_v", private_v)):
            if value and not searched_heads:
                raise UserError(f"space.{name}=true keeps q/k or v per head count, but this space has one head "
                                f"count ({self.heads[0]}); give space.heads at least two or set space.{name}=false")
        self.private_class_token = private_class_token
        self.private_qk = searched_heads if private_qk is None else private_qk
        self.private_v = private_v

        self.decisions = self._decisions()
        self.name = self.settings_name("vitas", private_qk=None if private_qk == searched_heads else private_qk)
        self.conditional = not self.block_level
        super().__init__()
        self._columns()
        # what default_image_size, Task.for_space and check_side see: the one input side the models are sized for
        self.resolution = self.min_side = self.max_side = self.side_step = self.image_size
        self.budget_macs = budget_macs
        self.check_fits()
        self._sampler = None if budget_macs is None else self.budget_sampler(self.budget_macs)

    # -- construction ----------------------------------------------------------------
    def _decisions(self) -> tuple[Decision, ...]:
        out = []
        if len(self.patch_sizes) > 1:
            out.append(Decision("patch", self.patch_sizes, "topology"))
        out.append(Decision("embed.ratio", RATIOS, "size"))
        if self.block_level:
            prefixes = [""]
        else:
            prefixes = [f"block{i + 1}." for i in range(self.positions)]
        for prefix in prefixes:
            if prefix:
                out.append(Decision(prefix[:-1], (IDENTITY, TRANSFORMER), "topology"))
            if len(self.heads) > 1:
                out.append(Decision(prefix + "heads", self.heads, "topology"))
            out += [Decision(prefix + "qkv.ratio", RATIOS, "size"), Decision(prefix + "mlp.ratio", RATIOS, "size")]
        return tuple(out)

    def _columns(self) -> None:
        """Column of each decision kind: ``(positions,)`` arrays for per-position ones (block level: one column)."""
        col = {n: i for i, n in enumerate(self.names)}
        self._patch = col.get("patch")
        self._embed = col["embed.ratio"]
        if self.block_level:
            repeat = np.zeros(self.positions, dtype=np.int64)
            self._block = None
            self._heads = None if "heads" not in col else repeat + col["heads"]
            self._qkv, self._mlp = repeat + col["qkv.ratio"], repeat + col["mlp.ratio"]
        else:
            at = [f"block{i + 1}" for i in range(self.positions)]
            self._block = np.array([col[a] for a in at])
            self._heads = None if len(self.heads) == 1 else np.array([col[a + ".heads"] for a in at])
            self._qkv = np.array([col[a + ".qkv.ratio"] for a in at])
            self._mlp = np.array([col[a + ".mlp.ratio"] for a in at])

    # -- sizes ---------------------------------------------------------------------
    @property
    def cardinality(self) -> int:
        """Exact count: patch sizes · 10 · (1 + heads · 10 · 10)^positions (4,000 at block level)."""
        if self.block_level:
            return self.combinations
        per_position = 1 + len(self.heads) * len(RATIOS) ** 2
        return len(self.patch_sizes) * len(RATIOS) * per_position**self.positions

    def active(self, archs) -> np.ndarray:
        """An identity position's heads, q-k-v and MLP decisions are inactive."""
        a = np.atleast_2d(archs)
        out = np.ones(a.shape, dtype=bool)
        if self.block_level:
            return out
        on = a[:, self._block] == 1
        for cols in (self._heads, self._qkv, self._mlp):
            if cols is not None:
                out[:, cols] = on
        return out

    def check_side(self, side: int | None, name: str = "resolution") -> int | None:
        """``side`` if it is the input side the models are sized for (their position embeddings), else ``UserError``."""
        if side is None or side == self.image_size:
            return side
        raise UserError(f"{name} must be {self.image_size} px for space {self.name!r}, whose position embeddings "
                        f"are sized for space.image_size={self.image_size}, got {side}; set {name}="
                        f"{self.image_size}, or space.image_size={side} if every patch size divides it")

    # -- widths --------------------------------------------------------------------------
    def widths(self, archs) -> dict[str, np.ndarray]:
        """Widths of a batch: ``patch``, ``embed`` ``(n,)``; ``on`` (bool), ``heads``, ``qkv`` (q, k and v together),
        ``mlp`` ``(n, positions)``, the last three 0 at identity positions."""
        a = self.check(archs)
        n = len(a)
        patch = np.asarray(self.patch_sizes)[a[:, self._patch]] if self._patch is not None else \
            np.full(n, self.patch_sizes[0])
        on = np.ones((n, self.positions), dtype=bool) if self._block is None else a[:, self._block] == 1
        heads = np.full((n, self.positions), self.heads[0]) if self._heads is None else \
            np.asarray(self.heads)[a[:, self._heads]]
        return {
            "patch": patch.astype(np.int64),
            "embed": ratio_width(self.max_embed, a[:, self._embed] + 1),
            "on": on,
            "heads": np.where(on, heads, 0).astype(np.int64),
            "qkv": np.where(on, 3 * ratio_width(self.max_qkv // 3, a[:, self._qkv] + 1), 0),
            "mlp": np.where(on, ratio_width(self.max_mlp, a[:, self._mlp] + 1), 0),
        }

    def shape(self, arch) -> ViTShape:
        """The explicit widths of one arch (identity positions left out)."""
        w = self.widths(arch)
        blocks = tuple((int(h), int(q), int(m)) for h, q, m, on in
                       zip(w["heads"][0], w["qkv"][0], w["mlp"][0], w["on"][0]) if on)
        return ViTShape(int(w["patch"][0]), int(w["embed"][0]), blocks, self.image_size, self.num_classes)

    def arch_from(self, patch: int | None = None, embed: int = 10, blocks=()) -> np.ndarray:
        """The arch with patch size ``patch``, embedding ratio ``embed`` (1..10) and, position by position,
        ``(heads, qkv ratio, mlp ratio)`` or None (identity) in ``blocks``; positions beyond it are identities.
        At block level ``blocks`` is the one searched block (a tuple)."""
        values = {"embed.ratio": embed}
        if len(self.patch_sizes) > 1:
            values["patch"] = self.patch_sizes[1] if patch is None else patch
        elif patch not in (None, self.patch_sizes[0]):
            raise UserError(f"space {self.name!r} has the one patch size {self.patch_sizes[0]}, got {patch}")
        if self.block_level:
            blocks = [blocks] if blocks and not isinstance(blocks[0], (tuple, list)) else list(blocks)
            if len(blocks) != 1:
                raise UserError(f"the block-level space searches one block, got {len(blocks)}")
        elif len(blocks) > self.positions:
            raise UserError(f"space {self.name!r} has {self.positions} positions, got {len(blocks)} blocks")
        for i in range(1 if self.block_level else self.positions):
            prefix = "" if self.block_level else f"block{i + 1}."
            block = blocks[i] if i < len(blocks) else None
            if not self.block_level:
                values[prefix[:-1]] = IDENTITY if block is None else TRANSFORMER
            heads, qkv, mlp = (self.heads[0], 1, 1) if block is None else block
            if len(self.heads) > 1:
                values[prefix + "heads"] = heads
            elif heads != self.heads[0]:
                raise UserError(f"space {self.name!r} has the one head count {self.heads[0]}, got {heads}")
            values[prefix + "qkv.ratio"], values[prefix + "mlp.ratio"] = qkv, mlp
        return self.representative(self.from_values(values))

    # -- closed-form costs -------------------------------------------------------------------
    def params(self, archs, num_classes: int | None = None) -> np.ndarray:
        """Parameter count of each arch, ``int64 (n,)``, equal to the built model's (closed form, no torch)."""
        w = self.widths(archs)
        return cost.params(w["patch"], w["embed"], w["qkv"], w["mlp"], num_classes or self.num_classes,
                           self.image_size)

    def macs(self, archs, num_classes: int | None = None) -> np.ndarray:
        """Multiply-accumulates of one forward pass of one image at ``image_size`` (class token included; see
        ``cost.py``), ``int64 (n,)``: what the paper calls FLOPs."""
        w = self.widths(archs)
        return cost.macs(w["patch"], w["embed"], w["qkv"], w["mlp"], num_classes or self.num_classes,
                         self.image_size)

    def flops(self, archs, num_classes: int | None = None) -> np.ndarray:
        """``2 x macs``: the total of torch's ``FlopCounterMode`` for one image (2 FLOPs per MAC)."""
        return 2 * self.macs(archs, num_classes)

    def highest(self, metric: str) -> float | None:
        """An upper bound of ``params`` and ``macs``: the largest over patch sizes of the arch with every other
        decision at its largest option (both grow with every width and with depth; heads change neither)."""
        if metric not in ("params", "macs"):
            return None
        top = np.tile(self.sizes - 1, (len(self.patch_sizes), 1))
        if self._patch is not None:
            top[:, self._patch] = np.arange(len(self.patch_sizes))
        return float(getattr(self, metric)(top).max())

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` archs: every decision uniform, except that with ``budget_macs`` each position is an identity
        with the probability that makes the expected MACs equal the budget."""
        if self._sampler is None:
            return super().sample(rng, n)
        return self._sampler.sample(rng, n)

    def _expected_macs_terms(self) -> tuple[float, float, float]:
        """``(A, B, smallest)``: a uniformly sampled arch whose positions are identities with probability ``p``
        has expected MACs ``A + positions * (1 - p) * B``; ``smallest`` is the least MACs of any arch."""
        patch, embed = (g.ravel() for g in np.meshgrid(self.patch_sizes, self.embed_widths, indexing="ij"))
        none = np.zeros((len(patch), 1), dtype=np.int64)
        bare = cost.macs(patch, embed, none, none, self.num_classes, self.image_size)
        p, e, q, m = (g.ravel() for g in np.meshgrid(self.patch_sizes, self.embed_widths, self.q_widths,
                                                       self.mlp_widths, indexing="ij"))
        one = cost.macs(p, e, 3 * q[:, None], m[:, None], self.num_classes, self.image_size)
        return float(bare.mean()), float(one.mean() - bare.mean()), float(bare.min())

    def budget_sampler(self, budget_macs: float) -> BudgetSampler:
        """The sampler whose archs have expected MACs ``budget_macs`` (the paper's budget-aware sampling), its
        identity probability solved exactly; ``UserError`` for a budget no arch, or no identity probability, meets."""
        if self.block_level:
            raise UserError("budget-aware sampling sets the probability of identity positions, and the block-level "
                            "space has none; drop space.budget_macs or space.block_level")
        budget = declared(type(self))["budget_macs"].coerce(budget_macs, "space")
        a, b, smallest = self._expected_macs_terms()
        high = a + self.positions * b
        if budget < smallest:
            raise UserError(f"no arch of space {self.name!r} meets a budget of {budget:.4g} MACs: the smallest "
                            f"has {smallest:.4g}")
        if not a <= budget <= high:
            raise UserError(f"space.budget_macs={budget:.4g} cannot be the expected MACs of sampled archs of space "
                            f"{self.name!r}: identity probabilities give {a:.4g} (all identities) to {high:.4g} "
                            "(no identity)")
        return BudgetSampler(self, budget, 1.0 - (budget - a) / (high - a))

    # -- models -----------------------------------------------------------------------------
    def build(self, arch, num_classes: int | None = None, **task):
        """The plain ViT of one arch (``model.ViT``), ``(B, 3, S, S)`` -> ``(B, num_classes)`` logits (default: the
        space's); other task keys do not change it."""
        from nas_lab.spaces.vitas.model import ViT

        shape = self.shape(self.check(arch)[0])
        if num_classes is not None and num_classes != shape.num_classes:
            shape = ViTShape(shape.patch, shape.embed, shape.blocks, shape.image_size, int(num_classes))
        return ViT(shape)

    def supernet(self, num_classes: int | None = None, **task):
        """The super-transformer (``supernet.ViTASSupernet``) whose slices are the ``build`` models."""
        from nas_lab.spaces.vitas.supernet import ViTASSupernet

        return ViTASSupernet(self, num_classes or self.num_classes)


@dataclass(frozen=True)
class BudgetSampler:
    """Uniform sampling of a ViTAS space whose positions are identities with ``identity_probability``, chosen so
    that the expected MACs of a sampled arch equal ``budget_macs`` (exact: they are linear in the probability)."""

    space: ViTASSpace
    budget_macs: float
    identity_probability: float

    def expected_macs(self) -> float:
        """The exact expected MACs of a sampled arch (``budget_macs`` up to rounding)."""
        a, b, _ = self.space._expected_macs_terms()
        return a + self.space.positions * (1.0 - self.identity_probability) * b

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` archs (representatives): patch, widths and heads uniform, identities with the solved probability."""
        s = self.space
        out = (rng.random((n, s.dim)) * s.sizes).astype(np.int64)
        out[:, s._block] = rng.random((n, s.positions)) >= self.identity_probability
        return s.representative(out)
