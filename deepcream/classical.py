"""Model-free fills used by the classical engine (``engines.ClassicalEngine``).

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
