"""The tinyML hybrid CNN-ViT space with Pool-ViT blocks (seed 003): the space, its models and its supernet."""

from nas_lab.spaces.poolvit.space import PoolViTSpace

__all__ = ["PoolViTSpace"]
