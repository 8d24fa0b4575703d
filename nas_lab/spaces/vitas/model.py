"""The plain vision transformer (ViT / DeiT layout) that every ViTAS arch builds.

``ViT(shape)`` takes explicit widths (``cost.ViTShape``), so the same code builds
the space's archs and reference models off its ratio grid (DeiT-Ti, DeiT-S).
Layers, in the order ``cost.py`` counts them: a ``Conv2d(3, D, p, stride=p)``
patch embedding, a class token prepended to the patches, a learned position
embedding over all ``T = N + 1`` tokens, pre-norm transformer blocks
(``x + MHSA(LN(x))``, then ``x + MLP(LN(x))`` with GELU), a final LayerNorm
and a linear classifier on the class token. Norms use ``eps = 1e-6`` and linear
layers carry biases (DeiT's choices). Heads are contiguous groups of the q, k
and v channels (``qkv / 3h`` each), and the softmax scale is ``(qkv / 3h) ** -0.5``.
Identity positions of an arch are simply absent from ``blocks``.

An input whose side differs from the shape's ``image_size`` is accepted: the
position embedding is resized (bicubic, class-token row kept) to the patch grid
it gets, as DeiT does when fine-tuning at another resolution. The closed-form
sizes (``cost.py``) are stated at ``image_size``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.nn.blocks import attend, init_weights
from nas_lab.spaces.vitas.cost import IN_CHANNELS, ViTShape

#: LayerNorm epsilon (DeiT's)
EPS = 1e-6


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(b, t, w)`` -> ``(b, heads, t, w / heads)``: contiguous channel groups, one per head."""
    b, t, w = x.shape
    return x.reshape(b, t, heads, w // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Inverse of ``split_heads``."""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


def fit_position_embedding(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """``(1, 1 + g^2, D)`` position embedding for a ``grid x grid`` patch grid: itself when ``g == grid``,
    else its patch rows resized bicubically (the class-token row kept)."""
    g = round((pos.shape[1] - 1) ** 0.5)
    if g == grid:
        return pos
    patches = pos[:, 1:].reshape(1, g, g, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], patches.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)


def embed_tokens(x: torch.Tensor, projected: torch.Tensor, cls_token: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Tokens of a batch: the class token, then the ``(b, D, g, g)`` projected patches, plus the position embedding."""
    grid = projected.shape[-1]
    tokens = projected.flatten(2).transpose(1, 2)
    tokens = torch.cat([cls_token.expand(len(x), -1, -1), tokens], dim=1)
    return tokens + fit_position_embedding(pos, grid)


class Attention(nn.Module):
    """Multi-head self-attention: fused ``Linear(D, qkv)`` (q, k, v of ``qkv / 3``), output ``Linear(qkv / 3, D)``."""

    def __init__(self, dim: int, qkv: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, qkv)
        self.proj = nn.Linear(qkv // 3, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(part, self.heads) for part in self.qkv(x).chunk(3, dim=-1))
        return self.proj(merge_heads(attend(q, k, v)))


class Mlp(nn.Module):
    """``Linear(D, M)``, GELU, ``Linear(M, D)``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, qkv: int, mlp: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = Attention(dim, qkv, heads)
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        self.mlp = Mlp(dim, mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """A plain ViT of explicit widths: ``(B, 3, S, S)`` images -> ``(B, num_classes)`` logits."""

    def __init__(self, shape: ViTShape):
        super().__init__()
        self.shape = shape
        d = shape.embed
        self.patch_embed = nn.Conv2d(IN_CHANNELS, d, shape.patch, stride=shape.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, shape.tokens, d))
        self.blocks = nn.ModuleList(Block(d, heads, qkv, mlp) for heads, qkv, mlp in shape.blocks)
        self.norm = nn.LayerNorm(d, eps=EPS)
        self.head = nn.Linear(d, shape.num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = embed_tokens(x, self.patch_embed(x), self.cls_token, self.pos_embed)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])
