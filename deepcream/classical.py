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
from an edge-directed upsampling of the block grid and corrects it so that every block's mean
equals the mosaic's (iterative back-projection), then blends into the pixels around the
region so that no halo appears at its border.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

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


def hole_window(holes: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The holes' bounding box grown by ``margin`` (clipped to the array)."""
    rows = np.flatnonzero(holes.any(axis=1))
    cols = np.flatnonzero(holes.any(axis=0))
    h, w = holes.shape
    return (slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, h)),
            slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, w)))


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
# Share of the snapped (nearest block color) estimate in the mosaic fill; chosen on the tune
# seeds of scripts/classical_quality.py (0: best photos SSIM, 1: best drawn-art SSIM).
SNAP_SHARE = 0.5


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
    inside blocks. Last, an edge-directed step (``_snap_to_block_colors``). Cost: linear in
    the crop area."""
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
    # Edge-directed step: half of each hole pixel's value is snapped to the nearest nearby
    # block color (sharp edges in flat art), half stays smooth (gradients in photos).
    snapped = _snap_to_block_colors(est, target, (sy, sx), (by, bx))
    est[holes] = (1 - SNAP_SHARE) * est[holes] + SNAP_SHARE * snapped[holes]
    return np.clip(est + 0.5, 0, 255).astype(np.uint8)


def _snap_to_block_colors(est: np.ndarray, target: np.ndarray, start: tuple[int, int],
                          block: tuple[int, int]) -> np.ndarray:
    """Every pixel takes the block color, among its own block's and the 8 neighbours', that
    is nearest to the smooth estimate ``est``: flat art's edges come back sharp, where the
    smooth estimate crosses between two colors. Computed block-wise ([blocks, pixels, 9])."""
    h, w = est.shape[:2]
    (sy, sx), (by, bx) = start, block
    nby, nbx = target.shape[:2]
    pad = ((-sy, nby * by - h + sy), (-sx, nbx * bx - w + sx), (0, 0))
    blocks = np.pad(est, pad).reshape(nby, by, nbx, bx, 3).transpose(0, 2, 1, 3, 4)
    blocks = blocks.reshape(nby, nbx, by * bx, 3)
    edge = np.pad(target, ((1, 1), (1, 1), (0, 0)), mode="edge")
    cand = np.stack([edge[1 + di:1 + di + nby, 1 + dj:1 + dj + nbx]
                     for di in (-1, 0, 1) for dj in (-1, 0, 1)], axis=2)  # [nby, nbx, 9, 3]
    # |e - c|^2 = |c|^2 - 2 e.c (+ |e|^2, the same for every candidate)
    score = (cand**2).sum(axis=3)[:, :, None, :] - 2.0 * np.einsum(
        "ijpc,ijkc->ijpk", blocks, cand, optimize=True)
    pick = np.argmin(score, axis=3)  # [nby, nbx, P]
    snapped = np.take_along_axis(cand, pick[..., None], axis=2)  # [nby, nbx, P, 3]
    snapped = snapped.reshape(nby, nbx, by, bx, 3).transpose(0, 2, 1, 3, 4)
    snapped = snapped.reshape(nby * by, nbx * bx, 3)
    return snapped[-sy:-sy + h, -sx:-sx + w]
