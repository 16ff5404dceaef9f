"""Mask-color detection: exact (as DeepCreamPy), tolerant, and anti-aliased-edge growth.

DeepCreamPy only treats pixels of exactly (0, 255, 0) as holes. Paint tools anti-alias stroke
edges and JPEG shifts every pixel a little, so users get "the same image back". Here:

* ``tolerance`` accepts pixels whose per-channel distance to the mask color is <= N;
* ``grow_antialias`` then grows the mask over adjacent pixels that are a blend
  ``alpha * mask + (1 - alpha) * background`` of the mask color and a nearby non-mask color;
* ``near_mask_hint`` explains, with counts and the exact options, why nothing was found;
* ``load_mask_file`` reads a separate mask image instead (white or any non-black = fill).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from deepcream.errors import InputError
from deepcream.options import DEFAULT_MASK_COLOR

Color = tuple[int, int, int]

# Tolerances the hint may suggest: small enough not to catch ordinary image colors.
_HINT_MAX_TOLERANCE = 64
# A blend pixel must carry at least this much mask color to join (below it the pixel is
# visually the background color and filling it is not needed).
_ALPHA_MIN = 0.12
# How far (max channel) a pixel may sit from the ideal blend line: absorbs rounding, JPEG noise.
_BLEND_RESIDUAL = 14.0
# The background neighbour must differ clearly from the mask color, else the blend line is
# too short to tell a blend from noise.
_MIN_CONTRAST = 40
# Pixels grown per side; anti-aliasing (and JPEG chroma subsampling) spreads over ~1-2 px.
_GROW_ITERATIONS = 3
# Where a frontier pixel looks for its background color: the 8 directions at 1 and 2 px
# (the nearest pixel may itself be a blend; 2 px out is past a 1-2 px anti-aliased edge).
_BG_OFFSETS = [(r * dy, r * dx) for r in (1, 2) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
               if (dy, dx) != (0, 0)]


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB array [H, W, 3], got shape {getattr(rgb, 'shape', None)}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def _check_color(color: Color) -> Color:
    c = tuple(int(v) for v in color)
    if len(c) != 3 or not all(0 <= v <= 255 for v in c):
        raise ValueError(f"mask color must be three values 0..255, got {color!r}")
    return c  # type: ignore[return-value]


def color_distance(rgb: np.ndarray, color: Color = DEFAULT_MASK_COLOR) -> np.ndarray:
    """Per-pixel max over channels of |pixel - color| (uint8 [H, W])."""
    rgb = _check_rgb(rgb)
    color = _check_color(color)
    diff = cv2.absdiff(rgb, np.full_like(rgb, color))
    return np.maximum(np.maximum(diff[:, :, 0], diff[:, :, 1]), diff[:, :, 2])


def _tolerant_mask(rgb: np.ndarray, color: Color, tolerance: int) -> np.ndarray:
    lower = np.array([max(0, c - tolerance) for c in color], np.uint8)
    upper = np.array([min(255, c + tolerance) for c in color], np.uint8)
    return cv2.inRange(rgb, lower, upper).view(bool)


def find_mask(
    rgb: np.ndarray,
    color: Color = DEFAULT_MASK_COLOR,
    tolerance: int = 0,
    grow_antialias: bool = False,
) -> np.ndarray:
    """Pixels painted in the mask color, as bool [H, W].

    ``tolerance`` 0 is DeepCreamPy's exact match; N accepts a per-channel distance <= N.
    ``grow_antialias`` then adds anti-aliased edge pixels (blends of the mask color and the
    neighbouring background color), a few pixels deep.
    """
    rgb = _check_rgb(rgb)
    color = _check_color(color)
    tolerance = int(tolerance)
    if not 0 <= tolerance <= 255:
        raise ValueError(f"mask tolerance must be 0..255, got {tolerance}")
    mask = _tolerant_mask(rgb, color, tolerance).copy()
    if grow_antialias and mask.any():
        mask = grow_antialiased(rgb, mask, color)
    return mask


def _blend_candidates(
    rgb: np.ndarray, mask: np.ndarray, ys: np.ndarray, xs: np.ndarray, color: Color
) -> np.ndarray:
    """For frontier pixels (ys, xs): True where the pixel is a blend of the mask color and
    some nearby non-mask pixel (vectorised over pixels, looped over ``_BG_OFFSETS``)."""
    h, w = mask.shape
    # Per-channel 1-D arrays: numpy reductions over a length-3 last axis are slow.
    pix = rgb[ys, xs].astype(np.float32)
    p_ch = [pix[:, c] for c in range(3)]
    accepted = np.zeros(len(ys), bool)
    for dy, dx in _BG_OFFSETS:
        ny = np.clip(ys + dy, 0, h - 1)
        nx = np.clip(xs + dx, 0, w - 1)
        bg = rgb[ny, nx].astype(np.float32)
        b_ch = [bg[:, c] for c in range(3)]
        mb = [float(color[c]) - b_ch[c] for c in range(3)]  # mask - background
        # The background must be clearly different from the mask color, else the blend
        # line is too short to tell a blend from noise.
        contrast = np.maximum(np.maximum(np.abs(mb[0]), np.abs(mb[1])), np.abs(mb[2]))
        valid = ~mask[ny, nx] & (contrast >= _MIN_CONTRAST)
        denom = np.maximum(mb[0] * mb[0] + mb[1] * mb[1] + mb[2] * mb[2], 1.0)
        dot = sum((p_ch[c] - b_ch[c]) * mb[c] for c in range(3))
        alpha = np.clip(dot / denom, 0.0, 1.0)
        residual = np.abs(p_ch[0] - b_ch[0] - alpha * mb[0])
        for c in (1, 2):
            np.maximum(residual, np.abs(p_ch[c] - b_ch[c] - alpha * mb[c]), out=residual)
        accepted |= valid & (alpha >= _ALPHA_MIN) & (residual <= _BLEND_RESIDUAL)
    return accepted


def grow_antialiased(
    rgb: np.ndarray,
    mask: np.ndarray,
    color: Color = DEFAULT_MASK_COLOR,
    iterations: int = _GROW_ITERATIONS,
) -> np.ndarray:
    """Grow ``mask`` over adjacent pixels that blend the mask color with a nearby background
    color (anti-aliased or JPEG-blurred stroke edges). Returns a new bool mask."""
    rgb = _check_rgb(rgb)
    color = _check_color(color)
    mask = np.asarray(mask, bool).copy()
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(iterations):
        frontier = cv2.dilate(mask.view(np.uint8), kernel).view(bool) & ~mask
        ys, xs = np.nonzero(frontier)
        if len(ys) == 0:
            break
        grow = _blend_candidates(rgb, mask, ys, xs, color)
        if not grow.any():
            break
        mask[ys[grow], xs[grow]] = True
    return mask


def suggest_tolerance(rgb: np.ndarray, color: Color = DEFAULT_MASK_COLOR, *,
                      distance: np.ndarray | None = None) -> tuple[int, int]:
    """(tolerance, pixel count): the smallest multiple of 8 (<= 64) that catches 90% of the
    pixels within 64 of the mask color, and how many pixels it catches. ``distance``: a
    precomputed ``color_distance(rgb, color)``."""
    dist = color_distance(rgb, color) if distance is None else distance
    counts = np.cumsum(np.bincount(dist.ravel(), minlength=256))
    near = int(counts[_HINT_MAX_TOLERANCE])
    if near == 0:
        return 0, 0
    for tol in range(8, _HINT_MAX_TOLERANCE + 1, 8):
        if counts[tol] >= 0.9 * near:
            return tol, int(counts[tol])
    return _HINT_MAX_TOLERANCE, near


def near_mask_hint(
    rgb: np.ndarray,
    color: Color = DEFAULT_MASK_COLOR,
    tolerance: int = 0,
    *,
    min_pixels: int = 50,
) -> str | None:
    """A one-line explanation when no pixel (or only a small share of the mask-like pixels)
    matches the mask color at ``tolerance`` but many are close to it, with the exact options
    to rerun with; None when there is nothing to say.

    JPEG keeps a few pixels exact inside wide strokes, so "few exact, many near" (fewer than
    half of the near ones) gets the hint too: the exact mask would be a sparse speckle.
    """
    rgb = _check_rgb(rgb)
    color = _check_color(color)
    tolerance = int(tolerance)
    dist = color_distance(rgb, color)
    counts = np.cumsum(np.bincount(dist.ravel(), minlength=256))
    found = int(counts[min(max(tolerance, 0), 255)])
    suggested, count = suggest_tolerance(rgb, color, distance=dist)
    if count < min_pixels or suggested <= tolerance or found * 2 > count:
        return None
    c = ",".join(str(v) for v in color)
    exact = "the exact mask color" if tolerance == 0 else f"a color within {tolerance} of"
    head = f"no pixel has {exact} ({c})" if found == 0 else f"only {found:,} pixels have {exact} ({c})"
    return (
        f"{head} but {count:,} pixels are within {suggested} of it "
        f"(anti-aliased or JPEG-saved strokes?): rerun with --mask-tolerance {suggested} --antialias"
    )


def fringe_hint(
    rgb: np.ndarray,
    mask: np.ndarray,
    color: Color = DEFAULT_MASK_COLOR,
    *,
    min_pixels: int = 50,
) -> str | None:
    """A one-line warning when a found mask has many anti-aliased edge pixels around it that
    would stay as a visible fringe without ``--antialias``; None otherwise."""
    rgb = _check_rgb(rgb)
    color = _check_color(color)
    grown = grow_antialiased(rgb, mask, color, iterations=_GROW_ITERATIONS)
    extra = int(grown.sum() - np.count_nonzero(mask))
    if extra < min_pixels:
        return None
    return (
        f"{extra:,} pixels around the mask blend into the mask color (anti-aliased edges?) "
        f"and would stay as a fringe: add --antialias"
    )


def mask_warning(
    rgb: np.ndarray,
    mask: np.ndarray,
    color: Color = DEFAULT_MASK_COLOR,
    tolerance: int = 0,
    antialias: bool = False,
) -> str | None:
    """Why a found mask is probably incomplete (JPEG-speckled strokes, or an anti-aliased
    fringe that ``antialias`` would take), as one line; None when the mask looks complete.

    Runs on every decensored image, so a 1-in-16 pixel sample decides first whether any
    near-mask pixel lies outside the mask at all; clean flat-color strokes pay ~1 ms.
    """
    rgb = _check_rgb(rgb)
    color = _check_color(color)
    sample = color_distance(rgb[::4, ::4], color)
    near_outside = (sample <= _HINT_MAX_TOLERANCE) & ~mask[::4, ::4]
    if np.count_nonzero(near_outside) * 16 < 50:
        return None
    hint = near_mask_hint(rgb, color, tolerance)
    if hint is None and not antialias:
        hint = fringe_hint(rgb, mask, color)
    return hint


# A lossy mask file (JPEG, lossy WebP) rings a few levels around its strokes and never keeps
# black exactly black next to them: there, "fill" means brighter than mid-grey.
_LOSSY_FILL_LEVEL = 127
# Below this alpha a mask pixel is transparent (a mask painted on a transparent layer).
_OPAQUE_ALPHA = 128


def _lossy_head(head: bytes) -> bool:
    """JPEG, or WebP with a lossy (VP8) bitstream."""
    return head[:3] == b"\xff\xd8\xff" or (head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8 ")


def mask_from_pixels(rgb: np.ndarray, alpha: np.ndarray | None = None, *,
                     lossy: bool = False) -> np.ndarray:
    """bool [H, W] from a mask image: a pixel is to be filled when it is not black (any
    channel above 0; above 127 for ``lossy`` files) and not transparent (alpha >= 128)."""
    rgb = _check_rgb(rgb)
    level = np.maximum(np.maximum(rgb[:, :, 0], rgb[:, :, 1]), rgb[:, :, 2])
    fill = level > (_LOSSY_FILL_LEVEL if lossy else 0)
    if alpha is not None:
        fill &= np.asarray(alpha) >= _OPAQUE_ALPHA
    return fill


def is_lossy_image(data: bytes) -> bool:
    """True for JPEG or lossy-WebP bytes (their masks get the mid-grey fill rule)."""
    return _lossy_head(bytes(data[:16]))


def load_mask_file(src: str | os.PathLike[str] | bytes | Image.Image | np.ndarray | object,
                   size: tuple[int, int], *, name: str | None = None,
                   lossy: bool | None = None) -> np.ndarray:
    """A separate mask (IOPaint's convention) as bool [H, W] for an image of ``size``
    (width, height): white or any non-black pixel = fill, black or transparent = keep.

    ``src``: a path, encoded bytes, a PIL image, decoded ``imageio.Pixels``, or an array
    (bool [H, W] taken as is; uint8 [H, W] or [H, W, 3|4] through the non-black rule).
    ``lossy`` (default: from the file's format) applies the JPEG rule (brighter than 127).
    Raises ``InputError`` with one line for a non-image, a size that differs from the
    image's, or a mask with no fill pixel.
    """
    from deepcream.imageio import Pixels, load_pixels

    what = name or ("the mask" if not isinstance(src, str | os.PathLike) else f"mask {src}")
    if isinstance(src, np.ndarray):
        if src.dtype == bool and src.ndim == 2:
            fill = src.copy()
        elif src.dtype == np.uint8 and src.ndim in (2, 3):
            rgb = np.repeat(src[:, :, None], 3, axis=2) if src.ndim == 2 else src[:, :, :3]
            alpha = src[:, :, 3] if src.ndim == 3 and src.shape[2] == 4 else None
            fill = mask_from_pixels(rgb, alpha, lossy=bool(lossy))
        else:
            raise InputError(f"{what}: expected a bool [H, W] or uint8 image array, got "
                             f"{src.dtype} {src.shape}")
    else:
        if isinstance(src, Pixels):
            pixels = src
        else:
            if lossy is None:
                if isinstance(src, Image.Image):
                    lossy = src.format == "JPEG"
                elif isinstance(src, bytes | bytearray):
                    lossy = is_lossy_image(src)
                else:
                    try:
                        with open(Path(src), "rb") as fp:  # type: ignore[arg-type]
                            lossy = is_lossy_image(fp.read(16))
                    except OSError:
                        pass  # load_pixels reports it
            pixels = load_pixels(src, name=what)  # type: ignore[arg-type]
        fill = mask_from_pixels(pixels.rgb, pixels.alpha, lossy=bool(lossy))
    height, width = fill.shape
    if (width, height) != tuple(size):
        raise InputError(f"{what} is {width}x{height} but the image is {size[0]}x{size[1]}: "
                         "they must be the same size")
    if not fill.any():
        raise InputError(f"{what} marks nothing to fill: every pixel is black or transparent "
                         "(white or any non-black pixel = fill)")
    return fill
