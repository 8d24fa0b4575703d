"""The ViTAS super-transformer: one module whose slices are every arch's ``model.ViT``.

It holds, at the space's maximum widths (embedding ``D``, q width ``W = qkv / 3``,
MLP ``M``):

- per patch size, its own projection conv and position embedding (our reading,
  see ``space.py``), and the class token: one per patch size with
  ``private_class_token`` (the paper's private class tokens), else one shared;
- per position, a block with ``norm1``; the q-k projection ``qk`` (``D -> 2W``),
  one per head count with ``private_qk`` (the paper's private q/k), else one
  shared; the v projection ``v`` (``D -> W``), one per head count with
  ``private_v``, else shared; the output projection ``proj`` (``W -> D``),
  ``norm2``, ``fc1`` (``D -> M``) and ``fc2`` (``M -> D``), always shared;
- the final ``norm`` and the classifier ``head`` (``D -> classes``).

An arch with embedding ``d``, and at a position ``h`` heads, q width ``w`` and MLP
width ``m``, runs on the *first* ``d`` channels of every embedding-width axis,
the first ``w`` rows of its q, k and v projections (split evenly into ``h``
contiguous heads of ``w / h`` channels, as the standalone model splits its
fused q-k-v) and the first ``m`` MLP channels (weight inheritance by slicing the
largest weights, as in the paper's vanilla super-transformer). Identity
positions are skipped. Only the slice is computed and gets gradients.

The paper's Table 2 sharing variants are the switches ``private_qk`` and
``private_v`` (space parameters): share q, k, v (row 5: both false), share q, k
only (row 6: ``private_v``), share v only (row 7, the paper's best and our
default: ``private_qk``), nothing shared (row 4: both).

The contract SPOS and ``objective=supernet.*`` use: ``forward(x, arch)``,
``extract(arch)`` (``space.build(arch)`` holding the inherited slices, equal
outputs), and ``recalibrate(arch, batches)``, a no-op here: LayerNorm keeps no
running statistics. DARTS' mixture of every decision is not offered.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.core.errors import UserError
from nas_lab.nn.blocks import attend, init_weights
from nas_lab.nn.dynamic import DynamicConv2d, DynamicLayerNorm, DynamicLinear
from nas_lab.spaces.vitas.model import EPS, ViT, embed_tokens, merge_heads, split_heads


class SuperBlock(nn.Module):
    """One position's transformer block at its largest widths, q/k and v shared or kept per head count."""

    def __init__(self, max_dim: int, max_q: int, max_mlp: int, head_counts: int, private_qk: bool, private_v: bool):
        super().__init__()
        self.norm1 = DynamicLayerNorm(max_dim, eps=EPS)
        self.qk = nn.ModuleList(DynamicLinear(max_dim, max_q, parts=2) for _ in range(head_counts if private_qk else 1))
        self.v = nn.ModuleList(DynamicLinear(max_dim, max_q) for _ in range(head_counts if private_v else 1))
        self.proj = DynamicLinear(max_q, max_dim)
        self.norm2 = DynamicLayerNorm(max_dim, eps=EPS)
        self.fc1 = DynamicLinear(max_dim, max_mlp)
        self.fc2 = DynamicLinear(max_mlp, max_dim)

    def projections(self, which: int) -> tuple[DynamicLinear, DynamicLinear]:
        """The q-k and v projections the ``which``-th head count uses."""
        return self.qk[which if len(self.qk) > 1 else 0], self.v[which if len(self.v) > 1 else 0]

    def forward(self, x: torch.Tensor, which: int, heads: int, q: int, mlp: int) -> torch.Tensor:
        d = x.shape[-1]
        z = self.norm1(x)
        qk, v = self.projections(which)
        parts = (*qk(z, q).chunk(2, dim=-1), v(z, q))
        x = x + self.proj(merge_heads(attend(*(split_heads(t, heads) for t in parts))), d)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x), mlp)), d)

    @torch.no_grad()
    def copy_to(self, static, which: int) -> None:
        """Load this block's slice for the ``which``-th head count into a ``model.Block``."""
        d, q = static.norm1.normalized_shape[0], static.attn.proj.in_features
        qk, v = self.projections(which)
        (qkw, qkb), (vw, vb) = qk.weights(q, d), v.weights(q, d)
        static.attn.qkv.weight.copy_(torch.cat([qkw, vw]))
        static.attn.qkv.bias.copy_(torch.cat([qkb, vb]))
        for name in ("norm1", "norm2"):
            getattr(self, name).copy_to(getattr(static, name))
        self.proj.copy_to(static.attn.proj)
        self.fc1.copy_to(static.mlp.fc1)
        self.fc2.copy_to(static.mlp.fc2)


class ViTASSupernet(nn.Module):
    """Super-transformer of a ViTAS space: ``(B, 3, S, S)`` images and an arch -> ``(B, num_classes)`` logits."""

    def __init__(self, space, num_classes: int):
        super().__init__()
        self.space, self.num_classes = space, num_classes
        d, q, m = space.max_embed, space.max_qkv // 3, space.max_mlp
        self.patch_embed = nn.ModuleList(DynamicConv2d(3, d, p, stride=p) for p in space.patch_sizes)
        self.pos_embed = nn.ParameterList(
            nn.Parameter(torch.zeros(1, (space.image_size // p) ** 2 + 1, d)) for p in space.patch_sizes)
        self.cls_token = nn.Parameter(torch.zeros(len(space.patch_sizes) if space.private_class_token else 1, 1, d))
        self.blocks = nn.ModuleList(SuperBlock(d, q, m, len(space.heads), space.private_qk, space.private_v)
                                    for _ in range(space.positions))
        self.norm = DynamicLayerNorm(d, eps=EPS)
        self.head = DynamicLinear(d, num_classes)
        init_weights(self)

    def _path(self, arch) -> tuple[int, int, int, list[tuple[int, int, int, int, int]]]:
        """``(patch index, class-token index, embedding width, [(position, head-count index, heads, q width,
        mlp width) per transformer position])`` of an arch."""
        w = self.space.widths(np.asarray(arch))
        patch = self.space.patch_sizes.index(int(w["patch"][0]))
        blocks = [(j, self.space.heads.index(int(h)), int(h), int(qkv) // 3, int(m))
                  for j, (on, h, qkv, m) in enumerate(zip(w["on"][0], w["heads"][0], w["qkv"][0], w["mlp"][0])) if on]
        return patch, patch if len(self.cls_token) > 1 else 0, int(w["embed"][0]), blocks

    def forward(self, x: torch.Tensor, arch=None, *, weights=None) -> torch.Tensor:
        """Logits of the single path ``arch`` (option indices)."""
        if weights is not None or arch is None:
            raise UserError("the ViTAS super-transformer runs one arch per forward pass (SPOS, objective=supernet.*), "
                            "not a mixture of every decision (DARTS); use searcher=spos or objective=supernet.id")
        patch, token, d, blocks = self._path(arch)
        x = embed_tokens(x, self.patch_embed[patch](x, d), self.cls_token[token:token + 1, :, :d],
                         self.pos_embed[patch][:, :, :d])
        for position, which, heads, q, m in blocks:
            x = self.blocks[position](x, which, heads, q, m)
        return self.head(self.norm(x)[:, 0], self.num_classes)

    @torch.no_grad()
    def extract(self, arch) -> ViT:
        """``space.build(arch)`` holding this super-transformer's slices: the same outputs as ``self(x, arch)``."""
        model = self.space.build(arch, num_classes=self.num_classes)
        patch, token, d, blocks = self._path(arch)
        self.patch_embed[patch].copy_to(model.patch_embed)
        model.cls_token.copy_(self.cls_token[token:token + 1, :, :d])
        model.pos_embed.copy_(self.pos_embed[patch][:, :, :d])
        for static, (position, which, *_) in zip(model.blocks, blocks):
            self.blocks[position].copy_to(static, which)
        self.norm.copy_to(model.norm)
        self.head.copy_to(model.head)
        return model.to(self.head.weight.device)

    def recalibrate(self, arch, batches: Iterable) -> ViTASSupernet:
        """Nothing to re-estimate: LayerNorm normalises each token by itself and keeps no running statistics."""
        return self
