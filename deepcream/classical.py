"""Model-free fills used by the classical engine (``engines.ClassicalEngine``).

Bars, ``structure_fill`` (the default): drawn art is flat or smoothly shaded regions
separated by outlines, and a bar hides a short stretch of each. Every hole pixel looks along
24 directions to the first known pixel on both sides; a direction is a good explanation when
the two end colors agree and the structure at both ends (the structure tensor's edge
orientation, weighted by how line-like it is) runs along that direction. The pixel takes the
two-sided linear interpolation of the directions, weighted by how well each explains it
(a soft minimum over a cost smoothed across neighbouring hole pixels): an outline whose ends
face each other across the bar is drawn through, flat regions are filled with their own
color without bleeding across the outlines, and where the evidence is ambiguous the
directions average into a smooth estimate (which costs less error than a wrong guess).
Bars, ``exemplar_fill``: PatchMatch completion (the ``pypatchmatch`` package: multi-scale
nearest-neighbour-field search and patch voting) copies real structure from around the hole,
so outlines, hatching and strands continue into it instead of averaging into a smudge. One
PatchMatch result is a single guess: where the structure is ambiguous a misplaced line costs
more error than a blur. The fill is therefore the mean of two PatchMatch completions (7x7
and 11x11 patches, different random seeds) and Telea's diffusion: the lines that both
completions agree on stay dark, guesses the completions disagree on fade towards the smooth
estimate. Measured by ``scripts/classical_quality.py`` (docs/decensor.md).

Mosaics, ``backprojected_mosaic``: a mosaic keeps each block's mean color. The fill starts
from a bicubic upsampling of the block grid and corrects it so that every block's mean
equals the mosaic's (iterative back-projection), meeting the pixels around the region without
a halo; on flat art, blocks whose mean is a mix of neighbouring flat colors are then painted
sharp with those colors in those shares (``_unmix_blocks``).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from deepcream.regions import hole_window

log = logging.getLogger(__name__)

# Around the holes' bounding box, PatchMatch searches this far for source patches (px).
EXEMPLAR_MARGIN = 48
# (patch radius, seed) of the PatchMatch completions that are averaged with Telea.
EXEMPLAR_RUNS = ((3, 0), (5, 1))


# Directions (over 180 degrees) a hole pixel looks along for the first known pixel.
STRUCTURE_DIRECTIONS = 24
# Longest ray (px): REACH times the largest distance of a hole pixel to the nearest known
# one (longer rays lose to shorter ones anyway: the length term), at most MAX_STEPS. Pixels
# no ray reaches get Telea.
STRUCTURE_REACH = 4.0
STRUCTURE_MAX_STEPS = 128
# Known pixels the fill may look at around the holes' bounding box (px).
STRUCTURE_WINDOW_MARGIN = STRUCTURE_MAX_STEPS + 8
# Cost of a direction = end-color difference / COLOR_SCALE^2 (mean over RGB)
# - ALIGN_GAIN * (alignment of both ends' structure with it, each in [-1, 1])
# + LENGTH_WEIGHT * (ray length / the pixel's shortest ray); one-sided rays cost ONE_SIDED
# instead of the color term. Weights: exp(-cost / TEMPERATURE), cost smoothed over the hole
# with a Gaussian of SMOOTH px. Chosen on the tune seeds of scripts/classical_quality.py.
STRUCTURE_COLOR_SCALE = 30.0
STRUCTURE_ALIGN_GAIN = 16.0
STRUCTURE_LENGTH_WEIGHT = 3.0
STRUCTURE_ONE_SIDED = 3.0
STRUCTURE_TEMPERATURE = 4.0
STRUCTURE_SMOOTH = 2.0
# Structure tensor: Gaussian window (px) and the gradient energy below which a place counts
# as flat rather than oriented (squared RGB gradient units).
STRUCTURE_TENSOR_SIGMA = 2.0
STRUCTURE_TENSOR_FLOOR = 400.0
# Hole pixels per fill call processed together (bounds memory: ~100 bytes per pixel and
# direction); a larger hole is done in bands of rows.
STRUCTURE_CHUNK = 200_000
# The ring around the holes is checked for paint left by the mask (_with_fringe) when its
# mean paint share exceeds FRINGE_SHARE; then its pixels that are a mix of their surroundings
# and the paint (share > FRINGE_PIXEL_SHARE, off the mixing line by < FRINGE_OFF_LINE RGB
# levels) are not sampled. Chosen on anti-aliased and JPEG-saved strokes (docs/decensor.md).
STRUCTURE_FRINGE_SHARE = 0.03
STRUCTURE_FRINGE_PIXEL_SHARE = 0.1
STRUCTURE_FRINGE_OFF_LINE = 40.0

# Mixing two colours can create a third that neither has: the lean towards the paint color
# (the paint's strong channels' minimum minus its weak channels' maximum; for #00ff00,
# G - max(R, B)) is concave, so olive (R > B) averaged with cyan (B > R) is green. A filled
# pixel may lean towards the paint at most PAINT_LEAN_SLACK levels more than the known pixels
# it is made from (the structure fill: their lean interpolated with the fill's own weights;
# other fills: Telea of their lean); beyond that its strong channels are lowered. Only when
# the hole pixels' median is a saturated color, as painted masks are (strong and weak channels
# at least PAINT_MIN_CONTRAST apart).
PAINT_LEAN_SLACK = 8.0
PAINT_MIN_CONTRAST = 128.0


def _paint_channels(paint: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(strong, weak) channel masks of a saturated paint color, else None."""
    strong = paint >= 128
    if strong.all() or not strong.any():
        return None
    if float(paint[strong].min()) - float(paint[~strong].max()) < PAINT_MIN_CONTRAST:
        return None
    return strong, ~strong


def limit_paint_lean(crop: np.ndarray, holes: np.ndarray, filled: np.ndarray,
                     radius: int = 9, channels: tuple[np.ndarray, np.ndarray] | None = None
                     ) -> np.ndarray:
    """``filled`` with its hole pixels lowered in the paint's strong channels where they lean
    towards the paint color (the holes' median in ``crop``) more than the known pixels around
    them (Telea of their lean; see PAINT_LEAN_SLACK). Pixels outside ``holes`` unchanged.
    ``channels``: ``_paint_channels`` of that median, when the caller has it."""
    if not holes.any() or holes.all():
        return filled
    if channels is None:
        channels = _paint_channels(np.median(crop[holes], axis=0))
    if channels is None:
        return filled
    ys, xs = np.nonzero(holes)
    if not (_lean(filled[ys, xs], channels) > PAINT_LEAN_SLACK).any():
        return filled
    win = hole_window(holes, 2 * radius)
    known_lean = np.ascontiguousarray(_lean(crop[win], channels))
    bound = cv2.inpaint(known_lean, np.ascontiguousarray(holes[win]).view(np.uint8), radius,
                        cv2.INPAINT_TELEA)[ys - win[0].start, xs - win[1].start]
    out = filled.copy()
    out[ys, xs] = _limit_lean(filled[ys, xs], bound, channels)
    return out


def _lean(pixels: np.ndarray, channels: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """float32 lean towards the paint: strong channels' minimum minus weak channels' maximum."""
    f = pixels.astype(np.float32)
    strong, weak = channels
    return f[..., strong].min(axis=-1) - f[..., weak].max(axis=-1)


def _limit_lean(pixels: np.ndarray, bound: np.ndarray, channels: tuple[np.ndarray, np.ndarray]
                ) -> np.ndarray:
    """uint8 [n, 3] ``pixels`` whose lean exceeds max(``bound``, 0) + PAINT_LEAN_SLACK, with
    their strong channels lowered by the excess (just down to that limit)."""
    lean = _lean(pixels, channels)
    excess = lean - (np.maximum(bound, 0) + PAINT_LEAN_SLACK)
    over = excess > 0
    if not over.any():
        return pixels
    # Lowering the strong channels (not desaturating towards the luma, nor raising the weak
    # ones) kept the fill's error on the dev pictures: the mix is too bright in them.
    c = pixels[over].astype(np.float32)
    c[:, channels[0]] -= excess[over][:, None]
    out = pixels.copy()
    out[over] = np.clip(np.floor(c), 0, 255).astype(np.uint8)
    return out


def _edge_orientation(img: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(angle along the local edge in radians, line-likeness in [0, 1)) from the structure
    tensor of the known pixels only (gradients touching a hole pixel are left out)."""
    f = img.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3) / 4
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3) / 4
    valid = cv2.erode(known.view(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
    sigma = STRUCTURE_TENSOR_SIGMA
    norm = cv2.GaussianBlur(valid, (0, 0), sigma) + 1e-6
    j11, j22, j12 = (cv2.GaussianBlur(j.sum(axis=2) * valid, (0, 0), sigma) / norm
                     for j in (gx * gx, gy * gy, gx * gy))
    diff = j11 - j22
    root = np.sqrt(diff * diff + 4 * j12 * j12)
    return 0.5 * np.arctan2(2 * j12, diff) + np.pi / 2, root / (j11 + j22 + STRUCTURE_TENSOR_FLOOR)


def _first_known(labels: np.ndarray, start: np.ndarray, offsets: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For flat indices ``start`` into ``labels`` (0 hole, 1 known, 2 off the image), the
    step (1-based; 0 = none) and flat index of the first known pixel along ``offsets``."""
    steps = np.zeros(start.size, np.int32)
    ends = np.zeros(start.size, np.int64)
    todo = np.arange(start.size)
    first_step, block = 0, 4
    # Steps in growing blocks: most rays stop within a few steps, few go far.
    while todo.size and first_step < offsets.size:
        at = start[todo, None] + offsets[None, first_step:first_step + block]
        lab = labels[at]
        stopped = lab != 0
        done = stopped.any(axis=1)
        where = stopped.argmax(axis=1)
        rows = np.flatnonzero(done)
        hit = rows[lab[rows, where[rows]] == 1]
        steps[todo[hit]] = first_step + where[hit] + 1
        ends[todo[hit]] = at[hit, where[hit]]
        todo = todo[~done]
        first_step += block
        block *= 2
    return steps, ends


def structure_fill(crop: np.ndarray, holes: np.ndarray, radius: int = 9) -> np.ndarray:
    """The crop with its holes filled by two-sided directional interpolation guided by the
    structure around them (module docstring). Pixels no ray reaches get Telea (``radius``).
    Deterministic; only hole pixels change."""
    out = crop.copy()
    if not holes.any():
        return out
    win = hole_window(holes, STRUCTURE_WINDOW_MARGIN)
    part = np.ascontiguousarray(crop[win])
    mask = np.ascontiguousarray(holes[win])
    unknown = _with_fringe(part, mask)
    channels = _paint_channels(np.median(part[mask], axis=0))
    # (without any known pixel the transform says "very far": every pixel gets Telea)
    depth = np.minimum(cv2.distanceTransform(unknown.view(np.uint8), cv2.DIST_L2, 5),
                       STRUCTURE_MAX_STEPS + 1)
    reach = int(min(STRUCTURE_MAX_STEPS, max(4, np.ceil(STRUCTURE_REACH * depth.max()))))
    all_ys, all_xs = np.nonzero(mask)
    reached = depth[all_ys, all_xs] <= reach
    ys, xs = all_ys[reached], all_xs[reached]  # row-major: ys ascending
    filled = np.empty((ys.size, 3), np.uint8)
    ok_rays = np.empty(ys.size, bool)
    # Bands of whole rows; each is computed with a halo of rows for the cost smoothing.
    halo = int(4 * STRUCTURE_SMOOTH) + 1
    first = 0
    while first < ys.size:
        stop = min(first + STRUCTURE_CHUNK, ys.size)
        if stop < ys.size:
            cut = int(np.searchsorted(ys, ys[stop - 1], side="left"))
            stop = cut if cut > first else int(np.searchsorted(ys, ys[stop - 1], side="right"))
        lo = int(np.searchsorted(ys, ys[first] - halo, side="left"))
        hi = int(np.searchsorted(ys, ys[stop - 1] + halo, side="right"))
        values, ok, bound = _structure_values(part, unknown, ys[lo:hi], xs[lo:hi], reach,
                                              channels)
        values, bound = values[first - lo:stop - lo], bound[first - lo:stop - lo]
        filled[first:stop] = values if channels is None else _limit_lean(values, bound, channels)
        ok_rays[first:stop] = ok[first - lo:stop - lo]
        first = stop
    sub = out[win]
    sub[ys, xs] = filled
    reached[reached] = ok_rays
    if not reached.all():  # deep inside a large hole: no ray reaches
        telea = cv2.inpaint(part, mask.view(np.uint8), radius, cv2.INPAINT_TELEA)
        far = (all_ys[~reached], all_xs[~reached])
        sub[far] = telea[far]
        if channels is not None:
            sub[far] = limit_paint_lean(part, mask, sub, radius, channels)[far]
    return out


def _with_fringe(img: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """The pixels the fill must not take colors from: the holes, plus the pixels of the 1 px
    ring around them that carry paint. An anti-aliased or JPEG-saved stroke leaves a fringe
    that the mask misses; Telea blurs it away, rays would carry it into the hole. Paint share
    = projection on the direction from the next ring out towards the holes' own (painted)
    color; on the tune seeds exact masks measured |mean share| <= 0.025, JPEG strokes
    0.02-0.19."""
    m = holes.view(np.uint8)
    grown = cv2.dilate(m, np.ones((3, 3), np.uint8)).view(bool)
    ring = grown & ~holes
    outer = cv2.dilate(m, np.ones((5, 5), np.uint8)).view(bool) & ~grown
    if not ring.any() or not outer.any():
        return holes
    paint = np.median(img[holes], axis=0).astype(np.float64)
    base = img[outer].mean(axis=0)
    toward = paint - base
    share = float((img[ring].mean(axis=0) - base) @ toward / max(float(toward @ toward), 1.0))
    if share <= STRUCTURE_FRINGE_SHARE:
        return holes
    # Per ring pixel: its paint share against the local mean of the next ring out.
    f = img.astype(np.float32)
    weight = cv2.GaussianBlur(outer.astype(np.float32), (0, 0), 2.0) + 1e-6
    local = cv2.GaussianBlur(f * outer[..., None], (0, 0), 2.0) / weight[..., None]
    ys, xs = np.nonzero(ring)
    to_paint = paint.astype(np.float32) - local[ys, xs]
    away = f[ys, xs] - local[ys, xs]
    mix = (away * to_paint).sum(axis=1) / np.maximum((to_paint * to_paint).sum(axis=1), 1.0)
    # ... and only a pixel that really is such a mix (a dark outline pixel also projects
    # towards a dark-channelled paint color, but far off the mixing line).
    off = np.linalg.norm(away - mix[:, None] * to_paint, axis=1)
    tinted = (mix > STRUCTURE_FRINGE_PIXEL_SHARE) & (off < STRUCTURE_FRINGE_OFF_LINE)
    out = holes.copy()
    out[ys[tinted], xs[tinted]] = True
    return out


def _structure_values(img: np.ndarray, holes: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                      reach: int, channels: tuple[np.ndarray, np.ndarray] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 [n, 3] fill values, bool [n] reached by some ray, float32 [n] lean towards the
    paint ``channels`` of the end pixels, interpolated with the fill's weights; zeros without
    ``channels``) of the hole pixels (ys, xs) of ``img``; rays take colors only from pixels
    outside ``holes``."""
    h, w = holes.shape
    pad = reach + 1
    labels = np.full((h + 2 * pad, w + 2 * pad), 2, np.uint8)
    labels[pad:pad + h, pad:pad + w] = ~holes
    row = w + 2 * pad
    labels = labels.ravel()
    # RGB, then the lean towards the paint, interpolated along with them
    colors = np.zeros((h + 2 * pad, w + 2 * pad, 4), np.float32)
    colors[pad:pad + h, pad:pad + w, :3] = img
    if channels is not None:
        colors[pad:pad + h, pad:pad + w, 3] = _lean(img, channels)
    colors = colors.reshape(-1, 4)
    angle, strength = (np.pad(a, pad).ravel() for a in _edge_orientation(img, ~holes))
    start = (ys + pad) * row + (xs + pad)
    n, k_dirs = ys.size, STRUCTURE_DIRECTIONS
    steps = np.arange(1, reach + 1)
    costs = np.full((k_dirs, n), np.inf, np.float32)
    lengths = np.full((k_dirs, n), np.inf, np.float32)
    values = np.zeros((k_dirs, n, 4), np.float32)
    for k in range(k_dirs):
        theta = np.pi * k / k_dirs
        offsets = (np.rint(steps * np.sin(theta)).astype(np.int64) * row
                   + np.rint(steps * np.cos(theta)).astype(np.int64))
        t1, e1 = _first_known(labels, start, offsets)
        t2, e2 = _first_known(labels, start, -offsets)
        c1, c2 = colors[e1], colors[e2]
        a1 = strength[e1] * np.cos(2 * (theta - angle[e1]))
        a2 = strength[e2] * np.cos(2 * (theta - angle[e2]))
        both = (t1 > 0) & (t2 > 0)
        span = (t1 + t2).astype(np.float32)
        color = ((c1[:, :3] - c2[:, :3]) ** 2).mean(axis=1) / STRUCTURE_COLOR_SCALE ** 2
        costs[k, both] = (color - STRUCTURE_ALIGN_GAIN * (a1 + a2))[both]
        values[k, both] = ((t2[:, None] * c1 + t1[:, None] * c2) / np.maximum(span, 1)[:, None])[both]
        lengths[k, both] = span[both]
        for t, c, a in ((t1, c1, a1), (t2, c2, a2)):
            one = (t > 0) & ~both
            costs[k, one] = STRUCTURE_ONE_SIDED - STRUCTURE_ALIGN_GAIN * a[one]
            values[k, one] = c[one]
            lengths[k, one] = 2 * t[one]
    shortest = lengths.min(axis=0)
    reached = np.isfinite(shortest)
    costs += STRUCTURE_LENGTH_WEIGHT * lengths / np.where(reached, shortest, 1)
    _smooth_costs(costs, ys, xs)
    best = np.where(reached, costs.min(axis=0), 0)
    weights = np.exp(-(costs - best) / STRUCTURE_TEMPERATURE)
    weights[~np.isfinite(costs)] = 0
    total = np.maximum(weights.sum(axis=0), 1e-12)
    fill = np.einsum("kn,knc->nc", weights, values) / total[:, None]
    return np.clip(fill[:, :3] + 0.5, 0, 255).astype(np.uint8), reached, fill[:, 3]


def _smooth_costs(costs: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> None:
    """In place: each direction's cost averaged over nearby hole pixels (Gaussian), so that
    a direction has to explain a neighbourhood, not one pixel by chance."""
    y0, x0 = ys.min(), xs.min()
    shape = (ys.max() - y0 + 1, xs.max() - x0 + 1)
    at = (ys - y0, xs - x0)
    inside = np.zeros(shape, np.float32)
    inside[at] = 1
    norm = cv2.GaussianBlur(inside, (0, 0), STRUCTURE_SMOOTH, borderType=cv2.BORDER_CONSTANT)[at] + 1e-6
    grid = np.zeros(shape, np.float32)
    for k in range(costs.shape[0]):
        finite = np.isfinite(costs[k])
        # An unreachable direction counts as a poor one for its neighbours' average.
        grid[at] = np.where(finite, np.minimum(costs[k], 20.0), 20.0)
        smoothed = cv2.GaussianBlur(grid, (0, 0), STRUCTURE_SMOOTH,
                                    borderType=cv2.BORDER_CONSTANT)[at] / norm
        costs[k] = np.where(finite, smoothed, np.inf)


def patchmatch_available() -> bool:
    try:
        from patchmatch import patch_match
    except ImportError:
        return False
    return bool(patch_match.patchmatch_available)


def exemplar_fill(crop: np.ndarray, holes: np.ndarray, radius: int = 9) -> np.ndarray:
    """The crop with its holes filled by the mean of the PatchMatch completions and Telea
    (radius ``radius``); work is limited to the holes' neighbourhood. Deterministic."""
    from patchmatch import patch_match

    out = crop.copy()
    if not holes.any():
        return out
    win = hole_window(holes, EXEMPLAR_MARGIN)
    part = np.ascontiguousarray(crop[win])
    mask = np.ascontiguousarray(holes[win]).view(np.uint8)
    total = cv2.inpaint(part, mask, radius, cv2.INPAINT_TELEA).astype(np.float32)
    for patch, seed in EXEMPLAR_RUNS:
        patch_match.set_random_seed(seed)
        total += patch_match.inpaint(part, mask * 255, patch_size=patch).astype(np.float32)
    mean = np.clip(total / (len(EXEMPLAR_RUNS) + 1) + 0.5, 0, 255).astype(np.uint8)
    sub = out[win]
    sub[holes[win]] = mean[holes[win]]
    return out


# Back-projection rounds: each brings every block's mean closer to the mosaic's.
BACKPROJECT_ROUNDS = 5
# Blocks up to this size (px) are unmixed with three colors (two fills and the ink), larger
# ones with two: a thin line's place inside a big block is a guess that costs more than it
# gains. Chosen with the tune seeds of scripts/classical_quality.py, like the values below.
INK_MAX_BLOCK = 8
# A block is unmixed when its mean lies within this distance (RGB) of a mix of the candidate
# colors (small / large blocks).
MIX_TOLERANCE = (6.0, 20.0)
# Blocks that no mix explains (texture, several lines) move this far towards their flat mosaic
# color (small / large blocks): a smooth guess across them costs structure (SSIM) there.
UNEXPLAINED_TO_MOSAIC = (0.6, 0.85)
# Weight of the sharp (unmixed) estimate in explained blocks over INK_MAX_BLOCK on flat art
# (below, the flat share itself): all-sharp costs PSNR where a boundary is misplaced.
LARGE_SHARP_SHARE = 0.85
# Share of 3x3-flat pixels around the holes from which a picture counts as flat art.
FLAT_ART_SHARE = 0.5


def _grid_upsample(values: np.ndarray, start: tuple[int, int], block: tuple[int, int],
                   shape: tuple[int, int]) -> np.ndarray:
    """Bicubic interpolation of per-block ``values`` [nby, nbx, C] placed at the block
    centres, evaluated at every pixel of ``shape`` (blocks start at ``start`` (y, x))."""
    h, w = shape
    (sy, sx), (by, bx) = start, block
    map_x = ((np.arange(w, dtype=np.float32) - np.float32(sx + (bx - 1) / 2.0)) / bx)
    map_y = ((np.arange(h, dtype=np.float32) - np.float32(sy + (by - 1) / 2.0)) / by)
    map_x = np.broadcast_to(map_x[None, :], (h, w)).copy()
    map_y = np.broadcast_to(map_y[:, None], (h, w)).copy()
    return cv2.remap(values.astype(np.float32), map_x, map_y, cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REPLICATE)


def backprojected_mosaic(crop: np.ndarray, holes: np.ndarray, grid_x: tuple[int, int],
                         grid_y: tuple[int, int]) -> np.ndarray:
    """Fill a mosaic whose blocks are ``grid_x`` = (size, phase) wide and ``grid_y`` high.

    Each block's target is its mean in ``crop`` (inside the holes the mosaic's block color;
    outside, the mean of the clean pixels, so the fill meets them without a halo). Start:
    bicubic interpolation of the block means between block centres; then back-projection:
    the difference between each block's target and the fill's current block mean is
    interpolated the same way and added, the pixels outside the holes are reset to the
    crop's, and this repeats, so block means converge to the mosaic's while staying smooth
    inside blocks. Last, on flat art (``flat_share``), an edge-directed step: blocks whose
    mean is a mix of neighbouring colors are painted sharp with those colors
    (``_unmix_blocks``), blocks that no mix explains move towards their flat mosaic color.
    Cost: linear in the crop area."""
    h, w = holes.shape
    (bx, px), (by, py) = grid_x, grid_y
    sx = px % bx - bx if px % bx else 0
    sy = py % by - by if py % by else 0
    nbx, nby = -(-(w - sx) // bx), -(-(h - sy) // by)
    pad = ((-sy, nby * by - h + sy), (-sx, nbx * bx - w + sx))
    valid = np.pad(np.ones((h, w), np.float32), pad)
    # INTER_AREA at an integer factor is the exact block mean (of the zero-padded image).
    share = cv2.resize(valid, (nbx, nby), interpolation=cv2.INTER_AREA)[..., None]
    share = np.maximum(share, 1e-6)

    def block_means(img: np.ndarray) -> np.ndarray:
        padded = np.pad(img, pad + ((0, 0),))
        return cv2.resize(padded, (nbx, nby), interpolation=cv2.INTER_AREA) / share

    known = ~holes
    target = block_means(crop.astype(np.float32))
    est = _grid_upsample(target, (sy, sx), (by, bx), (h, w))
    est[known] = crop[known]
    for _ in range(BACKPROJECT_ROUNDS):
        residual = target - block_means(est)
        est += _grid_upsample(residual, (sy, sx), (by, bx), (h, w))
        est[known] = crop[known]
    # Edge-directed step for flat art: mixed blocks are unmixed into sharp flat colors.
    flat = flat_share(crop, holes)
    small = max(bx, by) <= INK_MAX_BLOCK
    if small:  # share of the sharp estimate grows with the flatness of the picture
        sharp_share, to_mosaic = flat, UNEXPLAINED_TO_MOSAIC[0]
    else:  # flat art or not: on photos a wrong big sharp block is costly
        is_flat_art = float(flat >= FLAT_ART_SHARE)
        sharp_share = LARGE_SHARP_SHARE * is_flat_art
        to_mosaic = UNEXPLAINED_TO_MOSAIC[1] * is_flat_art
    if sharp_share > 0 or to_mosaic > 0:
        sharp, fits = _unmix_blocks(est, target, (sy, sx), (by, bx),
                                    ink_color(crop, holes) if small else None,
                                    MIX_TOLERANCE[0 if small else 1])
        weight = np.where(fits, sharp_share, 0.0)[..., None].astype(np.float32)
        mixed = (1 - weight) * est + weight * sharp
        weight = np.where(fits, 0.0, to_mosaic)[..., None].astype(np.float32)
        mixed = (1 - weight) * mixed + weight * crop
        est[holes] = mixed[holes]
    return np.clip(est + 0.5, 0, 255).astype(np.uint8)


def _to_blocks(img: np.ndarray, start: tuple[int, int], block: tuple[int, int],
               grid: tuple[int, int]) -> np.ndarray:
    """[H, W, C] -> [nby, nbx, by*bx, C]: the pixels of every grid block (zero padded)."""
    (sy, sx), (by, bx), (nby, nbx) = start, block, grid
    h, w = img.shape[:2]
    pad = ((-sy, nby * by - h + sy), (-sx, nbx * bx - w + sx), (0, 0))
    blocks = np.pad(img, pad).reshape(nby, by, nbx, bx, -1).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(nby, nbx, by * bx, -1)


def _from_blocks(blocks: np.ndarray, start: tuple[int, int], block: tuple[int, int],
                 shape: tuple[int, int]) -> np.ndarray:
    """Inverse of ``_to_blocks``, cropped to ``shape``."""
    (sy, sx), (by, bx) = start, block
    nby, nbx = blocks.shape[:2]
    h, w = shape
    img = blocks.reshape(nby, nbx, by, bx, -1).transpose(0, 2, 1, 3, 4)
    return img.reshape(nby * by, nbx * bx, -1)[-sy:-sy + h, -sx:-sx + w]


def flat_share(crop: np.ndarray, holes: np.ndarray) -> float:
    """Share of the pixels outside ``holes`` whose 3x3 neighbourhood varies by at most 2 levels
    per channel: high for flat-colored art, low for photos and noisy scans."""
    known = ~holes
    if not known.any():
        return 0.0
    kernel = np.ones((3, 3), np.uint8)
    spread = cv2.dilate(crop, kernel).astype(np.int16) - cv2.erode(crop, kernel)
    return float(np.mean(spread.max(axis=2)[known] <= 2))


def ink_color(crop: np.ndarray, holes: np.ndarray) -> np.ndarray | None:
    """The outline color around the holes: median of the darkest 3% of the pixels outside."""
    pixels = crop[~holes].astype(np.float32)
    if pixels.shape[0] < 20:
        return None
    lum = pixels.sum(axis=1)
    return np.median(pixels[lum <= np.percentile(lum, 3)], axis=0)


def _unmix_blocks(est: np.ndarray, target: np.ndarray, start: tuple[int, int],
                  block: tuple[int, int], ink: np.ndarray | None, tolerance: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sharp reconstruction of mixed blocks: (image, bool [H,W] block explained).

    Flat art's mosaic block is a mix of a few flat colors; its neighbours show them. For every
    block the pair of neighbour colors (c1, c2), and with ``ink`` a share of ink, whose mix
    comes closest to the block's mean is found (least squares, shares in [0, 1]); the block's
    pixels are then painted with those colors in those shares: the ink on the darkest pixels
    of the smooth estimate ``est``, c1 on the pixels most towards c1 along c1 - c2, c2 on the
    rest. A constant correction keeps the block mean exact. Vectorized over blocks
    ([blocks, 28 pairs] for the fit, [blocks, pixels] for the ranking)."""
    nby, nbx = target.shape[:2]
    pixels = _to_blocks(est, start, block, (nby, nbx))  # [nby, nbx, P, 3]
    count = pixels.shape[2]
    edge = np.pad(target, ((1, 1), (1, 1), (0, 0)), mode="edge")
    cand = np.stack([edge[1 + di:1 + di + nby, 1 + dj:1 + dj + nbx]
                     for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)], axis=2)
    first, second = np.triu_indices(cand.shape[2], 1)
    c1, c2 = cand[:, :, first], cand[:, :, second]  # [nby, nbx, 28, 3]
    u, r = c1 - c2, target[:, :, None, :] - c2
    uu = np.maximum((u * u).sum(-1), 1e-6)
    if ink is None:
        k = np.zeros_like(uu)
        v = np.zeros_like(u)
    else:
        # m - c2 = a (c1 - c2) + k (ink - c2): 2x2 normal equations, then clipped to shares
        v = ink.astype(np.float32) - c2
        vv = np.maximum((v * v).sum(-1), 1e-6)
        uv, ur, vr = (u * v).sum(-1), (u * r).sum(-1), (v * r).sum(-1)
        det = uu * vv - uv * uv
        solvable = det > 1e-3 * uu * vv
        k = np.where(solvable, (uu * vr - uv * ur) / np.where(solvable, det, 1.0), vr / vv)
        k = np.clip(k, 0.0, 1.0)
    a = np.clip((u * (r - k[..., None] * v)).sum(-1) / uu, 0.0, 1.0 - k)
    resid = np.linalg.norm(r - a[..., None] * u - k[..., None] * v, axis=-1)
    # among equally good pairs, the one furthest apart (the real colors, not two mixes)
    best = np.argmin(resid - 1e-3 * np.sqrt(uu), axis=2)[:, :, None]

    def pick(x: np.ndarray) -> np.ndarray:
        return np.take_along_axis(x, best if x.ndim == 3 else best[..., None], axis=2)[:, :, 0]

    c1, c2, a, k, resid = pick(c1), pick(c2), pick(a), pick(k), pick(resid)
    n_ink = np.round(k * count)[..., None]
    n_c1 = np.round(a * count)[..., None]
    darkness_rank = np.argsort(np.argsort(pixels.sum(-1), axis=2, kind="stable"), axis=2)
    is_ink = darkness_rank < n_ink
    toward_c1 = ((pixels - c2[:, :, None]) * (c1 - c2)[:, :, None]).sum(-1)
    toward_c1[is_ink] = -np.inf
    c1_rank = np.argsort(np.argsort(-toward_c1, axis=2, kind="stable"), axis=2)
    is_c1 = (c1_rank < n_c1) & ~is_ink
    out = np.where(is_c1[..., None], c1[:, :, None], c2[:, :, None]).astype(np.float32)
    if ink is not None:
        out[is_ink] = ink
    out += (target - out.mean(axis=2))[:, :, None]
    fits = np.broadcast_to((resid < tolerance)[:, :, None, None], (nby, nbx, count, 1))
    shape = est.shape[:2]
    return (_from_blocks(out, start, block, shape),
            _from_blocks(fits.astype(np.uint8), start, block, shape)[..., 0] > 0)
