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
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from deepcream.errors import InputError
from deepcream.options import DEFAULT_MASK_COLOR
from deepcream.regions import hole_window

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


# How messages name the settings they suggest. The library's wording names the Python
# keywords; the CLI and the server pass their own (flags, form fields) to ``pipeline.prepare``.
Wording = dict[str, str]
PYTHON_WORDING: Wording = {
    "tolerance": "mask_tolerance={n}",
    "antialias": "antialias=True",
    "color": "mask_color",
    "mask": "mask=",
    "and": ", ",  # between two settings
}


def _say(wording: Wording | None, key: str, **values: object) -> str:
    return (wording or PYTHON_WORDING)[key].format(**values)


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
    diff = cv2.absdiff(rgb, np.array([*color, 0], np.float64))  # a scalar: no full-size copy
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
    wording: Wording | None = None,
) -> str | None:
    """A one-line explanation when the pixels painted near the mask color are mostly not
    taken at ``tolerance`` (JPEG-saved or anti-aliased strokes read exactly), with the
    settings to rerun with; None when there is nothing to say.

    Only pixels that belong to strokes count: pixels within ``_HINT_MAX_TOLERANCE`` of the
    color lying within 2 px of a stroke pixel (one within ``tolerance``, within
    ``_SEED_DISTANCE`` or ``_SEED_EXCESS`` vivid). A picture's own near-green areas away
    from any stroke (a gradient sky, foliage) never trigger it, so exact-stroke PNGs stay
    silent. JPEG keeps a few pixels exact inside wide strokes, so "few taken, many near"
    (fewer than half) gets the hint too. Cost: a few OpenCV passes over the box holding the
    near pixels (~10 ms on 2604x2513).
    """
    rgb = _check_rgb(rgb)
    color = _check_color(color)
    tolerance = min(max(int(tolerance), 0), 255)
    if tolerance >= _HINT_MAX_TOLERANCE:
        return None
    near = _near(rgb, color, _HINT_MAX_TOLERANCE)
    if not near.any():
        return None
    ys, xs = hole_window(near, 2)
    sub = np.ascontiguousarray(rgb[ys, xs])
    near = near[ys, xs]
    taken = _near(sub, color, tolerance)
    found = int(np.count_nonzero(taken))
    if found * 2 > np.count_nonzero(near):  # most near pixels are taken (clean strokes)
        return None
    seeds = taken | _near(sub, color, _SEED_DISTANCE)
    excess = _excess(sub, color)
    if excess is not None:
        seeds |= excess >= _SEED_EXCESS
    related = near & _within(seeds, 2)
    count = int(np.count_nonzero(related))
    if count < min_pixels or found * 2 > count:
        return None
    dist = color_distance(sub[related].reshape(-1, 1, 3), color).ravel()
    counts = np.cumsum(np.bincount(dist, minlength=256))
    suggested = next(t for t in range(8, _HINT_MAX_TOLERANCE + 1, 8)
                     if counts[t] >= 0.9 * count or t == _HINT_MAX_TOLERANCE)
    if suggested <= tolerance:
        return None
    c = ",".join(str(v) for v in color)
    exact = "the exact mask color" if tolerance == 0 else f"a color within {tolerance} of"
    head = f"no pixel has {exact} ({c})" if found == 0 else f"only {found:,} pixels have {exact} ({c})"
    return (
        f"{head} but {int(counts[suggested]):,} pixels of the strokes are within {suggested} "
        f"of it (anti-aliased or JPEG-saved strokes?): rerun with "
        f"{_say(wording, 'tolerance', n=suggested)}{_say(wording, 'and')}"
        f"{_say(wording, 'antialias')}"
    )


def fringe_hint(
    rgb: np.ndarray,
    mask: np.ndarray,
    color: Color = DEFAULT_MASK_COLOR,
    *,
    min_pixels: int = 50,
    wording: Wording | None = None,
) -> str | None:
    """A one-line warning when a found mask has many anti-aliased edge pixels around it that
    would stay as a visible fringe without ``antialias``; None otherwise."""
    rgb = _check_rgb(rgb)
    color = _check_color(color)
    grown = grow_antialiased(rgb, mask, color, iterations=_GROW_ITERATIONS)
    extra = int(grown.sum() - np.count_nonzero(mask))
    if extra < min_pixels:
        return None
    return (
        f"{extra:,} pixels around the mask blend into the mask color (anti-aliased edges?) "
        f"and would stay as a fringe: add {_say(wording, 'antialias')}"
    )


def mask_warning(
    rgb: np.ndarray,
    mask: np.ndarray,
    color: Color = DEFAULT_MASK_COLOR,
    tolerance: int = 0,
    antialias: bool = False,
    *,
    wording: Wording | None = None,
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
    hint = near_mask_hint(rgb, color, tolerance, wording=wording)
    if hint is None and not antialias:
        hint = fringe_hint(rgb, mask, color, wording=wording)
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


# --- the default finder: painted strokes as paint programs and JPEG leave them ---------------

# A seed pixel is this close (max channel) to the mask color: JPEG keeps most of a stroke's
# interior within it, natural pictures almost never come this close to a pure mask color.
_SEED_DISTANCE = 12
# ... or carries this much mask excess (G - max(R, B) for #00ff00): thin strokes under 4:2:0
# chroma subsampling keep no pixel near the exact color, but stay this vivid; natural and
# UI greens stay below it (#00e640: 166, #32cd32: 155, #4caf50: 95).
_SEED_EXCESS = 190
# ... in runs thinner than 2 * _THIN_VIVID + 1 px, or within _VIVID_REACH px of a seed
# near the exact color.
_THIN_VIVID = 3
_VIVID_REACH = 32
# ... but not in the slivers of an art fill of a paint-like color (a fill between two
# outlines, JPEG-boosted): pixels joined to a wide art fill (away from the stroke's own
# blurred border, see _STROKE_RIM) through paint-like pixels within _ART_SLIVER_LIKE (every
# channel) of the color of the art's nearest pixel, or within _ART_SLIVER_FILL_LIKE of the
# color of the fill's own nearest pixel (the art's nearest pixel may be an outline beside
# the fill). A stroke that crosses or touches the fill is of another color and stays a seed.
_ART_SLIVER_LIKE = 40
_ART_SLIVER_FILL_LIKE = 20
# ... nor in the pieces of vivid, thin or ridge seeds that come within _THIN_ART_GAP px of
# such a fill or _SLIVER_GAP px of its slivers and neither hold a seed near the color nor
# run on twice _THIN_ART_GAP px away from the fill (pieces joined over gaps of up to
# 2 * _PIECE_JOIN px): the vivid corners and tips that JPEG's ringing leaves where a
# paint-like fill meets its outlines. A stroke passing by runs on.
_SLIVER_GAP = 4
_PIECE_JOIN = 3
# Thin strokes under 4:2:0 often keep no pixel that vivid either (their chroma is averaged
# with the background's): a ridge of excess >= _THIN_SEED_EXCESS standing _THIN_RIDGE above
# its surroundings (a 7 px top-hat), in a thin run, seeds too, unless it lies within
# _THIN_ART_GAP px of a wide art fill of a paint-like color (whose slivers between two
# outlines and ringing edges look the same).
_THIN_SEED_EXCESS = 170
_THIN_RIDGE = 100
_THIN_ART_GAP = 6
# A stroke resized after painting (and then saved as JPEG 4:2:0) is thinner and paler still:
# a ridge of excess >= _FAINT_SEED_EXCESS standing _FAINT_RIDGE above its surroundings seeds
# where it runs on for _FAINT_LENGTH px or more (a stroke's line; the art's short vivid
# specks and JPEG ringing do not).
_FAINT_SEED_EXCESS = 110
_FAINT_RIDGE = 70
_FAINT_LENGTH = 40
_FAINT_GAP = 3
# ... nor beside a wide area of at least this excess (a dull green fill of the art)
_FAINT_WIDE_EXCESS = 70
# ... and it must read as a blend of the mask color into its background (see _blend_like):
# the background is the mean over _FAINT_WINDOW px around of the pixels with excess below
# _FAINT_BACKGROUND
_FAINT_BACKGROUND = 60
_FAINT_WINDOW = 6
_FAINT_BLEND = 30.0
_FAINT_ALPHA = 0.3
_FAINT_BAND = 256  # rows per band of the background sums
# a faint ridge this close to other seeds must join them (64: a stretch 32-64 px beyond a
# stroke's seeds was seen to become a region of its own)
_FAINT_ISOLATION = 64
# Long ridges of excess (>= _BLEND_RIDGE_EXCESS, top-hat >= _BLEND_RIDGE_RIDGE, joined over
# _FAINT_GAP, at least _BLEND_RIDGE_LENGTH px long) that read as the mask color blended into
# their background, judged apart in chroma and in luma (see _blend_ridges), seed anywhere but
# within _THIN_ART_GAP of an art fill: thin strokes that JPEG 4:2:0 left paler, which may keep
# no pixel near the color at all. In a picture with no pixel near the color they are the only
# seeds: foliage and other art greens give vivid specks and short ridges, and lines of an art
# green lie off the blend line in chroma or are too dark / too light in luma.
_BLEND_RIDGE_EXCESS = 70
_BLEND_RIDGE_RIDGE = 50
_BLEND_RIDGE_LENGTH = 40
_BLEND_RIDGE_CHROMA_RESIDUAL = 4.0
_BLEND_RIDGE_ALPHA = 0.35
_BLEND_RIDGE_LUMA_CONTRAST = 20
_BLEND_RIDGE_LUMA_ALPHA = (0.6, 1.1)
# ... and the ridge's middle reaches the paint's luma: the 90th percentile of its luma
# positions is at least _BLEND_RIDGE_LUMA_MIDDLE (every stroke's ridge on the evaluation
# sets reaches 0.95 or more; lines of a paler art green, such as (48, 255, 48), often stop
# short of it). A thin stroke resized after painting is a blend over most of its ridge
# (median 0.45-0.6): its upper quartile at _BLEND_RIDGE_LUMA_THIN or more, with the 90th
# percentile within the window's top, stands for the median.
_BLEND_RIDGE_LUMA_MIDDLE = 0.9
_BLEND_RIDGE_LUMA_THIN = 0.8
# ... and not where more than _BLEND_RIDGE_BACKGROUND_SHARE of the pixels within
# _BLEND_RIDGE_BACKGROUND_REACH px carry excess _BLEND_RIDGE_BACKGROUND_EXCESS (a pale green or
# cyan fill: the mask would widen into it, and its own tint hides the stroke's)
_BLEND_RIDGE_BACKGROUND_EXCESS = 40
_BLEND_RIDGE_BACKGROUND_REACH = 9
_BLEND_RIDGE_BACKGROUND_SHARE = 0.6
# A blurred stroke's own border reads as an art fill within this many px of its pixels near
# the color; a blend ridge that touches art only there (a thin stroke crossing a wide one)
# still seeds when it runs on _BLEND_RIDGE_LENGTH px farther than _STROKE_RIM_AWAY px from
# them (resized then JPEG q90: thin strokes lost whole on real drawn art).
_STROKE_RIM = 6
_STROKE_RIM_AWAY = 12
# A stroke's core also follows such a ridge at lower levels (excess >= _ALONG_EXCESS, top-hat
# >= _ALONG_RIDGE) up to _ALONG_REACH px from a seed: thin 4:2:0 strokes fade over dark
# backgrounds.
_ALONG_EXCESS = 110
_ALONG_RIDGE = 70
_ALONG_REACH = 32
# ... and, where its chroma reads as the mask color blended into the background (see
# _pale_along), down to _ALONG_PALE_EXCESS: over dark grounds 4:2:0 leaves stretches of a
# 2-4 px stroke at excess 80-110, dark green with the background's luma; the art's own
# greens of that excess (mint, teal) lie off the blend line.
_ALONG_PALE_EXCESS = 80
_ALONG_PALE_RESIDUAL = 8.0
_CORE_EXCESS = 150
# Core: pixels this close, connected to a seed (hysteresis), no farther than _CORE_REACH px
# from one: the rest of a JPEG-smeared stroke, but not the green art next to it.
_CORE_DISTANCE = 64
_CORE_REACH = 16
# Edge: pixels carrying at least this much mask color over the neighbouring background
# ("mask excess", e.g. G - max(R, B) for #00ff00), within _EDGE_REACH px of the core:
# anti-aliased borders, JPEG chroma bleed and ringing.
_EDGE_EXCESS = 24
_EDGE_REACH = 3
_RING_EXCESS = 32
# Nothing of the soft mask lies farther than _MASK_REACH px (Euclidean) from the stroke's
# body (below), which lies inside the stroke to within a pixel: no fill may reach past ~6 px
# of a stroke.
_MASK_REACH = 5.0
# The body is the core widened ring by ring (1 px each, up to _BODY_RINGS) where most
# (_BODY_SHARE) of the ring's pixels within a _BODY_SHARE_WINDOW square read as paint
# blended over the background: JPEG's 4:2:0 chroma leaves the core 2-3 px inside the
# stroke, and the cap would stop the mask short of its bleed. A pixel reads as paint when
# its luma lies at least _BODY_LUMA_ALPHA (and at most 1.5) of the way from the local
# background's luma to the local paint's (when those differ by _BODY_LUMA_CONTRAST or more)
# and its excess at least _BODY_EXCESS_ALPHA_LUMA of the way; else (luma says nothing) when
# its excess lies _BODY_EXCESS_ALPHA of the way. Local = means over a _BODY_WINDOW square of
# the core (paint, binned in _BODY_CELL px cells) and of the pixels _BODY_RINGS + 1 to
# _BODY_BG_FAR px (Chebyshev) out from it (background), which must differ in excess by
# _BODY_MIN_CONTRAST. Chroma alone is blurred over 2 px by
# 4:2:0; the luma is not, and tells which side of the border a pixel lies on. Per-pixel
# tests go wrong by a pixel on textured backgrounds: the local share is what widens the
# body, and the cap from the body stays _MASK_REACH.
_BODY_RINGS = 3
_BODY_SHARE = 0.7
_BODY_SHARE_WINDOW = 15
_BODY_WINDOW = 9
_BODY_CELL = 3
_BODY_BG_FAR = 6
_BODY_LUMA_CONTRAST = 40
_BODY_LUMA_ALPHA = 0.3
_BODY_EXCESS_ALPHA_LUMA = 0.2
_BODY_EXCESS_ALPHA = 0.7
_BODY_MIN_CONTRAST = 60
# ... and where no more than this share of the background pixels is vivid (a lime fill, not
# JPEG bleed, which stays under _ART_EXCESS 4 px out).
_BODY_VIVID_BACKGROUND = 0.1
# The cap reaches _SOLID_REACH px (not _MASK_REACH) from the body's outer pixels (the core's
# border, or the outermost ring taken) that read as nearly unblended paint: luma at least
# _SOLID_ALPHA of the way to the paint's and excess too, or excess _SOLID_LUMA_EXCESS of the
# way when the luma lies between _SOLID_ALPHA and _SOLID_LUMA_MAX (or, where the luma says
# nothing, excess _SOLID_EXCESS_ALPHA of the way); and as many locally as _BODY_SHARE (see
# _SOLID_SHARE). Such a pixel lies in the stroke, so 6 px from it is 6 px from the stroke;
# under 4:4:4 the core reaches the stroke's edge, and the chroma bleed 5-6 px out is what
# the 5 px cap left. The luma is at full resolution under 4:2:0, the
# excess is not: a stroke's outermost full pixel shares its chroma with the background and
# reads ~0.5-0.7 of the way in excess, hence the lower excess bar where the luma tells, for
# pixels whose luma lies between the background's and the paint's, as a blend's does (one
# past the paint's is background whose local mean a dark outline pulled down).
_SOLID_REACH = 6.0
_SOLID_ALPHA = 0.7
_SOLID_LUMA_MAX = 1.0
_SOLID_LUMA_EXCESS = 0.55
_SOLID_EXCESS_ALPHA = 0.9
# ... "as many locally" is _SOLID_SHARE beside wide strokes (their border runs on straight:
# JPEG noise leaves ~0.6 of it reading as solid over pale green fills), _BODY_SHARE beside
# thin ones (4:2:0 bleed a pixel past a thin stroke can read as solid paint too; 6 px from
# it would be 7 px from the stroke).
_SOLID_SHARE = 0.6
# Tint cleanup, within the cap: pixels that still carry mask color (excess
# above _TINT_FLOOR) clearly above their local background (the lowest excess within
# _TINT_WINDOW px, + _TINT_MARGIN): JPEG chroma bleed and ringing decay away from a stroke,
# while pale green art next to it stays as green as its own background. Pixels with an
# excess above _TINT_GREEN (green to the eye, the issue's own measure) are taken within the
# cap whatever their background: over a pale green or cyan fill whose own excess is just
# under it (36-40), JPEG noise beside a stroke lifts pixels over it by a few levels, less
# than the margin. Either way no farther than the cap (6 px from the stroke).
_TINT_FLOOR = 32
_TINT_MARGIN = 12
_TINT_GREEN = 40
_TINT_WINDOW = 6
# A wide paint-like area whose median pixel (5x5) is farther than this from the mask color
# is art (a lime fill like #0ddf05 is as vivid as the paint): inside wide strokes, even at
# JPEG q60 4:2:0, the median pixel stays within ~15 of the color.
_ART_DISTANCE = 20
# ... where "paint-like" for this test also takes excess >= _ART_EXCESS: an art green just
# under _CORE_EXCESS (#1fc72f: 152) loses pixels below it to JPEG noise and would not read
# as one wide area.
_ART_EXCESS = 120
# ... but a pixel within _ART_DISTANCE of the color is paint where at least
# _ART_PAINT_FAR_COUNT of the 9 x 9 px around it are paint-like and farther than
# _ART_PAINT_FAR from the color: a stroke crossing a green art fill (#10e858 lies 92 from
# #00ff00; left out, the stroke fell apart into a region per stretch). JPEG's noise brings
# pixels of a lime fill (#1eff00: 30 from the color) that near too; such a fill is not far.
_ART_PAINT_FAR = 60
_ART_PAINT_FAR_COUNT = 27
# The closing that joins JPEG specks and ringing lobes to their stroke (radius, px).
_CLOSE_RADIUS = 3
# Enclosed non-mask islands up to this many pixels are JPEG damage inside a stroke.
_HOLE_PIXELS = 64
# find_paint works in windows around the candidate paint (pixels near the color, vivid, or
# on a faint ridge: every seed is one). Every pixel it reads or writes lies within this many
# px of a candidate: the core reaches _ALONG_REACH (32) from a seed, the body _BODY_RINGS (3)
# and the cap _SOLID_REACH (6) further, and the tint cleanup reads _TINT_WINDOW (6) around
# that; the seed steps read less (_VIVID_REACH + 2). Candidates of two windows lie more
# than twice this apart (else their boxes would overlap and merge), so the seed steps that
# look for other seeds (_VIVID_REACH 32, a faint ridge's _FAINT_ISOLATION 64) see only their
# own window's.
_WINDOW_MARGIN = _ALONG_REACH + _BODY_RINGS + int(_SOLID_REACH) + _TINT_WINDOW + 1
# Candidates are grouped on a grid of blocks this size; two windows merge when their union
# is at most this many pixels larger than the two (one window's fixed cost).
_WINDOW_BLOCK = 16
_WINDOW_COST = 50_000
# Exact strokes count as hard-edged (today's exact mask, unchanged) while fewer than this
# share of the pixels around them carry mask color.
_SOFT_EDGE_SHARE = 0.05
# Paint saved without loss keeps its exact color wherever the brush covered a pixel fully,
# and pixels near the color but not exact only in the one pixel ring of blends around it.
# JPEG scatters near-exact pixels over the whole stroke. When those away from the ring are
# at most this share of the exact count (PNG, palette and resized PNG of the evaluation set:
# at most 0.036; JPEG from 0.17 up, 4:4:4 and q95 included), with at least
# ``_LOSSLESS_MIN_EXACT`` exact pixels, seeds must lie within ``_LOSSLESS_SEED_REACH`` px of
# an exact pixel: vivid green away from every exact pixel is art (a neon outline, a lime
# ribbon cut by the picture's edge), not a stroke of its own ...
_LOSSY_NEAR_SHARE = 0.08
_LOSSLESS_MIN_EXACT = 256
_LOSSLESS_SEED_REACH = 2
# ... or read as the mask color blended into their background within this RGB distance
# (median over the run): a soft brush's stroke that never reached full cover.
_LOSSLESS_BLEND_RESIDUAL = 12.0
# ... against the least tinted pixel within this many px (the color under the brush)
_LOSSLESS_BACKGROUND_REACH = 4


@dataclass(frozen=True)
class PaintInfo:
    """How ``find_paint`` read the image: ``soft`` when the strokes were anti-aliased or
    lossy-saved (then ``mask`` was grown past the exact color) and how many pixels the exact
    color alone had (``exact``) and the final mask has (``pixels``)."""

    soft: bool
    exact: int
    pixels: int


def _channel_split(color: Color) -> tuple[list[int], list[int]] | None:
    """(strong channels, weak channels) of the mask color ([1], [0, 2] for #00ff00); None
    for colors without a clear split (greys)."""
    high = [k for k in range(3) if color[k] >= 128]
    low = [k for k in range(3) if color[k] < 128]
    if not high or not low or min(color[k] for k in high) - max(color[k] for k in low) < 128:
        return None
    return high, low


def _extremes(rgb: np.ndarray, color: Color) -> tuple[np.ndarray, np.ndarray] | None:
    """(hi, lo), contiguous uint8 [H, W]: the lowest of the mask color's strong channels and
    the highest of its weak ones (G and max(R, B) for #00ff00); None for colors without a
    clear split (greys)."""
    split = _channel_split(color)
    if split is None:
        return None
    high, low = split
    # channel views with numpy: several times faster than cv2.split on large images
    hi = rgb[:, :, high[0]]
    for k in high[1:]:
        hi = np.minimum(hi, rgb[:, :, k])
    lo = rgb[:, :, low[0]]
    for k in low[1:]:
        lo = np.maximum(lo, rgb[:, :, k])
    return np.ascontiguousarray(hi), np.ascontiguousarray(lo)


def _excess(rgb: np.ndarray, color: Color) -> np.ndarray | None:
    """uint8 [H, W]: how much more of the mask color's strong channels than of its weak
    ones a pixel has, clipped at 0 (G - max(R, B) for #00ff00); None for colors without a
    clear split (greys), whose edges are grown by blend fitting instead."""
    extremes = _extremes(rgb, color)
    return None if extremes is None else cv2.subtract(*extremes)  # saturates at 0


def _distance_and_excess(rgb: np.ndarray, color: Color) -> tuple[np.ndarray, np.ndarray | None]:
    """(``color_distance(rgb, color)``, ``_excess(rgb, color)``), from the same channel
    extremes when the color's channels are all 0 or 255 (#00ff00: the distance is
    max(max(R, B), 255 - G))."""
    extremes = _extremes(rgb, color)
    if extremes is None:
        return color_distance(rgb, color), None
    hi, lo = extremes
    excess = cv2.subtract(hi, lo)
    if any(c not in (0, 255) for c in color):
        return color_distance(rgb, color), excess
    return cv2.max(lo, cv2.bitwise_not(hi)), excess


def _near(rgb: np.ndarray, color: Color, distance: int) -> np.ndarray:
    """bool [H, W]: every channel within ``distance`` of ``color`` (one cv2 pass)."""
    return _tolerant_mask(rgb, color, distance)


def _exact(rgb: np.ndarray, color: Color) -> np.ndarray:
    """bool [H, W]: the pixels of exactly ``color``: ``_near`` at distance 0, as True/False
    values (``inRange`` sets 255, and this can be ``find_paint``'s returned mask)."""
    return _near(rgb, color, 0).view(np.uint8) != 0


def _outer_excess(excess: np.ndarray, inside: np.ndarray, ys: np.ndarray, xs: np.ndarray
                  ) -> np.ndarray:
    """Median excess of the pixels 2 px out from (ys, xs) that are not ``inside``: the
    background a border pixel would be blended with."""
    h, w = excess.shape
    values = []
    for dy, dx in _BG_OFFSETS[8:]:  # the 8 directions at 2 px
        ny, nx = np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)
        v = excess[ny, nx].astype(np.float32)
        v[inside[ny, nx]] = np.nan
        values.append(v)
    # np.nanmedian, written out: over 8 values it takes numpy's masked-array path (and
    # imports numpy.ma, ~15 ms). NaNs sort last; the median is the mean of the middle two of
    # the n values that are not NaN; none at all gives 255.
    stacked = np.sort(np.stack(values, axis=1), axis=1)
    n = np.count_nonzero(~np.isnan(stacked), axis=1)
    lo = np.take_along_axis(stacked, np.maximum((n - 1) // 2, 0)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(stacked, (n // 2)[:, None], axis=1)[:, 0]
    out = (lo + hi) / np.float32(2)
    out[n == 0] = 255.0
    return out


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _reconstruct(seed: np.ndarray, allowed: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """Pixels of ``allowed`` connected to ``seed`` (hysteresis by connected components)."""
    count, labels = cv2.connectedComponents(allowed.view(np.uint8), connectivity=connectivity)
    keep = np.zeros(count, bool)
    keep[labels[seed & allowed]] = True  # a scatter: cheaper than np.unique on many pixels
    keep[0] = False
    if count <= 256:  # a uint8 lookup table: ~3x faster than numpy's gather on int32 labels
        table = np.zeros(256, np.uint8)
        table[:count] = keep
        return cv2.LUT(cv2.convertScaleAbs(labels), table).view(bool)
    return keep[labels]


def _square(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))


def _within(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` px of ``mask`` (Chebyshev: a square dilation, which OpenCV
    runs separably, so large radii cost no more than small ones)."""
    return cv2.dilate(mask.view(np.uint8), _square(radius)).view(bool)


def _wide_parts(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` within ``_THIN_VIVID + 1`` px (Chebyshev) of a place where it
    is at least ``2 * _THIN_VIVID + 1`` px thick: its wide areas and their borders, not its
    thin runs."""
    return _within(cv2.erode(mask.view(np.uint8), _square(_THIN_VIVID)).view(bool),
                   _THIN_VIVID + 1)


def _drop_specks(mask: np.ndarray) -> np.ndarray:
    """``mask`` without groups of one or two pixels: a pixel stays when its 3x3 block holds
    at least 3 mask pixels, or it touches such a pixel (one box filter, no labelling)."""
    counts = cv2.boxFilter(mask.view(np.uint8), -1, (3, 3), normalize=False,
                           borderType=cv2.BORDER_CONSTANT)
    solid = counts >= 3
    return mask & cv2.dilate(solid.view(np.uint8), _disk(1)).view(bool)


def _fill_small_holes(mask: np.ndarray, max_pixels: int) -> np.ndarray:
    """Close enclosed islands of non-mask pixels up to ``max_pixels`` (not reached by a
    4-connected flood from outside the mask)."""
    h, w = mask.shape
    outside = np.zeros((h + 2, w + 2), np.uint8)
    outside[1:-1, 1:-1] = mask
    flood_mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(outside, flood_mask, (0, 0), 2, flags=4)
    holes = outside[1:-1, 1:-1] == 0
    if not holes.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(holes.view(np.uint8),
                                                               connectivity=4)
    small = stats[:, cv2.CC_STAT_AREA] <= max_pixels
    small[0] = False
    return mask | small[labels]


def find_paint(rgb: np.ndarray, color: Color = DEFAULT_MASK_COLOR) -> tuple[np.ndarray, PaintInfo]:
    """The default mask: the strokes painted in ``color``, however they were saved.

    Hard-edged exact strokes (a PNG from a pixel brush) give exactly the exact-color mask, as
    DeepCreamPy. Otherwise (anti-aliased brush, JPEG at any quality and chroma subsampling,
    a resize after painting, a palette) the mask is grown by hysteresis: seeds (within
    ``_SEED_DISTANCE`` of the color, or ``_SEED_EXCESS`` vivid and within ``_VIVID_REACH``
    px of such a pixel, in groups of at least 3 pixels), the connected paint-like pixels up
    to ``_CORE_REACH`` px from a seed (wide areas of another flat color, such as a lime fill,
    excluded), then the edge pixels still carrying mask color (``_EDGE_EXCESS``) up to
    ``_EDGE_REACH`` px further, the pixels still tinted toward the color above their local
    background (JPEG bleed and ringing), then a closing and small enclosed holes; nothing
    farther than ``_MASK_REACH`` px (Euclidean) from the stroke's body (the core widened
    where its border reads as paint) or ``_SOLID_REACH`` px from the body's solid border.
    Strokes saved without loss (``_lossless_strokes``) seed only within
    ``_LOSSLESS_SEED_REACH`` px of an exact pixel or in runs that read as blends of the
    color (``_lossless_seeds``), and their anti-aliased ring beside the exact pixels is
    added at the end (``_add_blend_ring``).
    So JPEG specks merge into their stroke, and the mask reaches at most
    ``_CORE_REACH + _BODY_RINGS + _SOLID_REACH`` px into neighbouring art of the paint's
    own color.

    Every step after the first whole-image color tests works in windows around the
    candidate paint (see ``_windows``): what it reads and writes lies within
    ``_WINDOW_MARGIN`` px of a candidate pixel, so the mask is the one whole-image
    morphology gives, for the cost of the strokes' surroundings only.
    """
    rgb = _check_rgb(rgb)
    color = _check_color(color)
    exact = _exact(rgb, color)
    n_exact = int(np.count_nonzero(exact))
    # Crisp exact strokes are taken as they are (vivid pixels elsewhere are the picture's).
    # Decided first, around the exact strokes only: it is the common case (a PNG from a
    # pixel brush) and needs none of the seed search below, nor its whole-image color tests.
    if n_exact and _hard_edged_around(rgb, exact, color):
        return exact, PaintInfo(False, n_exact, n_exact)
    # every color test below is a threshold on these two (one pass over the image each)
    distance, excess = _distance_and_excess(rgb, color)
    # Seeds near the color are all kept, specks too (only vivid ones are dropped when
    # alone): a thin stroke resized and then saved as JPEG may keep only specks near it.
    near = distance <= _SEED_DISTANCE
    lone = not near.any()
    if lone and excess is None:
        return exact, PaintInfo(False, n_exact, n_exact)
    # every seed is near the color, at least this vivid, or on a faint ridge of excess (a
    # thin stroke resized after painting may have no pixel of the first two)
    ridge = None
    candidates = near
    if excess is not None:
        ridge = cv2.morphologyEx(excess, cv2.MORPH_TOPHAT, _square(_THIN_VIVID))
        candidates = (excess >= _BLEND_RIDGE_EXCESS) & (ridge >= _BLEND_RIDGE_RIDGE)
        if not lone:  # (else only those ridges can seed: see _blend_ridges)
            candidates |= near | (excess >= min(_SEED_EXCESS, _THIN_SEED_EXCESS))
    lossless = (excess is not None and n_exact >= _LOSSLESS_MIN_EXACT
                and _lossless_strokes(near, exact, n_exact))
    windows = [_Window(ys, xs) for ys, xs in _windows(candidates, _WINDOW_MARGIN)]
    for win in windows:
        # (a copy: the seed stage grows the seeds in place, and a window covering the whole
        # image would otherwise crop to ``near`` itself)
        win.seeds = win.crop(near).copy()
    if excess is not None:
        for win in windows:
            win.vivid_stage(rgb, distance, excess, ridge, color, lone,
                            exact if lossless else None)
    windows = [win for win in windows if win.seeds.any()]
    if not windows:
        return exact, PaintInfo(False, n_exact, n_exact)
    # The box the mask can reach, as one whole-image box around all seeds: its edges and
    # the 3 px cells of the border statistics are set by it (the windows are cut to it).
    rects = [(win.ys.start, win.xs.start, cv2.boundingRect(win.seeds.view(np.uint8)))
             for win in windows]
    top = min(y0 + y for y0, _, (_, y, _, _) in rects)
    left = min(x0 + x for _, x0, (x, _, _, _) in rects)
    bottom = max(y0 + y + rh for y0, _, (_, y, _, rh) in rects)
    right = max(x0 + x + rw for _, x0, (x, _, rw, _) in rects)
    margin = _CORE_REACH + _BODY_RINGS + int(_MASK_REACH) + 4
    h, w = exact.shape
    box = (max(top - margin, 0), max(left - margin, 0),
           min(bottom + margin, h), min(right + margin, w))
    mask = np.zeros(exact.shape, bool)
    placed = []
    for win in windows:
        ys, xs, grown = win.grow(rgb, distance, excess, color, box, lossless)
        mask[ys, xs] = grown
        placed.append((ys, xs))
    mask |= exact
    if lossless:
        for ys, xs in placed:
            _add_blend_ring(rgb[ys, xs], exact[ys, xs], mask[ys, xs], color)  # (views)
    for ys, xs in placed:
        _bridge_diagonals(mask[ys, xs])  # a view: every mask pixel lies in a window
    return mask, PaintInfo(True, n_exact, int(np.count_nonzero(mask)))


class _Window:
    """One window of ``find_paint``: its slices, and the seed stage's results on its crop."""

    def __init__(self, ys: slice, xs: slice) -> None:
        self.ys, self.xs = ys, xs
        self.seeds: np.ndarray = np.zeros(0, bool)
        self.paint_like: np.ndarray | None = None
        self.ridge: np.ndarray | None = None
        self.near_art: np.ndarray | None = None

    def crop(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[self.ys, self.xs])

    def vivid_stage(self, rgb: np.ndarray, distance: np.ndarray, excess: np.ndarray,
                    ridge: np.ndarray, color: Color, lone: bool = False,
                    lossless_exact: np.ndarray | None = None) -> None:
        """Vivid pixels seed too: in thin runs (a thin stroke under 4:2:0 has no pixel near
        the exact color), or near paint of (almost) the exact color. A wide vivid area far
        from such paint is a lime fill in the art (#1eff00: excess 225), not a stroke.
        Long blend-like ridges seed too (see ``_blend_ridges``); in a ``lone`` picture (no
        pixel near the color anywhere) they are the only seeds. ``lossless_exact``: the
        image's exact pixels when its strokes were saved without loss (``_lossless_seeds``
        then keeps the seeds)."""
        ex, dist = self.crop(excess), self.crop(distance)
        paint_like = (dist <= _CORE_DISTANCE) | (ex >= _CORE_EXCESS)
        art = _art_fill(dist, paint_like, ex)
        self.paint_like = paint_like & ~art
        self.ridge = self.crop(ridge)
        self.near_art = _within(art, _THIN_ART_GAP)
        sub = self.crop(rgb)
        avoid, rim = self.near_art, None
        art_away = art
        if not lone:
            # a blurred stroke's own border reads as an art fill: near the stroke, art
            # only keeps a ridge out if it runs on away from the stroke (``_STROKE_RIM``;
            # ``self.seeds`` still holds only the pixels near the color here)
            close = _within(self.seeds, _STROKE_RIM)
            art_away = art & ~close
            if (art & close).any():
                avoid = _within(art_away, _THIN_ART_GAP)
                rim = self.near_art & ~avoid
        blends = _blend_ridges(sub, ex, self.ridge, color, avoid=avoid, rim=rim,
                               near=self.seeds)
        if lone:
            # vivid specks and short ridges with no paint near the color are the art's
            self.seeds = blends
            return
        fill = art_away & paint_like
        slivers = _art_slivers(sub, art_away, paint_like, fill)
        # a speck near the color on a sliver is JPEG's ringing of the fill, not paint
        self.seeds &= ~(_within(slivers, 1) & ~_drop_specks(self.seeds))
        vivid = _drop_specks(ex >= _SEED_EXCESS)
        found = vivid & ~slivers & (~_wide_parts(vivid) | _within(self.seeds, _VIVID_REACH))
        found |= (_thin_seeds(sub, ex, self.ridge, self.near_art, color, self.seeds)
                  & ~slivers)
        found |= blends
        self.seeds |= _off_art_pieces(found, self.seeds, fill, slivers)
        if lossless_exact is not None:
            self.seeds = _lossless_seeds(sub, ex, self.seeds, self.crop(lossless_exact),
                                         self.near_art, color)

    def grow(self, rgb: np.ndarray, distance: np.ndarray, excess: np.ndarray | None,
             color: Color, box: tuple[int, int, int, int], lossless: bool = False
             ) -> tuple[slice, slice, np.ndarray]:
        """(ys, xs, grown): the soft mask on the window cut to ``box`` (top, left, bottom,
        right). ``lossless`` (see ``_LOSSY_NEAR_SHARE``): the core does not follow faint
        ridges away from its seeds (that is for a thin stroke broken up by JPEG)."""
        y0, x0 = max(self.ys.start, box[0]), max(self.xs.start, box[1])
        y1, x1 = min(self.ys.stop, box[2]), min(self.xs.stop, box[3])
        ys, xs = slice(y0, y1), slice(x0, x1)
        inner = (slice(y0 - self.ys.start, y1 - self.ys.start),
                 slice(x0 - self.xs.start, x1 - self.xs.start))
        sub = np.ascontiguousarray(rgb[ys, xs])
        whole = (y0, x0, y1, x1) == (self.ys.start, self.xs.start, self.ys.stop, self.xs.stop)
        seeds = self.seeds if whole else np.ascontiguousarray(self.seeds[inner])
        ex = None if excess is None else np.ascontiguousarray(excess[ys, xs])
        if self.paint_like is None:
            dist = np.ascontiguousarray(distance[ys, xs])
            paint_like = dist <= _CORE_DISTANCE
            if ex is not None:
                paint_like |= ex >= _CORE_EXCESS
            paint_like &= ~_art_fill(dist, paint_like, ex)
        else:
            paint_like = self.paint_like[inner]
        allowed = paint_like & _within(seeds, _CORE_REACH)
        if self.ridge is not None and not lossless:
            # A thin stroke under 4:2:0 found in pieces: its paler stretches between them
            # still stand out as a ridge; the core follows it a bounded distance, away
            # from art.
            along = ((self.ridge[inner] >= _ALONG_RIDGE) & _within(seeds, _ALONG_REACH)
                     & ~self.near_art[inner])
            allowed |= along & (ex >= _ALONG_EXCESS)
            pale = along & (ex >= _ALONG_PALE_EXCESS) & (ex < _ALONG_EXCESS)
            if pale.any():
                allowed |= _pale_along(sub, ex, pale, color)
        core = _reconstruct(seeds, allowed)
        reach = _within(core, _EDGE_REACH)
        if ex is not None:
            grown = core | _reconstruct(core, reach & (ex > _EDGE_EXCESS))
            # JPEG ringing islands that still read as mask-colored, widened by 2 px so
            # they join their stroke's region
            islands = reach & (ex > _RING_EXCESS) & ~grown
            if islands.any():
                grown |= _within(islands, 2) & reach
        else:
            grown = grow_antialiased(sub, core, color) & reach
        # the border statistics' 3 px cells are laid from the box's corner
        phase = ((y0 - box[0]) % _BODY_CELL, (x0 - box[1]) % _BODY_CELL)
        body, solid = (core, None) if ex is None else _stroke_body(
            sub, core, ex, reach if _BODY_RINGS == _EDGE_REACH else _within(core, _BODY_RINGS),
            phase)
        allowed, rim = _cap(body, solid)
        if ex is not None:
            grown = _tint_cleanup(ex, grown, allowed)
        # Regions are 4-connected: a closing joins diagonal touches and specks a few pixels
        # apart into their stroke.
        grown = cv2.morphologyEx(grown.view(np.uint8), cv2.MORPH_CLOSE,
                                 _disk(_CLOSE_RADIUS)).view(bool)
        grown = _fill_small_holes(grown, _HOLE_PIXELS)
        grown &= allowed
        if rim is not None:
            # the 1 px rim the solid border adds keeps only pixels that touch the rest of
            # the mask: a bleed pixel there on its own would be a region of its own
            inner_mask = grown & ~rim
            grown = inner_mask | (grown & rim
                                  & cv2.dilate(inner_mask.view(np.uint8), _CROSS).view(bool))
        return ys, xs, grown


def _windows(candidates: np.ndarray, margin: int) -> list[tuple[slice, slice]]:
    """Disjoint boxes (row and column slices) holding every pixel within ``margin`` px of a
    ``candidates`` pixel, and no candidate pixel closer than ``margin`` to their edges
    (but at the image's edges). Candidates are grouped on a grid of _WINDOW_BLOCK px
    blocks; boxes that overlap, or whose union costs little more than the two, merge."""
    h, w = candidates.shape
    b = _WINDOW_BLOCK
    occupied = _blocks_any(candidates, b)
    if not occupied.any():
        return []
    reach = -(-margin // b)
    count, labels = cv2.connectedComponents(cv2.dilate(occupied, _square(reach)),
                                            connectivity=8)
    by, bx = np.nonzero(occupied)
    top, left, bottom, right = _label_boxes(by, bx, labels[by, bx], count)
    boxes = [(max(int(t) * b - margin, 0), max(int(lf) * b - margin, 0),
              min((int(bt) + 1) * b + margin, h), min((int(r) + 1) * b + margin, w))
             for t, lf, bt, r in zip(top, left, bottom, right, strict=True) if r >= 0]
    boxes = _merge_boxes(boxes)
    return [(slice(t, bt), slice(lf, r)) for t, lf, bt, r in boxes]


def _label_boxes(ys: np.ndarray, xs: np.ndarray, lab: np.ndarray, count: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(top, left, bottom, right) per label 0..count-1 of the pixels (ys, xs) labelled
    ``lab``, inclusive; a label with no pixel has bottom = right = -1."""
    top = np.full(count, 1 << 62, np.int64)  # (no overflow in bottom - top)
    left = top.copy()
    bottom = np.full(count, -1, np.int64)
    right = bottom.copy()
    np.minimum.at(top, lab, ys)
    np.minimum.at(left, lab, xs)
    np.maximum.at(bottom, lab, ys)
    np.maximum.at(right, lab, xs)
    return top, left, bottom, right


def _blocks_any(mask: np.ndarray, b: int) -> np.ndarray:
    """uint8 [ceil(H / b), ceil(W / b)]: 1 where the b x b block of ``mask`` holds a pixel
    (maxima over contiguous rows first: numpy reduces those at memory speed)."""
    h, w = mask.shape
    grid = (-(-h // b), -(-w // b))
    rows = np.zeros((grid[0], grid[1] * b), np.uint8)
    full = h // b * b
    rows[:h // b, :w] = mask[:full].view(np.uint8).reshape(h // b, b, w).max(axis=1)
    if full < h:
        rows[h // b, :w] = mask[full:].view(np.uint8).max(axis=0)
    return rows.reshape(grid[0], grid[1], b).max(axis=2)


def _merge_boxes(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Merge (top, left, bottom, right) boxes until none overlap; also pairs of boxes whose
    union is not much larger than the two (a window's fixed cost is worth ~_WINDOW_COST
    pixels), each box with the one it costs least to join, when that choice is mutual.
    Vectorized over all pairs: a page of scattered green specks gives hundreds of boxes."""
    b = np.array(boxes, np.int64).reshape(-1, 4)
    while len(b) > 1:
        top, left, bottom, right = (b[:, k] for k in range(4))
        overlap = ((top[:, None] < bottom[None, :]) & (top[None, :] < bottom[:, None])
                   & (left[:, None] < right[None, :]) & (left[None, :] < right[:, None]))
        if np.count_nonzero(overlap) == len(b):  # only the diagonal
            area = (bottom - top) * (right - left)
            union = ((np.maximum(bottom[:, None], bottom[None, :])
                      - np.minimum(top[:, None], top[None, :]))
                     * (np.maximum(right[:, None], right[None, :])
                        - np.minimum(left[:, None], left[None, :])))
            extra = union - area[:, None] - area[None, :]
            np.fill_diagonal(extra, np.iinfo(np.int64).max)
            best = extra.argmin(axis=1)
            index = np.arange(len(b))
            join = (extra[index, best] <= _WINDOW_COST) & (best[best] == index)
            if not join.any():
                break
            overlap = np.eye(len(b), dtype=bool)
            overlap[index[join], best[join]] = True
        # groups of boxes joined through each other: each takes the lowest index it reaches
        # (a few passes over the pair matrix; scipy's csgraph costs ~0.4 s to import)
        labels = np.arange(len(b))
        joined = overlap | overlap.T
        while True:
            reached = np.where(joined, labels[None, :], len(b)).min(axis=1)
            if np.array_equal(reached, labels):
                break
            labels = reached
        _, labels = np.unique(labels, return_inverse=True)
        count = int(labels.max()) + 1
        merged = np.empty((count, 4), np.int64)
        for k, reduce in enumerate((np.minimum, np.minimum, np.maximum, np.maximum)):
            merged[:, k] = b[:, k].max() if k < 2 else b[:, k].min()
            reduce.at(merged[:, k], labels, b[:, k])
        b = merged
    return [tuple(int(v) for v in row) for row in b]


def _lossless_seeds(rgb: np.ndarray, excess: np.ndarray, seeds: np.ndarray,
                    exact: np.ndarray, near_art: np.ndarray, color: Color) -> np.ndarray:
    """``seeds`` of a picture saved without loss: those within ``_LOSSLESS_SEED_REACH`` px
    of an exact pixel, and the runs farther away that read as the mask color blended into
    the least tinted pixel near them (``_blend_like`` with ``_LOSSLESS_BLEND_RESIDUAL`` and
    ``_LOSSLESS_BACKGROUND_REACH``: a soft brush that never reached full cover), outside
    ``near_art``. Vivid art lines of a color of their own are
    not such blends."""
    close = _within(exact, _LOSSLESS_SEED_REACH)
    far = seeds & ~close
    if not far.any():
        return seeds
    n, labels = cv2.connectedComponents(far.view(np.uint8), connectivity=8)
    ok = _blend_like(rgb, excess, far, labels, n, color, _LOSSLESS_BLEND_RESIDUAL,
                     lowest_within=_LOSSLESS_BACKGROUND_REACH)
    ok[0] = False
    # (not beside art: the tip of a green fill, brightened by a downscale's ringing)
    return (seeds & close) | (far & ok[labels] & ~near_art)


def _lowest_neighbour(rgb: np.ndarray, excess: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                      radius: int) -> np.ndarray:
    """float32 [N, 3]: per pixel (ys, xs), the color of the pixel with the least mask excess
    within ``radius`` px (Chebyshev): one real pixel of what a soft stroke is blended over.
    A mean over the surroundings mixes the art on both sides of the stroke, and a lossless
    blend is exact only against the color it was made with."""
    h, w = excess.shape
    best = np.full(len(ys), 256, np.int16)
    by, bx = ys.copy(), xs.copy()
    for dy in range(-radius, radius + 1):
        ny = np.clip(ys + dy, 0, h - 1)
        for dx in range(-radius, radius + 1):
            nx = np.clip(xs + dx, 0, w - 1)
            e = excess[ny, nx].astype(np.int16)
            lower = e < best
            best[lower] = e[lower]
            by[lower], bx[lower] = ny[lower], nx[lower]
    return rgb[by, bx].astype(np.float32)


def _add_blend_ring(rgb: np.ndarray, exact: np.ndarray, mask: np.ndarray, color: Color
                    ) -> None:
    """Add to ``mask`` (in place) the pixels beside an exact one that blend the mask color
    with a nearby background: a lossless brush's anti-aliased ring. Over an art fill of a
    green (which the core leaves out) a thin stroke would otherwise keep only its exact
    pixels, in specks a pixel apart, each a region of its own."""
    ring = _within(exact, 1) & ~mask
    ys, xs = _pixels(ring.view(np.uint8))
    if len(ys):
        blend = _blend_candidates(rgb, mask, ys, xs, color)
        mask[ys[blend], xs[blend]] = True


def _bridge_diagonals(mask: np.ndarray) -> None:
    """Join pixels that touch only diagonally with one pixel, in place: regions are
    4-connected, and the clip to the core's reach can leave such single pixels."""
    for a, b, c, d in (((slice(None, -1), slice(None, -1)), (slice(1, None), slice(1, None)),
                        (slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))),
                       ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1)),
                        (slice(None, -1), slice(None, -1)), (slice(1, None), slice(1, None)))):
        touch = mask[a] & mask[b] & ~mask[c] & ~mask[d]
        if touch.any():
            mask[c] |= touch


def _thin_seeds(rgb: np.ndarray, excess: np.ndarray, ridge: np.ndarray, near_art: np.ndarray,
                color: Color, seeds: np.ndarray) -> np.ndarray:
    """Seeds on thin ridges of mask excess, not in ``near_art`` (see ``_THIN_SEED_EXCESS``
    and ``_FAINT_SEED_EXCESS``; faint ones only far from the other ``seeds`` or joining
    them)."""
    thin = _drop_specks((excess >= _THIN_SEED_EXCESS) & (ridge >= _THIN_RIDGE))
    faint = (excess >= _FAINT_SEED_EXCESS) & (ridge >= _FAINT_RIDGE) & ~thin
    if faint.any():
        # not beside a wide area of a dull green (_FAINT_WIDE_EXCESS): the slivers of a green
        # art fill between two outlines are such ridges
        faint &= ~_within(_wide_parts(excess >= _FAINT_WIDE_EXCESS), _THIN_ART_GAP)
        # (a stroke's own soft edge beside its seeds would chain a sliver of art to it)
        faint &= ~_within(seeds, 2)
    if faint.any():
        # (its pieces, broken where 4:2:0 chroma blocks average it away, joined first)
        joined = cv2.dilate(faint.view(np.uint8), _square(_FAINT_GAP))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
        long_ = extent >= _FAINT_LENGTH
        long_[0] = False
        if seeds.any():
            # ... and not a stretch near other seeds that it does not join (it would be a
            # region of its own beside its stroke's)
            near = np.unique(labels[_within(seeds, _FAINT_ISOLATION) & (joined > 0)])
            joins = np.unique(labels[seeds & (joined > 0)])
            long_[np.setdiff1d(near, joins)] = False
        if long_.any():
            faint &= long_[labels]
            long_ &= _blend_like(rgb, excess, faint, labels, n, color)
            thin |= faint & long_[labels]
    if not thin.any():
        return thin
    thin &= ~_wide_parts(thin)
    if thin.any():
        thin &= ~near_art
    return thin


def _local_background(rgb: np.ndarray, excess: np.ndarray, ys: np.ndarray, xs: np.ndarray
                      ) -> np.ndarray:
    """float32 [N, 3]: per pixel (ys, xs), the mean color of the pixels within
    _FAINT_WINDOW px (Chebyshev) that carry little mask color (excess below
    _FAINT_BACKGROUND): the background a stroke's pixel would be a blend with."""
    bg = np.zeros((len(ys), 3), np.float32)
    if len(ys) == 0:
        return bg
    size = (2 * _FAINT_WINDOW + 1, 2 * _FAINT_WINDOW + 1)
    m, h = _FAINT_WINDOW, excess.shape[0]
    # in bands of rows: float sums over a whole large window would cost gigabytes
    for r0 in range(int(ys.min()), int(ys.max()) + 1, _FAINT_BAND):
        at = (ys >= r0) & (ys < r0 + _FAINT_BAND)
        if not at.any():
            continue
        b0, b1 = max(r0 - m, 0), min(r0 + _FAINT_BAND + m, h)
        weight = (excess[b0:b1] < _FAINT_BACKGROUND).astype(np.float32)
        norm = cv2.boxFilter(weight, -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
        by, bx = ys[at] - b0, xs[at]
        for k in range(3):
            total = cv2.boxFilter(rgb[b0:b1, :, k].astype(np.float32) * weight, -1, size,
                                  normalize=False, borderType=cv2.BORDER_CONSTANT)
            bg[at, k] = total[by, bx] / np.maximum(norm[by, bx], 1.0)
    return bg


def _blend_position(offset: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, residual) per row: how far ``offset`` (pixel - background) lies along
    ``line`` (mask color - background), clipped to 0..1, and its distance from that line."""
    alpha = np.clip(np.sum(offset * line, axis=1) / np.maximum(np.sum(line * line, axis=1), 1.0),
                    0.0, 1.0)
    return alpha, np.linalg.norm(offset - alpha[:, None] * line, axis=1)


def _blend_like(rgb: np.ndarray, excess: np.ndarray, faint: np.ndarray, labels: np.ndarray,
                n: int, color: Color, max_residual: float = _FAINT_BLEND,
                lowest_within: int | None = None) -> np.ndarray:
    """Per label (bool [n]): whether its ``faint`` pixels read as the mask color blended
    into their background: pixel - background = alpha x (color - background) up to a median
    residual of ``max_residual``, with a median alpha of at least _FAINT_ALPHA. The
    background is the mean of the nearby pixels that carry little mask color
    (``_local_background``), or with ``lowest_within`` the least tinted pixel within that
    many px (``_lowest_neighbour``). A resized stroke is such a blend; a thin line of a green
    of the art's own often is not (#32cd32 or #7cfc00 on white or on a dark ground; #32cd32
    on orange does pass)."""
    ys, xs = np.nonzero(faint)
    lab = labels[ys, xs]
    pix = rgb[ys, xs].astype(np.float32)
    bg = (_local_background(rgb, excess, ys, xs) if lowest_within is None
          else _lowest_neighbour(rgb, excess, ys, xs, lowest_within))
    alpha, residual = _blend_position(pix - bg, np.asarray(color, np.float32)[None, :] - bg)
    return ((_medians_by_label(residual, lab, n) <= max_residual)
            & (_medians_by_label(alpha, lab, n) >= _FAINT_ALPHA))


# JPEG's color transform (BT.601, full range): luma, then the two chroma axes.
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                 [0.5, -0.418688, -0.081312]], np.float32)


def _blend_ridges(rgb: np.ndarray, excess: np.ndarray, ridge: np.ndarray, color: Color,
                  avoid: np.ndarray | None = None, rim: np.ndarray | None = None,
                  near: np.ndarray | None = None) -> np.ndarray:
    """Seeds on thin strokes that may keep no pixel near the mask color (see
    ``_BLEND_RIDGE_*``): the ridges of mask excess that run on for ``_BLEND_RIDGE_LENGTH``
    px, touch no ``avoid`` pixel, and read as the mask color blended into their local
    background: in chroma, on the line from the background's chroma to the color's (median
    distance <= ``_BLEND_RIDGE_CHROMA_RESIDUAL``, median position >=
    ``_BLEND_RIDGE_ALPHA``), and where the luma tells (the background's differs from the
    color's by ``_BLEND_RIDGE_LUMA_CONTRAST``), with a luma as far along that line as a
    stroke's middle is (median within ``_BLEND_RIDGE_LUMA_ALPHA``). Chroma and luma are read
    apart because 4:2:0 JPEG averages the chroma of a thin line over 2x2 pixels and keeps
    its luma. ``rim``: pixels beside ``avoid`` that keep a ridge out only when it does not
    run on ``_BLEND_RIDGE_LENGTH`` px farther than ``_STROKE_RIM_AWAY`` px from ``near``
    (see ``_STROKE_RIM``)."""
    line = (excess >= _BLEND_RIDGE_EXCESS) & (ridge >= _BLEND_RIDGE_RIDGE)
    if not line.any():
        return line
    # not over a background that carries mask color itself (a pale green or cyan fill, or
    # foliage: most of the pixels around carry some): the mask would widen into the fill,
    # whose own tint hides the stroke's anyway
    size = 2 * _BLEND_RIDGE_BACKGROUND_REACH + 1
    share = cv2.boxFilter((excess >= _BLEND_RIDGE_BACKGROUND_EXCESS).view(np.uint8),
                          cv2.CV_32F, (size, size), borderType=cv2.BORDER_REPLICATE)
    line &= share <= _BLEND_RIDGE_BACKGROUND_SHARE
    if not line.any():
        return line
    joined = cv2.dilate(line.view(np.uint8), _square(_FAINT_GAP))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    long_ = extent >= _BLEND_RIDGE_LENGTH
    long_[0] = False
    if avoid is not None:
        long_[labels[line & avoid]] = False
    if rim is not None and near is not None:
        tentative = np.zeros(n, bool)
        tentative[labels[line & rim]] = True
        tentative &= long_
        if tentative.any():
            long_[tentative & ~_extents_away(line & tentative[labels], labels, n, near)] = False
    if not long_.any():
        return np.zeros_like(line)
    line &= long_[labels]
    ys, xs = np.nonzero(line)
    lab = labels[ys, xs]
    alpha, residual, luma_alpha, informative = _ycc_blend_fit(rgb, excess, ys, xs, color)
    ok = ((_medians_by_label(residual, lab, n) <= _BLEND_RIDGE_CHROMA_RESIDUAL)
          & (_medians_by_label(alpha, lab, n) >= _BLEND_RIDGE_ALPHA))
    # the luma is asked where it tells for at least half of a ridge's pixels
    lo, hi = _BLEND_RIDGE_LUMA_ALPHA
    med, upper, middle = _quantiles_by_label(luma_alpha[informative], lab[informative], n,
                                             (0.5, 0.75, 0.9))
    asked = 2 * np.bincount(lab[informative], minlength=n) >= np.bincount(lab, minlength=n)
    thin = (upper >= _BLEND_RIDGE_LUMA_THIN) & (middle <= hi)
    ok &= ~asked | (((lo <= med) | thin) & (med <= hi) & (middle >= _BLEND_RIDGE_LUMA_MIDDLE))
    return line & ok[labels]


def _extents_away(pixels: np.ndarray, labels: np.ndarray, n: int, near: np.ndarray
                  ) -> np.ndarray:
    """Per label (bool [n]): whether its ``pixels`` farther than ``_STROKE_RIM_AWAY`` px
    from ``near`` span ``_BLEND_RIDGE_LENGTH`` px or more (box side)."""
    ys, xs = np.nonzero(pixels & ~_within(near, _STROKE_RIM_AWAY))
    top, left, bottom, right = _label_boxes(ys, xs, labels[ys, xs], n)
    return np.maximum(bottom - top, right - left) + 1 >= _BLEND_RIDGE_LENGTH


def _ycc_blend_fit(rgb: np.ndarray, excess: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                   color: Color) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel (ys, xs), how it reads as ``color`` blended into its local background, in
    JPEG's own color space: (chroma alpha, chroma residual, luma alpha, whether the luma
    tells: the background's luma differs from the color's by _BLEND_RIDGE_LUMA_CONTRAST)."""
    pix = rgb[ys, xs].astype(np.float32) @ _YCC.T
    bg = _local_background(rgb, excess, ys, xs) @ _YCC.T
    paint = np.asarray(color, np.float32) @ _YCC.T
    alpha, residual = _blend_position(pix[:, 1:] - bg[:, 1:], paint[None, 1:] - bg[:, 1:])
    luma_contrast = paint[0] - bg[:, 0]
    informative = np.abs(luma_contrast) >= _BLEND_RIDGE_LUMA_CONTRAST
    luma_alpha = (pix[:, 0] - bg[:, 0]) / np.where(informative, luma_contrast, 1.0)
    return alpha, residual, luma_alpha, informative


def _pale_along(rgb: np.ndarray, excess: np.ndarray, pale: np.ndarray, color: Color
                ) -> np.ndarray:
    """The runs of ``pale`` (bool: ridge pixels below _ALONG_EXCESS) whose chroma reads as
    the mask color blended into the local background (median residual <=
    _ALONG_PALE_RESIDUAL, median alpha >= _BLEND_RIDGE_ALPHA). The luma is not asked: where
    a thin stroke fades this far under 4:2:0 its luma has gone into the background's."""
    n, labels = cv2.connectedComponents(pale.view(np.uint8), connectivity=8)
    ys, xs = np.nonzero(pale)
    lab = labels[ys, xs]
    alpha, residual, _, _ = _ycc_blend_fit(rgb, excess, ys, xs, color)
    # a JPEG's stroke borders leave thousands of one-pixel runs: medians per run at once
    ok = ((_medians_by_label(residual, lab, n) <= _ALONG_PALE_RESIDUAL)
          & (_medians_by_label(alpha, lab, n) >= _BLEND_RIDGE_ALPHA))
    return pale & ok[labels]


def _medians_by_label(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """float [n]: np.median of ``values`` per label 0..n-1 (NaN where a label has none)."""
    return _quantiles_by_label(values, labels, n, (0.5,))[0]


def _quantiles_by_label(values: np.ndarray, labels: np.ndarray, n: int,
                        qs: tuple[float, ...]) -> np.ndarray:
    """float [len(qs), n]: np.quantile(values, q) (linear) per label 0..n-1 for each q of
    ``qs`` (NaN where a label has none), from one sort."""
    order = np.lexsort((values, labels))
    counts = np.bincount(labels, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ranked = values[order]
    has = counts > 0
    out = np.full((len(qs), n), np.nan)
    for i, q in enumerate(qs):
        pos = np.maximum(counts - 1, 0) * q
        below = np.floor(pos).astype(np.int64)
        low = (starts + below)[has]
        high = (starts + np.ceil(pos).astype(np.int64))[has]
        if q == 0.5:  # (the mean of the two middle values, exactly as np.median)
            out[i, has] = (ranked[low] + ranked[high]) / 2.0
        else:
            out[i, has] = ranked[low] + (ranked[high] - ranked[low]) * (pos - below)[has]
    return out


def _art_fill(distance: np.ndarray, paint_like: np.ndarray,
              excess: np.ndarray | None = None) -> np.ndarray:
    """The wide parts of ``paint_like`` whose local median color is clearly not ``color``:
    flat art fills (lime, #0ddf05) that would otherwise join a stroke touching them."""
    if excess is not None:
        paint_like = paint_like | (excess >= _ART_EXCESS)
    # the median of the 5x5 color distances is above _ART_DISTANCE where at least 13 of
    # the 25 are (medianBlur's replicated border, counted with a box filter: no distances)
    far = (distance > _ART_DISTANCE).view(np.uint8)
    far_count = cv2.boxFilter(far, -1, (5, 5), normalize=False, borderType=cv2.BORDER_REPLICATE)
    art = _wide_parts(paint_like) & (far_count >= 13)
    if not art.any():
        return art
    # a stroke crossing a fill far from the color (see _ART_PAINT_FAR) is no part of it:
    # art keeps its pixels near the color (not ``far``) only outside such a fill
    paint_far = ((distance > _ART_PAINT_FAR) & paint_like).view(np.uint8)
    in_far_fill = cv2.boxFilter(paint_far, -1, (9, 9), normalize=False,
                                borderType=cv2.BORDER_REPLICATE) >= _ART_PAINT_FAR_COUNT
    return art & (far.view(bool) | ~in_far_fill)


def _art_slivers(rgb: np.ndarray, art: np.ndarray, paint_like: np.ndarray,
                 fill: np.ndarray) -> np.ndarray:
    """The ``paint_like`` pixels joined to ``art`` through paint-like pixels of the art's
    own color: within _ART_SLIVER_LIKE (every channel) of the nearest art pixel's, or within
    _ART_SLIVER_FILL_LIKE of the nearest ``fill`` pixel's (``art`` also holds the few px
    around a fill, so its nearest pixel may be an outline's)."""
    if not art.any():
        return art
    like = _like_nearest(rgb, art, _ART_SLIVER_LIKE)
    if fill.any():
        like |= _like_nearest(rgb, fill, _ART_SLIVER_FILL_LIKE)
    return _reconstruct(art, paint_like & like)


def _like_nearest(rgb: np.ndarray, pixels: np.ndarray, within: int) -> np.ndarray:
    """Where ``rgb`` lies within ``within`` (every channel) of the color of the nearest of
    ``pixels``."""
    _d, labels = cv2.distanceTransformWithLabels((~pixels).view(np.uint8), cv2.DIST_L2, 3,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(pixels)  # label k is the k-th of ``pixels`` in row-major order
    nearest = rgb[ys, xs].astype(np.int16)[labels - 1]
    return np.abs(rgb.astype(np.int16) - nearest).max(axis=2) <= within


def _off_art_pieces(found: np.ndarray, seeds: np.ndarray, fill: np.ndarray,
                    slivers: np.ndarray) -> np.ndarray:
    """``found`` (vivid, thin and ridge seeds) less its pixels close to an art ``fill`` or
    its ``slivers`` whose piece holds none of ``seeds`` and stays near the fill (see
    _SLIVER_GAP)."""
    close = found & (_within(fill, _THIN_ART_GAP) | _within(slivers, _SLIVER_GAP))
    if not close.any():
        return found
    joined = cv2.dilate((found | seeds).view(np.uint8), _square(_PIECE_JOIN))
    n, labels = cv2.connectedComponents(joined, connectivity=8)
    anchored = np.zeros(n, bool)
    anchored[labels[seeds | (found & ~_within(fill | slivers, 2 * _THIN_ART_GAP))]] = True
    anchored[0] = False
    return found & ~(close & ~anchored[labels])


def _tinted(excess: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The pixels still tinted toward the mask color: above their local ``background``
    (the lowest excess within _TINT_WINDOW px) by _TINT_MARGIN, or green to the eye
    (``_TINT_GREEN``); either way above _TINT_FLOOR."""
    return ((excess > _TINT_FLOOR)
            & ((cv2.subtract(excess, background) > _TINT_MARGIN) | (excess > _TINT_GREEN)))


def _tint_cleanup(excess: np.ndarray, mask: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """``mask`` plus the ``allowed`` pixels still tinted toward the mask color (JPEG chroma
    bleed and ringing around a stroke; see ``_tinted``)."""
    tinted = allowed & ~mask & _tinted(excess, cv2.erode(excess, _square(_TINT_WINDOW)))
    if not tinted.any():
        return mask
    # ringing lobes a pixel or two off the mask join it through a 2 px bridge (else each
    # would be a region of its own)
    return mask | tinted | (_within(tinted, 2) & allowed & _within(mask, 2))


class _CellSums:
    """Sums over the pixels near each of a set of points (``ys``, ``xs``): pixels are binned
    into ``_BODY_CELL`` px cells, and a point reads the sum over the square of
    ``size`` x ``size`` cells around its own. Local statistics of a stroke's border for
    a few bincounts, however large the box (a full-size integral image per statistic costs
    more than the rest of the finder's border work)."""

    def __init__(self, shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray,
                 phase: tuple[int, int] = (0, 0)) -> None:
        h, w = shape
        self._phase = phase  # the cells start this many px before the array (row, column)
        self._grid = (-(-(h + phase[0]) // _BODY_CELL), -(-(w + phase[1]) // _BODY_CELL))
        self.point_cells = self.cells(ys, xs)

    def cells(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return (((ys + self._phase[0]) // _BODY_CELL) * self._grid[1]
                + (xs + self._phase[1]) // _BODY_CELL)

    def several(self, cells: np.ndarray, fields: list[np.ndarray | None], size: int
                ) -> list[np.ndarray]:
        """float32 [N] per field: per point, the sum of the field over the pixels in
        ``cells`` within the ``size`` x ``size`` cells around the point's cell; uint8 or
        bool fields (None = 1), up to three, packed into one float64 weight at 16 bits
        each (a field's window sum, at most 255 x 225 px, fits), so one bincount and one
        box filter serve all (exact: the packed sums stay below 2**53)."""
        assert len(fields) <= 3 and size * _BODY_CELL <= 15
        packed = np.zeros(len(cells), np.float64)
        for k, field in enumerate(fields):
            packed += (1.0 if field is None else field.astype(np.float64)) * float(1 << (16 * k))
        grid = np.bincount(cells, packed, self._grid[0] * self._grid[1])
        grid = cv2.boxFilter(grid.reshape(self._grid), -1, (size, size), normalize=False,
                             borderType=cv2.BORDER_CONSTANT)
        values = grid.ravel()[self.point_cells].astype(np.int64)
        return [((values >> (16 * k)) & 0xFFFF).astype(np.float32) for k in range(len(fields))]


def _pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) of the nonzero pixels of a uint8 mask (cv2.findNonZero: several times
    faster than np.nonzero)."""
    points = cv2.findNonZero(mask)
    if points is None:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    points = points.reshape(-1, 2).astype(np.intp)
    return points[:, 1], points[:, 0]


def _stroke_body(rgb: np.ndarray, core: np.ndarray, excess: np.ndarray, reach: np.ndarray,
                 phase: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray | None]:
    """(body, solid): ``core`` widened ring by ring over the pixels that read as paint
    (see ``_BODY_RINGS``), the stroke as painted, which the cap is measured from; and the
    body's outer pixels that read as solid paint (see ``_SOLID_REACH``; None when the core
    has no border). ``reach``: the pixels within _BODY_RINGS px (Chebyshev) of the core."""
    h, w = core.shape
    core8, reach8 = core.view(np.uint8), reach.view(np.uint8)
    ys, xs = _pixels(cv2.subtract(reach8, core8))
    if len(ys) == 0:
        return core, None
    n_band = len(ys)
    edge_ys, edge_xs = _pixels(cv2.subtract(core8, cv2.erode(core8, _square(1))))
    ys, xs = np.concatenate([ys, edge_ys]), np.concatenate([xs, edge_xs])
    bg_ys, bg_xs = _pixels(cv2.subtract(
        cv2.dilate(reach8, _square(_BODY_BG_FAR - _BODY_RINGS)), reach8))
    # paint: the core's pixels that a border pixel's window can reach (not its deep inside)
    core_ys, core_xs = _pixels(cv2.subtract(core8, cv2.erode(core8, _square(_BODY_WINDOW))))
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).ravel()
    flat_ex = excess.ravel()
    sums = _CellSums(core.shape, ys, xs, phase)
    bg_cells, core_cells = sums.cells(bg_ys, bg_xs), sums.cells(core_ys, core_xs)
    bg_at, core_at = bg_ys * w + bg_xs, core_ys * w + core_xs
    size = _BODY_WINDOW // _BODY_CELL
    bg_ex_values = flat_ex.take(bg_at)
    bg_count, bg_luma, bg_ex = sums.several(
        bg_cells, [None, luma.take(bg_at), bg_ex_values], size)
    [vivid_bg] = sums.several(bg_cells, [bg_ex_values >= _ART_EXCESS], size)
    paint_count, paint_luma, paint_ex = sums.several(
        core_cells, [None, luma.take(core_at), flat_ex.take(core_at)], size)
    bg = np.maximum(bg_count, 1)
    paint = np.maximum(paint_count, 1)
    bg_luma, bg_ex, vivid_bg = bg_luma / bg, bg_ex / bg, vivid_bg / bg
    paint_luma, paint_ex = paint_luma / paint, paint_ex / paint
    at = ys * w + xs
    ex = flat_ex.take(at).astype(np.float32)
    lu = luma.take(at).astype(np.float32)
    ex_contrast = paint_ex - bg_ex
    alpha_ex = (ex - bg_ex) / np.maximum(ex_contrast, np.float32(1))
    luma_contrast = paint_luma - bg_luma
    informative = np.abs(luma_contrast) >= _BODY_LUMA_CONTRAST
    alpha_luma = (lu - bg_luma) / np.where(informative, luma_contrast, np.float32(1))
    reads = ((bg_count > 0) & (paint_count > 0) & (ex_contrast >= _BODY_MIN_CONTRAST)
             # a stroke crossing a vivid art fill (lime) has it in its background ring
             & (vivid_bg <= _BODY_VIVID_BACKGROUND)
             & np.where(informative,
                        (alpha_luma >= _BODY_LUMA_ALPHA) & (alpha_luma <= 1.5)
                        & (alpha_ex >= _BODY_EXCESS_ALPHA_LUMA),
                        alpha_ex >= _BODY_EXCESS_ALPHA))
    # ring k = Chebyshev distance k from the core (one square dilation per ring, read at
    # the border pixels)
    ring = np.full(len(ys), _BODY_RINGS, np.uint8)
    for k in range(_BODY_RINGS - 1, 0, -1):
        ring[_within(core, k).ravel().take(at)] = k
    ring[n_band:] = 0
    body = core.copy()
    flat_body = body.ravel()
    widening = np.ones(len(ys), bool)
    taken = np.zeros(len(ys), bool)
    size = _BODY_SHARE_WINDOW // _BODY_CELL
    for k in range(1, _BODY_RINGS + 1):
        in_ring = ring == k
        total, hits = sums.several(sums.point_cells[in_ring], [None, reads[in_ring]], size)
        widening &= hits >= _BODY_SHARE * np.maximum(total, 1)
        flat_body[at[in_ring & widening & reads]] = True
        taken |= in_ring & widening & reads
    # Solid: the body's outer pixels that read as (nearly) unblended paint, so lie inside
    # the stroke; the cap reaches _SOLID_REACH from them
    strict = reads & np.where(informative,
                              (alpha_luma >= _SOLID_ALPHA)
                              & ((alpha_ex >= _SOLID_ALPHA)
                                 | ((alpha_luma <= _SOLID_LUMA_MAX)
                                    & (alpha_ex >= _SOLID_LUMA_EXCESS))),
                              alpha_ex >= _SOLID_EXCESS_ALPHA)
    candidates = (ring == 0) | taken
    total, hits = sums.several(sums.point_cells[candidates], [None, strict[candidates]], size)
    wide = _wide_parts(body).ravel().take(at)
    solid = candidates & strict & (hits >= np.where(wide, _SOLID_SHARE, _BODY_SHARE)
                                   * np.maximum(total, 1))
    solid_map = np.zeros(core.shape, bool)
    solid_map.ravel()[at[solid]] = True
    return body, solid_map


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _cap(body: np.ndarray, solid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(allowed, rim): the pixels within _MASK_REACH px (Euclidean) of ``body`` or within
    _SOLID_REACH of ``solid`` (a part of the body), and those of them only the latter
    allows (None when there are none). Within _SOLID_REACH is taken as within _MASK_REACH
    and one more step along a row or column (never farther: one dilation of both at once,
    then a 3x3 cross, instead of a second large disk)."""
    if solid is None or not solid.any():
        return _within_disk(body, _MASK_REACH), None
    marks = cv2.add(body.view(np.uint8), solid.view(np.uint8))  # 2 on solid (in the body)
    near = _within_disk_values(marks, _MASK_REACH)
    step = int(_SOLID_REACH - _MASK_REACH)
    inner = near > 0
    rim = cv2.dilate((near > 1).view(np.uint8), _CROSS, iterations=step).view(bool) & ~inner
    return inner | rim, rim


def _within_disk_values(values: np.ndarray, radius: float) -> np.ndarray:
    """uint8: the largest of ``values`` within ``radius`` px (Euclidean) of each pixel."""
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return cv2.dilate(values, (yy * yy + xx * xx <= radius * radius).astype(np.uint8))


def _within_disk(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels within ``radius`` px (Euclidean, exactly) of ``mask``."""
    return _within_disk_values(mask.view(np.uint8), radius).view(bool)


def _hard_edged_around(rgb: np.ndarray, exact: np.ndarray, color: Color) -> bool:
    """True when the exact-color strokes have crisp borders: the
    pixels around them that carry clearly more mask color than the background 2 px further
    out (as an anti-aliased border does) outnumber those that carry clearly less by under
    ``_SOFT_EDGE_SHARE``. Read in windows around the strokes (nothing farther than 3 px
    from them is read); the 4 px sample grid is laid from the corner of the strokes' box
    widened by 4 px. Colors without a clear channel split are read by blend fitting
    (``_hard_edged_blends``)."""
    if _channel_split(color) is None:
        return _hard_edged_blends(rgb, exact, color)
    origin = hole_window(exact, 4)
    parts = []
    n_ring = 0
    for ys, xs in _windows(exact, 4):
        part_exact = np.ascontiguousarray(exact[ys, xs])
        ring = cv2.dilate(part_exact.view(np.uint8), _disk(1)).view(bool) & ~part_exact
        n = int(np.count_nonzero(ring))
        if n:
            parts.append((ys, xs, part_exact, ring, _excess(rgb[ys, xs], color)))
            n_ring += n
    if n_ring == 0:
        return True

    def surplus(sample: bool) -> tuple[int, int]:
        """(pixels carrying clearly more mask color than 2 px further out minus those
        carrying clearly less, pixels read) over the ring, or its 4 px sample grid."""
        total = read = 0
        for ys, xs, part_exact, ring, part_excess in parts:
            if sample:
                dy, dx = (origin[0].start - ys.start) % 4, (origin[1].start - xs.start) % 4
                py, px = _pixels(np.ascontiguousarray(ring[dy::4, dx::4]).view(np.uint8))
                py, px = py * 4 + dy, px * 4 + dx
            else:
                py, px = _pixels(ring.view(np.uint8))
            total += _surplus(part_excess, part_exact | ring, py, px)
            read += len(py)
        return total, read

    # Exact specks of a JPEG have a huge ring, mostly colored: the ring pixels on a 4 px
    # grid far over the share settle it (a crisp stroke's ring is ~0).
    if n_ring >= 16_000:
        total, read = surplus(sample=True)
        if read >= 500 and total > 4 * _SOFT_EDGE_SHARE * read:
            return False
    total, read = surplus(sample=False)
    return total <= _SOFT_EDGE_SHARE * read


def _lossless_strokes(near: np.ndarray, exact: np.ndarray, n_exact: int) -> bool:
    """True when the pixels near the mask color but not exact all lie beside an exact one
    (at most ``_LOSSY_NEAR_SHARE`` of the exact count elsewhere): paint saved without loss.
    JPEG leaves noisy near-exact pixels all over a stroke's body."""
    loose = near & ~exact
    n_loose = int(np.count_nonzero(loose))
    if n_loose <= _LOSSY_NEAR_SHARE * n_exact:
        return True
    beside = 0
    for ys, xs in _windows(exact, 1):
        beside += int(np.count_nonzero(loose[ys, xs] & _within(exact[ys, xs], 1)))
    return n_loose - beside <= _LOSSY_NEAR_SHARE * n_exact


def _surplus(excess: np.ndarray, inside: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> int:
    """Of the pixels (ys, xs) beside a stroke, those carrying clearly more mask color than
    the background 2 px further out minus those carrying clearly less. Textured pictures
    differ from pixel to pixel both ways; a blended border only one way (toward the mask
    color)."""
    step = excess[ys, xs].astype(np.float32) - _outer_excess(excess, inside, ys, xs)
    return (int(np.count_nonzero(step > _EDGE_EXCESS))
            - int(np.count_nonzero(step < -_EDGE_EXCESS)))


def _hard_edged_blends(rgb: np.ndarray, exact: np.ndarray, color: Color) -> bool:
    """``_hard_edged_around`` for colors without a clear channel split (greys): True when
    under ``_SOFT_EDGE_SHARE`` of the pixels around the exact strokes are blends of the
    mask color and the background (read on the strokes' box)."""
    ys, xs = hole_window(exact, 4)
    sub = np.ascontiguousarray(rgb[ys, xs])
    sub_exact = np.ascontiguousarray(exact[ys, xs])
    ring = cv2.dilate(sub_exact.view(np.uint8), _disk(1)).view(bool) & ~sub_exact
    ys, xs = np.nonzero(ring)
    if len(ys) == 0:
        return True
    colored = int(np.count_nonzero(_blend_candidates(sub, sub_exact, ys, xs, color)))
    return colored <= _SOFT_EDGE_SHARE * len(ys)


def paint_note(info: PaintInfo, color: Color = DEFAULT_MASK_COLOR,
               wording: Wording | None = None) -> str:
    """One line saying the strokes were read as soft paint, and how to get the exact mask."""
    from deepcream.colors import format_color

    return (f"the mask strokes look anti-aliased or JPEG-saved: the mask was grown over their "
            f"blended edges ({info.pixels:,} pixels, {info.exact:,} of them exactly "
            f"{format_color(color)}); {_say(wording, 'tolerance', n=0)} takes the exact "
            "color only")
