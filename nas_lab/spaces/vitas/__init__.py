"""The ViTAS vision-transformer space (seed 004): the space, its plain ViT models and its super-transformer."""

from nas_lab.spaces.vitas.space import ViTASSpace

__all__ = ["ViTASSpace"]
