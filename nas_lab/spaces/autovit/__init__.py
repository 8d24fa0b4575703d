"""The AutoViT hybrid CNN-ViT space (seed 001): XXS / XS / S variants, their models and weight-sharing supernets."""

from nas_lab.spaces.autovit.space import VARIANTS, AutoViTSpace, Variant

__all__ = ["VARIANTS", "AutoViTSpace", "Variant"]
