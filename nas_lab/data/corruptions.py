"""Out-of-distribution variants of image test sets: ImageNet-C-style corruptions and a sketch domain.

Images are float ``(N, C, H, W)`` in [0, 1] with C = 1 or 3. Each corruption
exists at severities 1..5 whose parameters are the ones Hendrycks & Dietterich
published (facts, not their code): two tables, one for 32-px images
(CIFAR-10-C) and one for 224-px images (ImageNet-C). Images use the table of
the nearer reference size (geometric mean of 32 and 224, about 85 px, is the
boundary); parameters measured in pixels (blur radii and sigmas) are scaled by
``image side / reference side``, the others (noise strength, contrast factor,
brightness shift, pixelation factor, JPEG quality) are resolution-free and
used as published. One exception: ``motion_blur`` always uses the ImageNet-C
row scaled to the image, because the CIFAR-10-C row's severities 3 and 4
differ only in radius (6 vs 8 px at sigma 2 px); the extra taps get almost no
Gaussian weight, so those two severities would be practically the same blur.

``sketch`` is a different kind of shift (like ImageNet-Sketch): only shape
survives, as dark edge lines on white, with no colour and no texture.

Randomness comes from the ``np.random.Generator`` passed in, so a corruption is
reproducible; ``ood_variants`` derives one generator per variant from its seed
and the variant's name (and, for a test set read one image at a time, the
image's index), so a variant does not depend on which others were made.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator, Mapping

import numpy as np
from PIL import Image
from scipy import fft as sp_fft
from scipy import ndimage

from nas_lab.core.errors import UserError, shorten
from nas_lab.data.images import LUMA, ArrayImages, ImageSet

SEVERITIES = (1, 2, 3, 4, 5)

#: severity 1..5 parameters by reference image side: 32 = CIFAR-10-C, 224 = ImageNet-C
_PUBLISHED = {
    "gaussian_noise": {32: (0.04, 0.06, 0.08, 0.09, 0.10), 224: (0.08, 0.12, 0.18, 0.26, 0.38)},  # std
    "shot_noise": {32: (500, 250, 100, 75, 50), 224: (60, 25, 12, 5, 3)},  # photons at full intensity
    "impulse_noise": {32: (0.01, 0.02, 0.03, 0.05, 0.07), 224: (0.03, 0.06, 0.09, 0.17, 0.27)},  # fraction hit
    "defocus_blur": {  # (disk radius px, anti-alias sigma px)
        32: ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
        224: ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    },
    "motion_blur": {224: ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))},  # (radius px, sigma px)
    "brightness": {32: (0.05, 0.1, 0.15, 0.2, 0.3), 224: (0.1, 0.2, 0.3, 0.4, 0.5)},  # added to HSV value
    "contrast": {32: (0.75, 0.5, 0.4, 0.3, 0.15), 224: (0.4, 0.3, 0.2, 0.1, 0.05)},  # factor about the mean
    "pixelate": {32: (0.95, 0.9, 0.85, 0.75, 0.65), 224: (0.6, 0.5, 0.4, 0.3, 0.25)},  # side kept
    "jpeg_compression": {32: (80, 65, 58, 50, 40), 224: (25, 18, 15, 10, 7)},  # PIL JPEG quality
    "gaussian_blur": {32: (0.4, 0.6, 0.7, 0.8, 1.0), 224: (1, 2, 3, 4, 6)},  # sigma px (an ImageNet-C "extra")
}
_IN_PIXELS = {"defocus_blur", "motion_blur", "gaussian_blur"}
_BOUNDARY = (32 * 224) ** 0.5  # sides below use the 32-px table where there is one


def severity_parameters(name: str, severity: int, side: float) -> tuple[float, ...] | float:
    """The parameters ``name`` uses at ``severity`` on images of this side (pixels), after scaling."""
    tables = _PUBLISHED[name]
    reference = 32 if side < _BOUNDARY and 32 in tables else 224
    value = tables[reference][severity - 1]
    if name not in _IN_PIXELS:
        return value
    scale = side / reference
    return tuple(v * scale for v in value) if isinstance(value, tuple) else value * scale


# ---------------------------------------------------------------- the corruptions


def _gaussian_noise(x, std, rng):
    """Additive white noise (sensor read noise)."""
    return x + std * rng.standard_normal(x.shape, dtype=np.float32)


def _shot_noise(x, photons, rng):
    """Poisson photon-count noise: fewer photons, noisier image."""
    return rng.poisson(x * photons) / photons


def _impulse_noise(x, fraction, rng):
    """Salt-and-pepper: each value is replaced by 0 or 1 with probability ``fraction``."""
    hit = rng.random(x.shape) < fraction
    salt = rng.random(x.shape) < 0.5
    return np.where(hit, salt, x)


def _defocus_blur(x, params, rng):
    """An out-of-focus lens: the average over a disk of pixels, its edge softened against aliasing."""
    radius, alias_sigma = params
    half = int(radius) + max(1, int(np.ceil(3 * alias_sigma)))
    offsets = np.arange(-half, half + 1)
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.float64)
    kernel = ndimage.gaussian_filter(disk / disk.sum(), alias_sigma, mode="constant", truncate=3.0)
    return _correlate_each(x, kernel[None])


def _motion_blur(x, params, rng):
    """Camera shake: each pixel averages a one-sided streak at a random angle within 45 degrees of horizontal.

    The streak has taps at 0 .. 2*radius pixels (ImageMagick's kernel width for a
    radius) weighted by a Gaussian of ``sigma`` pixels; each tap is spread
    bilinearly over the four pixels around its position in the kernel.
    """
    radius, sigma = params
    angles = np.deg2rad(rng.uniform(-45.0, 45.0, len(x)))
    taps = np.arange(int(2 * radius) + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    half = len(taps)  # one more than the longest tap, room for the bilinear spread
    kernels = np.zeros((len(x), 2 * half + 1, 2 * half + 1))
    rows = half + taps[None, :] * np.sin(angles)[:, None]  # (N, taps)
    cols = half + taps[None, :] * np.cos(angles)[:, None]
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = rows - r0, cols - c0
    image = np.broadcast_to(np.arange(len(x))[:, None], rows.shape)
    for dr, dc, share in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        np.add.at(kernels, (image, r0.astype(int) + dr, c0.astype(int) + dc), share * weights)
    return _correlate_each(x, kernels)


def _correlate_each(x, kernels):
    """Correlate image ``n`` with ``kernels[n]`` (or every image with a single kernel), edges mirrored.

    Kernels are odd-sized and centred. Done with FFTs over the padded images, in
    chunks of images to bound memory, so the cost does not grow with kernel size.
    """
    n, c, h, w = x.shape
    ph, pw = kernels.shape[1] // 2, kernels.shape[2] // 2
    size = (h + 2 * ph, w + 2 * pw)
    padded_kernels = np.zeros((len(kernels), *size), dtype=np.float32)
    # correlating with a kernel is convolving with it flipped
    padded_kernels[:, : kernels.shape[1], : kernels.shape[2]] = kernels[:, ::-1, ::-1]
    spectra = sp_fft.rfft2(np.roll(padded_kernels, (-ph, -pw), axis=(1, 2)))[:, None]
    out = np.empty_like(x)
    step = max(1, 2**22 // (c * size[0] * size[1]))
    for start in range(0, n, step):
        chunk = np.pad(x[start : start + step], ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="symmetric")
        spectrum = spectra if len(kernels) == 1 else spectra[start : start + step]
        out[start : start + step] = sp_fft.irfft2(sp_fft.rfft2(chunk) * spectrum, s=size)[..., ph : ph + h, pw : pw + w]
    return out


def _brightness(x, shift, rng):
    """Over-exposure: ``shift`` added to the HSV value, hue and saturation kept.

    With hue and saturation fixed every channel is proportional to the value
    (the max over channels), so scaling the pixel by new/old value is the exact
    HSV round trip; a black pixel becomes grey of the new value.
    """
    value = x.max(axis=1, keepdims=True)
    new = np.minimum(value + shift, 1.0)
    return np.where(value > 0, x * (new / np.maximum(value, 1e-12)), new)


def _contrast(x, factor, rng):
    """Reduced contrast: each channel pulled towards its own mean over the image."""
    mean = x.mean(axis=(2, 3), keepdims=True)
    return (x - mean) * factor + mean


def _pixelate(x, factor, rng):
    """Low-resolution capture: box-downsampled to ``factor`` of the side, box-upsampled back."""
    h, w = x.shape[2:]
    small = (max(1, int(w * factor)), max(1, int(h * factor)))
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            plane = Image.fromarray(x[i, j]).resize(small, Image.Resampling.BOX)
            out[i, j] = np.asarray(plane.resize((w, h), Image.Resampling.BOX))
    return out


def _jpeg_compression(x, quality, rng):
    """Lossy compression artefacts: each image saved as 8-bit JPEG at ``quality`` with PIL and decoded."""
    out = np.empty_like(x)
    for i, image in enumerate(np.round(x * 255).astype(np.uint8)):
        buffer = io.BytesIO()
        Image.fromarray(image[0] if len(image) == 1 else image.transpose(1, 2, 0)).save(
            buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer), dtype=np.float32) / 255.0
        out[i] = decoded[None] if decoded.ndim == 2 else decoded.transpose(2, 0, 1)
    return out


def _gaussian_blur(x, sigma, rng):
    """Plain Gaussian blur of each channel."""
    return ndimage.gaussian_filter(x, (0, 0, sigma, sigma), mode="reflect")


_APPLY = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "motion_blur": _motion_blur,
    "brightness": _brightness,
    "contrast": _contrast,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
    "gaussian_blur": _gaussian_blur,
}
#: names accepted by ``corrupt``: nine of ImageNet-C's 15 core corruptions, in its order, then gaussian_blur
CORRUPTIONS = tuple(_APPLY)
#: the ImageNet-C core corruptions among them, which OoD means average over (gaussian_blur is one of its extras)
CORE_CORRUPTIONS = tuple(name for name in CORRUPTIONS if name != "gaussian_blur")


def corrupt(x: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` with corruption ``name`` at ``severity`` (1..5): float32 ``(N, C, H, W)`` in [0, 1]."""
    if name not in _APPLY:
        raise UserError(f"unknown corruption {shorten(repr(name))}; valid: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise UserError(f"corruption severity must be one of 1, 2, 3, 4, 5, got {shorten(repr(severity))}")
    x = _images(x)
    params = severity_parameters(name, severity, (x.shape[2] * x.shape[3]) ** 0.5)
    return np.clip(_APPLY[name](x, params, rng), 0.0, 1.0).astype(np.float32, copy=False)


def sketch(x: np.ndarray) -> np.ndarray:
    """Shape only: thin dark edge lines on white, the same in every channel (no colour, no texture).

    The grey image is smoothed a little (sigma = side/64 px) so that fine texture
    draws no lines; its Sobel gradient magnitude is thinned to one-pixel ridges
    (kept only where it is a maximum across the edge, as Canny does), scaled by
    each image's 99th-percentile magnitude, and inverted. Scaling or offsetting
    the intensities of an image does not change its sketch.
    """
    x = _images(x)
    grey = np.einsum("nchw,c->nhw", x, LUMA) if x.shape[1] == 3 else x[:, 0]
    sigma = (x.shape[2] * x.shape[3]) ** 0.5 / 64
    grey = ndimage.gaussian_filter(grey, (0, sigma, sigma), mode="reflect")
    gy, gx = ndimage.sobel(grey, axis=1, mode="reflect"), ndimage.sobel(grey, axis=2, mode="reflect")
    magnitude = np.hypot(gx, gy)
    direction = np.round(np.arctan2(gy, gx) / (np.pi / 4)).astype(int) % 4  # 0: across columns, 2: across rows
    padded = np.pad(magnitude, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = magnitude.shape[1:]
    ridge = np.zeros(magnitude.shape, dtype=bool)
    for d, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ahead = padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        behind = padded[:, 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        ridge |= (direction == d) & (magnitude >= ahead) & (magnitude >= behind)
    scale = np.percentile(magnitude, 99, axis=(1, 2), keepdims=True)
    lines = 1.0 - np.clip(np.where(ridge, magnitude, 0.0) / np.maximum(scale, 1e-6), 0.0, 1.0)
    return np.repeat(lines[:, None], x.shape[1], axis=1).astype(np.float32)


def _images(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C = 1 or 3, got shape {x.shape}")
    return x


# ---------------------------------------------------------------- OoD test sets


class OodVariants(Mapping):
    """The OoD versions of a test split, made on access: ``c.<corruption>.<severity>`` and ``sketch``.

    Each value is an image set with the test labels. Of an in-memory test set
    (digits, mnist) it is the whole variant, corrupted in one go on access (an
    ``ArrayImages``, about 3 MB for digits' test split at 32x32); nothing is
    kept, so the 51 variants never sit in memory together. Of any other test set
    (CIFAR, a folder of any size) it is a ``CorruptedImages`` that corrupts each
    image when it is read, so a large test split is never copied at all.
    """

    def __init__(self, test: ImageSet, seed: int = 0):
        self.test = test
        self.seed = seed
        self._keys = (*(f"c.{name}.{s}" for name in CORRUPTIONS for s in SEVERITIES), "sketch")

    def __getitem__(self, key: str) -> ImageSet:
        if key not in self._keys:
            raise KeyError(key)
        if not self.test.in_memory:
            return CorruptedImages(self.test, key, self.seed)
        x = self.test.x
        if key == "sketch":
            return ArrayImages(sketch(x), self.test.labels)
        _, name, severity = key.split(".")
        return ArrayImages(corrupt(x, name, int(severity), _generator(self.seed, key)), self.test.labels)

    def __contains__(self, key: object) -> bool:
        return key in self._keys  # without making the variant, as Mapping's default would

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class CorruptedImages(ImageSet):
    """An OoD variant (``c.<corruption>.<severity>`` or ``sketch``) of an image set, made one image at a time.

    Image ``i`` is corrupted with a generator seeded by (seed, variant, ``i``), so
    it is the same whichever process reads it, in whatever order.
    """

    def __init__(self, source: ImageSet, key: str, seed: int):
        super().__init__(source.labels, source.shape)
        self.source, self.key, self.seed = source, key, seed

    def image(self, i: int) -> np.ndarray:
        x = self.source.image(i)[None]
        if self.key == "sketch":
            return sketch(x)[0]
        _, name, severity = self.key.split(".")
        return corrupt(x, name, int(severity), _generator(self.seed, self.key, i))[0]


def _generator(seed: int, key: str, *image: int) -> np.random.Generator:
    """The generator of variant ``key`` (of image ``image`` when corrupted one at a time): it does not depend on
    which other variants, or images, were made before."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), *image])


def ood_variants(test: ImageSet, seed: int = 0) -> OodVariants:
    """Every corruption at every severity plus ``sketch``, of the test split ``test`` (computed on access)."""
    return OodVariants(test, seed)
