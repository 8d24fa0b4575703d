"""Input batches for the proxies: deterministic, drawn from a seed, no dataset needed.

There is no image dataset on the proxy path, so the data-driven proxies
(NASWOT, SNIP, GradNorm, Jacobian covariance) see synthetic images with the
second-order statistics of natural ones (``kind="data"``): Gaussian fields
whose power falls as 1/f^2 with spatial frequency f (Field, JOSA A 1987; van
der Schaaf & van Hateren, Vision Research 1996), colour channels correlated
at 0.9, each channel standardised to mean 0 and variance 1 as a normalised
dataset's images are. The proxies were designed and validated on real
images, whose neighbouring pixels and colour channels are strongly
correlated; i.i.d. white noise has neither, and proxies computed on it rank
NB201 cells less like the references computed on CIFAR-10. The labels are
uniform over the space's classes, like a shuffled balanced dataset's. The
Entropic Score defines its own input, uniform on [-0.5, 0.5]
(``kind="uniform"``); Synflow and LogSynflow build an all-ones input.
"""

from __future__ import annotations

import math

import torch

from nas_lab.core.errors import UserError
from nas_lab.core.space import Space

KINDS = ("data", "uniform")
CHANNELS = 3  # every space here takes RGB images
#: exponent of the power spectrum of natural images, power ~ 1 / f ** SPECTRAL_SLOPE
SPECTRAL_SLOPE = 2.0
#: correlation of the colour channels of a pixel (a shared luminance field plus one field per channel)
CHANNEL_CORRELATION = 0.9


def num_classes(space: Space) -> int:
    """Number of classes of the space's default task: its declared ``num_classes``."""
    if space.num_classes is None:
        raise UserError(f"space {space.name!r} builds no classifier with a default num_classes, "
                        "so proxies cannot label a batch")
    return space.num_classes


def natural_images(batch_size: int, resolution: int, gen: torch.Generator) -> torch.Tensor:
    """``(batch_size, 3, resolution, resolution)`` Gaussian images with a 1/f^2 power spectrum, unit variance.

    White noise filtered in the Fourier domain by amplitude f^(-slope/2); the
    zero frequency (the image's mean) gets the amplitude of the lowest nonzero
    one, so brightness varies between images as much as their coarsest pattern.
    """
    freq = torch.fft.fftfreq(resolution)
    radius = torch.hypot(freq[:, None], freq[None, :])
    radius[0, 0] = 1 / resolution
    amplitude = radius ** (-SPECTRAL_SLOPE / 2)
    white = torch.randn(batch_size, 1 + CHANNELS, resolution, resolution, generator=gen)
    fields = torch.fft.ifft2(torch.fft.fft2(white) * amplitude).real / amplitude.square().mean().sqrt()
    luminance, colour = fields[:, :1], fields[:, 1:]
    return math.sqrt(CHANNEL_CORRELATION) * luminance + math.sqrt(1 - CHANNEL_CORRELATION) * colour


def make_batch(space: Space, resolution: int, batch_size: int, seed: int,
               kind: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs (batch_size, 3, resolution, resolution) float32, targets (batch_size,) int64)`` drawn from ``seed``.

    Uses its own ``torch.Generator``, so the global random state is untouched.
    """
    if kind not in KINDS:
        raise UserError(f"unknown proxy input kind {kind!r}; valid: {', '.join(KINDS)}")
    gen = torch.Generator().manual_seed(int(seed))
    if kind == "data":
        inputs = natural_images(batch_size, resolution, gen)
    else:
        inputs = torch.rand(batch_size, CHANNELS, resolution, resolution, generator=gen) - 0.5
    targets = torch.randint(num_classes(space), (batch_size,), generator=gen)
    return inputs, targets
