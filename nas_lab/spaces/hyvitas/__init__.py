"""The HyViTas hybrid CNN-ViT space (HyViTas-Bench, seed 000)."""

from nas_lab.spaces.hyvitas.space import HyViTasSpace

__all__ = ["HyViTasSpace"]
