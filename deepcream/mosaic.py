"""Automatic mosaic (pixelation) detection, with no trained network.

A mosaic is a grid of constant-color p x p blocks: its horizontal gradient is zero except on
the columns x = phase (mod p), and likewise vertically. Flat areas of an illustration have no
steps at all, and natural texture has gradients everywhere, so "steps exactly on a periodic
grid, nothing in between" identifies a mosaic. The detector:

1. computes luma gradients and keeps *grid-like* steps: local maxima across the step
   direction that persist along it (a block edge is a straight line at least 3 px long);
2. estimates, per overlapping 128 px tile, the period and phase of those steps in x and y by
   folding the tile's column (row) step counts modulo every p in ``min_block..max_block``
   (chance-corrected, so a divisor of the true period does not win);
3. for every grid found, checks each p x p cell of the grid: flat inside (relative to its
   edges; JPEG leaves some noise) and a real color step on at least two of its four sides;
4. cleans up in cell space (closing, hole filling, minimum size), then extends the regions
   over the partial blocks where the pixelated area does not end on a grid line.

All steps are vectorised numpy/OpenCV; a 2604x2513 image takes well under a second.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

MIN_BLOCK = 3
MAX_BLOCK = 48
_TILE = 128
_STRIDE = 64
# A gradient counts as a grid-like step when it exceeds its across-neighbours by this much
# (luma levels) on three consecutive pixels along the edge.
_STEP_MIN = 2.0
# Chance-corrected share of a tile's steps on one phase needed to call the tile periodic.
_PERIODIC_SCORE = 0.35
# Minimum number of on-grid step pixels per axis in a tile (a few short lines are not a grid).
_MIN_GRID_PIXELS = 40
# Cell tests: a side is a step when its mean gradient is >= _SIDE_RATIO x the cell's mean
# interior gradient + _SIDE_MIN; a cell is flat when its interior gradient is <= _FLAT_MAX.
_SIDE_RATIO = 2.5
_SIDE_MIN = 1.5
_FLAT_MAX = 8.0
# Smallest accepted region, in cells.
_MIN_CELLS = 6


def _luma(rgb: np.ndarray) -> np.ndarray:
    weights = np.array([[0.299, 0.587, 0.114]], np.float32)
    return np.ascontiguousarray(cv2.transform(rgb.astype(np.float32), weights))


def _gradients(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gx[:, x] = |Y[:, x] - Y[:, x-1]| (0 in column 0), gy likewise along rows."""
    gx = np.zeros_like(y)
    gy = np.zeros_like(y)
    cv2.absdiff(y[:, 1:], y[:, :-1], dst=gx[:, 1:])
    cv2.absdiff(y[1:, :], y[:-1, :], dst=gy[1:, :])
    return gx, gy


def _grid_steps(g: np.ndarray, axis: int) -> np.ndarray:
    """Binary map of isolated steps across ``axis`` (1: x) that persist 3 px along the edge."""
    if axis == 1:
        nb = np.zeros_like(g)
        nb[:, 1:-1] = np.maximum(g[:, :-2], g[:, 2:])
        iso = g - nb
        persist = cv2.erode(iso, np.ones((3, 1), np.uint8))
    else:
        nb = np.zeros_like(g)
        nb[1:-1, :] = np.maximum(g[:-2, :], g[2:, :])
        iso = g - nb
        persist = cv2.erode(iso, np.ones((1, 3), np.uint8))
    return persist > _STEP_MIN


def _fold_matrix(min_block: int, max_block: int) -> tuple[np.ndarray, list[int], list[int]]:
    """One-hot [TILE, sum(p)] matrix: column offset k -> (p, k mod p) for every period p."""
    periods = list(range(min_block, max_block + 1))
    starts = []
    cols = 0
    for p in periods:
        starts.append(cols)
        cols += p
    m = np.zeros((_TILE, cols), np.float32)
    k = np.arange(_TILE)
    for p, s in zip(periods, starts, strict=True):
        m[k, s + k % p] = 1.0
    return m, periods, starts


def _tile_profiles(steps: np.ndarray, axis: int) -> np.ndarray:
    """Step counts per tile along ``axis``: [nty, ntx, TILE] (tiles of TILE, stride STRIDE).

    axis=1: column profiles (counts of x-steps per column over the tile's rows);
    axis=0: row profiles.
    """
    h, w = steps.shape
    hp = max(_TILE, -(-h // _STRIDE) * _STRIDE)
    wp = max(_TILE, -(-w // _STRIDE) * _STRIDE)
    padded = np.zeros((hp, wp), np.float32)
    padded[:h, :w] = steps
    if axis == 1:
        bands = padded.reshape(hp // _STRIDE, _STRIDE, wp).sum(axis=1)  # [nby, wp]
        rows = bands[:-1] + bands[1:]  # [nty, wp]
        win = np.lib.stride_tricks.sliding_window_view(rows, _TILE, axis=1)[:, ::_STRIDE]
        return win  # [nty, ntx, TILE]
    bands = padded.reshape(hp, wp // _STRIDE, _STRIDE).sum(axis=2)  # [hp, nbx]
    cols = bands[:, :-1] + bands[:, 1:]  # [hp, ntx]
    win = np.lib.stride_tricks.sliding_window_view(cols, _TILE, axis=0)[::_STRIDE]
    return win  # [nty, ntx, TILE]


def _periodicity(profiles: np.ndarray, fold: np.ndarray, periods: list[int],
                 starts: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tile and period: chance-corrected score [n, P], best local phase [n, P] and the
    step count on that phase [n, P]."""
    flat = profiles.reshape(-1, _TILE)
    folded = flat @ fold
    total = flat.sum(axis=1, keepdims=True)
    n = flat.shape[0]
    score = np.zeros((n, len(periods)), np.float32)
    phase = np.zeros((n, len(periods)), np.int64)
    onp = np.zeros((n, len(periods)), np.float32)
    safe = np.maximum(total[:, 0], 1.0)
    for i, (p, s) in enumerate(zip(periods, starts, strict=True)):
        block = folded[:, s:s + p]
        ph = block.argmax(axis=1)
        best = block[np.arange(n), ph]
        share = best / safe
        score[:, i] = (share - 1.0 / p) / (1.0 - 1.0 / p)
        phase[:, i] = ph
        onp[:, i] = best
    return score, phase, onp


def _cell_stats(gx: np.ndarray, gy: np.ndarray, p: int, x0: int, y0: int, ncx: int, ncy: int
                ) -> np.ndarray:
    """Accepted cells (bool [ncy, ncx]) of the grid with period p whose first full cell starts
    at (x0, y0)."""
    h, w = gx.shape
    ys, ye, xs, xe = y0, y0 + ncy * p, x0, x0 + ncx * p
    cx = gx[ys:ye, xs:xe].reshape(ncy, p, ncx, p)
    cy = gy[ys:ye, xs:xe].reshape(ncy, p, ncx, p)
    # Steps on the grid lines: x-steps at the left edge of each cell (and the right edge of
    # the last one), y-steps at the top edge.
    line_cols = np.minimum(xs + p * np.arange(ncx + 1), w - 1)
    vlines = gx[ys:ye][:, line_cols].reshape(ncy, p, ncx + 1).mean(axis=1)
    if xe >= w:
        vlines[:, -1] = 0.0
    line_rows = np.minimum(ys + p * np.arange(ncy + 1), h - 1)
    hlines = gy[line_rows][:, xs:xe].reshape(ncy + 1, ncx, p).mean(axis=2)
    if ye >= h:
        hlines[-1, :] = 0.0
    if xs == 0:
        vlines[:, 0] = 0.0
    if ys == 0:
        hlines[0, :] = 0.0
    # Interior: gradients strictly inside the cell. JPEG smears a step over the pixel next to
    # the line, so for p >= 5 the first interior column/row is left out.
    skip = 2 if p >= 5 else 1
    inner_x = cx[:, :, :, skip:].mean(axis=(1, 3))
    inner_y = cy[:, skip:, :, :].mean(axis=(1, 3))
    inner = np.maximum(inner_x, inner_y)
    need = _SIDE_RATIO * inner + _SIDE_MIN
    sides = ((vlines[:, :-1] >= need).astype(np.int8) + (vlines[:, 1:] >= need)
             + (hlines[:-1, :] >= need) + (hlines[1:, :] >= need))
    return (sides >= 2) & (inner <= _FLAT_MAX)


def _clean_cells(cells: np.ndarray) -> np.ndarray:
    """Close one-cell gaps, fill enclosed holes (blocks equal to their neighbours, strokes
    over the mosaic), drop regions smaller than _MIN_CELLS."""
    if not cells.any():
        return cells
    st = np.ones((3, 3), bool)
    padded = np.pad(cells, 1)
    closed = ndimage.binary_closing(padded, structure=st)[1:-1, 1:-1] | cells
    filled = ndimage.binary_fill_holes(closed)
    labels, n = ndimage.label(filled, structure=st)
    if n == 0:
        return filled
    sizes = np.bincount(labels.ravel())
    # Accepted (not just filled) cells per component must also reach the minimum.
    real = np.bincount(labels.ravel(), weights=cells.ravel(), minlength=n + 1)
    keep = (sizes >= _MIN_CELLS) & (real >= _MIN_CELLS * 0.75)
    keep[0] = False
    return keep[labels]


def detect_mosaic(rgb: np.ndarray, *, min_block: int = MIN_BLOCK, max_block: int = MAX_BLOCK
                  ) -> np.ndarray:
    """Mask (bool [H, W]) of the pixelated regions of an RGB (or grey) uint8 image."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim not in (2, 3):
        raise ValueError("detect_mosaic expects a uint8 [H, W, 3] or [H, W] array")
    if rgb.ndim == 3 and rgb.shape[2] != 3:
        raise ValueError(f"detect_mosaic expects 3 channels, got {rgb.shape[2]}")
    if not 2 <= min_block <= max_block <= _TILE // 2:
        raise ValueError(f"block sizes must satisfy 2 <= min <= max <= {_TILE // 2}")
    h, w = rgb.shape[:2]
    result = np.zeros((h, w), bool)
    if h < 4 * min_block or w < 4 * min_block:
        return result
    y = _luma(rgb) if rgb.ndim == 3 else rgb.astype(np.float32)
    gx, gy = _gradients(y)
    sx = _grid_steps(gx, axis=1)
    sy = _grid_steps(gy, axis=0)
    fold, periods, starts = _fold_matrix(min_block, max_block)
    px = _tile_profiles(sx, axis=1)
    py = _tile_profiles(sy, axis=0)
    nty, ntx = px.shape[:2]
    score_x, phase_x, on_x = _periodicity(px, fold, periods, starts)
    score_y, phase_y, on_y = _periodicity(py, fold, periods, starts)
    score = np.minimum(score_x, score_y)
    best = score.max(axis=1)
    # Largest period scoring near the best: divisors of the true period score the same after
    # chance correction, multiples score less, so prefer the largest near-best one.
    near = score >= 0.8 * best[:, None]
    pick = len(periods) - 1 - np.argmax(near[:, ::-1], axis=1)
    idx = np.arange(len(best))
    ok = ((best >= _PERIODIC_SCORE) & (score[idx, pick] >= _PERIODIC_SCORE)
          & (on_x[idx, pick] >= _MIN_GRID_PIXELS) & (on_y[idx, pick] >= _MIN_GRID_PIXELS))
    grids: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for t in np.nonzero(ok)[0]:
        ty, tx = divmod(int(t), ntx)
        p = periods[pick[t]]
        fx = (int(phase_x[t, pick[t]]) + tx * _STRIDE) % p
        fy = (int(phase_y[t, pick[t]]) + ty * _STRIDE) % p
        grids.setdefault((p, fx, fy), []).append((ty, tx))
    for (p, fx, fy), tiles in grids.items():
        tys = [t[0] for t in tiles]
        txs = [t[1] for t in tiles]
        bx0 = max(0, min(txs) * _STRIDE - p)
        by0 = max(0, min(tys) * _STRIDE - p)
        bx1 = min(w, max(txs) * _STRIDE + _TILE + p)
        by1 = min(h, max(tys) * _STRIDE + _TILE + p)
        # First full cell inside the box (column fx is a grid line: step between fx-1 and fx).
        x0 = bx0 + (fx - bx0) % p
        y0 = by0 + (fy - by0) % p
        ncx = (bx1 - x0) // p
        ncy = (by1 - y0) // p
        if ncx < 2 or ncy < 2:
            continue
        cells = _clean_cells(_cell_stats(gx, gy, p, x0, y0, ncx, ncy))
        if not cells.any():
            continue
        pix = np.repeat(np.repeat(cells, p, axis=0), p, axis=1)
        result[y0:y0 + ncy * p, x0:x0 + ncx * p] |= pix
    return result
