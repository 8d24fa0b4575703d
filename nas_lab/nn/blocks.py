"""Reusable blocks of hybrid CNN-ViT models, all on ``(B, C, H, W)`` feature maps, and the attention and
initialisation every transformer space shares (``attend``, ``init_weights``: ViTAS, AutoViT).

Every block keeps the shape of its input, so a stage is a plain stack of them.
Normalisation is BatchNorm throughout: HyViTas-Bench uses it instead of
LayerNorm because it folds into the neighbouring convolution at inference.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block with BatchNorm: depthwise k x k conv, norm, inverted bottleneck.

    The large-kernel depthwise conv mixes space cheaply, the 1x1 convs
    (``dim -> dim * expansion -> dim``, GELU between) mix channels, and the
    residual add keeps deep stacks trainable. Pointwise layers are 1x1 convs
    rather than linears on permuted tokens so the block stays convolutional.
    """

    def __init__(self, dim: int, kernel: int = 7, expansion: int = 4):
        super().__init__()
        hidden = dim * expansion
        self.dwconv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pw1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.pw2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pw2(self.act(self.pw1(self.norm(self.dwconv(x)))))


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over the ``H * W`` tokens, plus residual.

    ``x + proj(attention(qkv(BN(x))))``: a BatchNorm2d pre-norm (as in the rest of
    the network) keeps the residual path an identity. Attention is written with
    explicit matmuls rather than ``scaled_dot_product_attention`` so that
    ``torch.utils.flop_counter`` counts it on every device (on CPU the fused
    kernel is invisible to it), which keeps measured FLOPs equal to the
    closed-form figures.
    """

    def __init__(self, dim: int, heads: int = 8):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.norm = nn.BatchNorm2d(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (b, n, c)
        q, k, v = self.qkv(tokens).reshape(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        weights = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, h * w, c)
        return x + self.proj(out).transpose(1, 2).reshape(b, c, h, w)


class HybridBlock(nn.Module):
    """Self-attention followed by a ConvNeXt block (LocalViT-style hybrid).

    Attention gives a global receptive field; the ConvNeXt block that follows
    (in place of a transformer's MLP) adds the locality bias of a depthwise conv.
    """

    def __init__(self, dim: int, kernel: int = 7, expansion: int = 4, heads: int = 8):
        super().__init__()
        self.attn = SelfAttention(dim, heads)
        self.conv = ConvNeXtBlock(dim, kernel, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.attn(x))


#: standard deviation of the truncated-normal initialisation of tokens, embeddings and linear weights (DeiT's)
INIT_STD = 0.02


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention over ``(b, heads, tokens, head_dim)`` tensors, as two counted matmuls."""
    weights = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
    return weights @ v


@torch.no_grad()
def init_weights(module: nn.Module) -> None:
    """DeiT's initialisation: truncated normal (std 0.02) for class tokens, position embeddings and linear
    weights, zero linear biases; LayerNorms at (1, 0) and the patch-embedding conv keep torch's defaults."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=INIT_STD)
            nn.init.zeros_(m.bias)
    for name, p in module.named_parameters():
        if "cls_token" in name or "pos_embed" in name:
            nn.init.trunc_normal_(p, std=INIT_STD)
