"""Automatic mosaic (pixelation) detection, with no trained network.

A mosaic is a grid of constant-color p x p blocks: its horizontal gradient is zero except on
the columns x = phase (mod p), and likewise vertically. Flat areas of an illustration have no
steps at all, and natural texture has gradients everywhere, so "steps exactly on a periodic
grid, nothing in between" identifies a mosaic. The detector (docs/mask-help.md):

1. luma gradients; keep *grid-like* steps: local maxima across the step direction that
   persist along it (a block edge is a straight line at least 3 px long);
2. per overlapping 128 px tile, the period and phase of those steps in x and y, by folding
   the tile's column (row) step counts modulo every p in 2..max_block (one matrix product),
   chance-corrected so that a divisor of the true period scores like the period itself
   (on an image upscaled by pixel repetition, found first, steps are judged at the source
   resolution and the chance level counts the phases its texture can fall on);
3. for every grid found, tests each p x p cell: flat inside and a real step on a vertical
   and a horizontal side (strong), or as flat as the strong cells with small steps on two
   sides (weak, joins when connected to strong cells);
4. cleans up in cell space (hole filling, minimum size and thickness; on lossless input a
   thin staircase of 4+ exclusive blocks, exactly constant cells in a color found nowhere
   else around them, is kept too), grows each solid region's (or sparse region of mostly
   strong cells') bounding box across flat cells to further blocks of its grid (first to
   cells with whole block edges on lossy flat art) and completes it with the flat cells
   inside (blocks over flat fills); on truly lossless input cuts each region to the box of
   its block pairs (two one-color cells meeting on a grid line) and joins separate groups of
   them across one-color cells (a patch over line art seen in pieces); then fits the region
   border to the pixels: partial blocks where the pixelated area does not end on a grid
   line, border cells trimmed where the patch border crosses them (or at their grid line's
   median).

All steps are vectorised numpy/OpenCV/SciPy; no downsampling.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage

MIN_BLOCK = 3
MAX_BLOCK = 48
_TILE = 128
_STRIDE = 64
# Grid-like step: exceeds its across-neighbours by this much (luma levels) on three
# consecutive pixels along the edge.
_STEP_MIN = 2.0
# Tile periodicity: chance-corrected share of the steps on one phase, in x and in y.
_PERIODIC_SCORE = 0.25
# The best-scoring period may be a divisor of the true one: its largest multiple scoring at
# least this share of the best is taken.
_NEAR_BEST = 0.65
# A period one off the picked one is tested too when it scores this share of it.
_NEIGHBOUR_SCORE = 0.8
# Minimum number of on-grid step pixels per axis in a tile (a few short lines are not a grid).
_MIN_GRID_PIXELS = 40
# Runner-up phase of a tile: tested too when it has this share of the best phase's steps
# (periods from _RUNNER_UP_MIN_P: few grid lines per tile).
_RUNNER_UP = 0.4
_RUNNER_UP_MIN_P = 16
# Cell tests: a side is a step when its mean gradient is >= _SIDE_RATIO x the cell's
# interior gradient + _SIDE_MIN; a cell is flat when its interior gradient is <= _FLAT_MAX.
_SIDE_RATIO = 2.0
_SIDE_MIN = 1.5
_FLAT_MAX = 20.0
# Regions: at least min(_MIN_CELLS, _MIN_AREA / p^2) (>= 3) strong cells, making up this
# share of the region's found cells (more for grids aligned with JPEG's own 8x8 blocks, less
# for small blocks whose steps JPEG smears).
_MIN_CELLS = 6
_MIN_AREA = 2500
_SEED_SHARE = 0.1
_JPEG_GRID_SEED_SHARE = 0.4
_SMALL_BLOCK = 6
_SMALL_SEED_SHARE = 0.05
# Pixels kept around a grid's crop.
_MARGIN = 2
# Median interior gradient of the accepted cells up to which the input counts as lossless
# (blocks exactly constant).
_CLEAN_NOISE = 0.25
# Pixels added around the tiles that found a grid before testing its cells.
_BOX_MARGIN = 128
_LOSSLESS_MIN_CELLS = 12
# Share of the strong cells that must be exactly constant (all channels) for weak cells to
# have to be exactly constant as well.
_EXACT_SHARE = 0.5
# Lossy input: cell tests on a median-filtered luma, 3x3 from this block size, 5x5 from the
# next (small blocks would lose their corners).
_MEDIAN_MIN_P = 5
_MEDIAN5_MIN_P = 10
# Partial blocks: share of a cell's lines whose constant run ends at the same place.
_PARTIAL_AGREE = 0.7
# Lossy partial blocks from this block size: a cell beside the region with no straight run
# of its own takes its grid line's border width when most of its lines run at least that far
# (the surroundings continue the block's color; smaller blocks are too short to tell a
# partial block from smooth surroundings).
_STRIP_FILL_MIN_P = 10
# Region completion: only regions filling this share of their bounding box (in cells).
_COMPLETE_DENSITY = 0.2
# ... or this share when at least _SPARSE_STRONG of the region's cells are strong.
_SPARSE_DENSITY = 0.1
_SPARSE_STRONG = 0.3
# Lossless input: a region with at least this many *exclusive* blocks (exactly constant
# cells whose color occurs nowhere else around them: the mixed color of a line and a fill
# that pixelation averaged) is a mosaic even when thin (a one-cell staircase along an edge).
_CERT_MIN = 4
# Lossy border cells with no step inside: the part from the region side whose roughness
# (spread along each line) is <= _TEX_RATIO x that of its first two lines + _TEX_MIN is the
# partial block, when the rest of the cell is at least _TEX_OUTER x rougher (a textured or
# smoothly shaded background whose mean the block matches).
_TEX_RATIO = 2.0
_TEX_MIN = 0.5
_TEX_OUTER = 2.0
_V1 = 0
_V2 = -1
# Lossy flat art: a strong cell has *block edges* when the step exceeds its side threshold on
# at least this share of a vertical and of a horizontal side's pixels; a grid counts as over
# flat art when at least _FILL_SHARE of its cells are exactly flat on the unfiltered luma
# (JPEG decodes a flat fill exactly constant away from edges; photos: 0-15%).
_EDGE_COVER = 0.5
_FILL_SHARE = 0.25
# Pixel repetition (an image upscaled k x by repeating pixels): the factors tried; luma
# differences up to _REP_NOISE are JPEG noise; the off phases carry at most _REP_RATIO of the
# on phase's steps over the image and in _REP_TILES of the _REP_TILE px tiles whose on phase
# has a mean step of _REP_TEXTURE or more, where _REP_SPREAD of the on-phase columns (rows)
# carry _REP_COLUMN of their mean.
_REP_FACTORS = (2, 3, 4)
_REP_NOISE = 1.0
_REP_RATIO = 0.55
_REP_TILE = 64
_REP_TEXTURE = 0.5
_REP_TILES = 0.75
_REP_SPREAD = 0.5
_REP_COLUMN = 0.25
# Faint small blocks (p <= _SMALL_BLOCK, e.g. over a smooth gradient): JPEG leaves steps of
# 1-2 levels on the grid lines, below the per-cell side threshold, yet larger than the mean
# step inside the cells. A cell is faint when the mean step of its vertical sides exceeds
# _FAINT_RATIO x its interior mean x-step + _FAINT_MIN (likewise horizontally), and most
# (_FAINT_VOTE) of its 3 x 3 neighbourhood is faint too.
_FAINT_RATIO = 1.5
_FAINT_MIN = 0.3
_FAINT_VOTE = 0.75


def _grid_steps(g: np.ndarray, axis: int, across: int = 1, along: int = 1) -> np.ndarray:
    """Binary map of isolated steps across ``axis`` (1: x) that persist 3 px along the edge.

    ``across``/``along``: pixel-repetition factors of the image across and along the steps
    (1: none). On an image upscaled k x by repeating pixels every step is trivially isolated
    from its 1 px neighbours (the repeated pixels' differences are 0) and persists k px: there
    a step must exceed every step within ``across`` px (its neighbours on the original image)
    and persist ``along`` + 2 px (two source pixels and more; 2 ``along`` + 1, three source
    pixels, lost more of the weak block edges that JPEG leaves)."""
    r, n = across, along + 2
    if axis == 1:
        nb = np.zeros_like(g)
        for d in range(1, r + 1):
            nb[:, d:-d] = np.maximum(nb[:, d:-d], np.maximum(g[:, :-2 * d], g[:, 2 * d:]))
        iso = g - nb
        persist = cv2.erode(iso, np.ones((n, 1), np.uint8))
    else:
        nb = np.zeros_like(g)
        for d in range(1, r + 1):
            nb[d:-d, :] = np.maximum(nb[d:-d, :], np.maximum(g[:-2 * d, :], g[2 * d:, :]))
        iso = g - nb
        persist = cv2.erode(iso, np.ones((1, n), np.uint8))
    return persist > _STEP_MIN


def _repetition(g: np.ndarray, axis: int) -> int:
    """Pixel-repetition factor k (1: none) of an image along ``axis`` from its gradient across
    it (``gx`` for axis 1): upscaled k x by repeating pixels, only one column (row) phase mod
    k has steps, exactly 0 elsewhere on lossless input and small after JPEG. Differences up
    to _REP_NOISE levels are discounted (JPEG noise), and the off phases must be that flat
    over the image and in most textured tiles, with steps on most on-phase columns there: a
    mosaic, whose grid lines are also on one phase when its period is a multiple of k, covers
    a part of the image only and leaves the on-phase columns between its lines empty."""
    t = _REP_TILE
    d = cv2.subtract(g, _REP_NOISE)
    np.maximum(d, 0.0, out=d)
    h, w = d.shape
    if axis == 1:  # bands of t rows: [nb, w] step sums per column
        nb = h // t
        bands = d[:nb * t].reshape(nb, t, w).sum(axis=1)
    else:  # bands of t columns: [nb, h] step sums per row
        nb = w // t
        bands = d[:, :nb * t].reshape(h, nb, t).sum(axis=2).T
    if nb < 1:
        return 1
    total = bands.sum(axis=0)
    n = total.shape[0]
    best = 1
    for k in _REP_FACTORS:
        tw = t // k  # tile width in groups of k columns (rows)
        nk = n // k
        if nk < tw:
            continue
        tot = total[:nk * k].reshape(nk, k).sum(axis=0)
        on = int(tot.argmax())
        off = np.delete(tot, on).max()
        if tot[on] <= 0 or off > _REP_RATIO * tot[on]:
            continue
        nx = nk // tw
        groups = bands[:, :nx * tw * k].reshape(nb, nx, tw, k)
        tiles = groups.sum(axis=2)  # [nb, nx, k]
        t_on = tiles[..., on]
        t_off = np.delete(tiles, on, axis=2).max(axis=2)
        textured = t_on >= _REP_TEXTURE * t * tw
        # Texture has steps on (nearly) every on-phase column; a mosaic's grid lines on one
        # phase mod k (its period a multiple of k) leave most of them empty.
        cols = groups[..., on]
        spread = (cols >= _REP_COLUMN * (t_on / tw)[..., None]).mean(axis=2)
        rep = textured & (t_off <= _REP_RATIO * t_on) & (spread >= _REP_SPREAD)
        n_tex = np.count_nonzero(textured)
        if n_tex and np.count_nonzero(rep) >= _REP_TILES * n_tex:
            best = k
    return best


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
                 starts: list[int], rep: int = 1
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per tile and period: chance-corrected score [n, P], best local phase [n, P], the
    step count on that phase [n, P], and the runner-up phase [n, P] (-1 unless it has at
    least _RUNNER_UP of the best phase's steps). ``rep``: the image's pixel-repetition factor
    k across the steps: texture steps then fall on one phase mod k only, i.e. on
    p / gcd(p, k) of the p phases by chance (none to tell apart when p divides k: score 0)."""
    flat = profiles.reshape(-1, _TILE)
    folded = flat @ fold
    total = flat.sum(axis=1, keepdims=True)
    n = flat.shape[0]
    score = np.zeros((n, len(periods)), np.float32)
    phase = np.zeros((n, len(periods)), np.int64)
    onp = np.zeros((n, len(periods)), np.float32)
    second = np.full((n, len(periods)), -1, np.int64)
    safe = np.maximum(total[:, 0], 1.0)
    for i, (p, s) in enumerate(zip(periods, starts, strict=True)):
        block = folded[:, s:s + p]
        ph = block.argmax(axis=1)
        best = block[np.arange(n), ph]
        share = best / safe
        chance = math.gcd(p, rep) / p
        score[:, i] = (share - chance) / (1.0 - chance) if chance < 1.0 else 0.0
        phase[:, i] = ph
        onp[:, i] = best
        if p >= _RUNNER_UP_MIN_P:
            rest = block.copy()
            rest[np.arange(n), ph] = -1.0
            ph2 = rest.argmax(axis=1)
            second[:, i] = np.where(rest[np.arange(n), ph2] >= _RUNNER_UP * best, ph2, -1)
    return score, phase, onp, second


def _gradients(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|step| as float32: gx[:, x] between x-1 and x, gy[y] between y-1 and y (0 on the
    first column/row). ``gray``: uint8 [H, W] or [H, W, 1]."""
    img = gray[:, :, 0] if gray.ndim == 3 else gray
    gx = np.zeros(img.shape, np.float32)
    gy = np.zeros(img.shape, np.float32)
    gx[:, 1:] = cv2.absdiff(img[:, 1:], img[:, :-1])
    gy[1:, :] = cv2.absdiff(img[1:, :], img[:-1, :])
    return gx, gy


class _Grid:
    """Cells of one grid (period p, phase fx, fy) over a box, on an edge-replicated crop.

    The crop starts _MARGIN pixels before a grid line so every cell's left/top step is inside
    it; edge replication turns a block cut by the image border into a whole constant block.
    """

    def __init__(self, rgb: np.ndarray, p: int, fx: int, fy: int,
                 box: tuple[int, int, int, int], denoise: int = 0) -> None:
        h, w = rgb.shape[:2]
        bx0, by0, bx1, by1 = box
        self.p = p
        self.gx0 = fx + p * ((bx0 - fx) // p)  # grid line at or before the box
        self.gy0 = fy + p * ((by0 - fy) // p)
        self.ncx = -(-(bx1 - self.gx0) // p)
        self.ncy = -(-(by1 - self.gy0) // p)
        m = _MARGIN
        x0, y0 = self.gx0 - m, self.gy0 - m
        x1, y1 = self.gx0 + self.ncx * p + m, self.gy0 + self.ncy * p + m
        src = rgb[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
        self.crop = cv2.copyMakeBorder(
            src, max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w), cv2.BORDER_REPLICATE)
        if self.crop.ndim == 2:
            self.crop = self.crop[:, :, None]
        # Luma: JPEG keeps it at full resolution and with less noise than chroma.
        gray = cv2.cvtColor(self.crop, cv2.COLOR_RGB2GRAY) if self.crop.shape[2] == 3 else self.crop
        if denoise:
            # A median keeps straight block edges and removes JPEG ringing inside blocks.
            gray = cv2.medianBlur(np.ascontiguousarray(gray), denoise)
        self.luma = gray.astype(np.float32)
        self.gx, self.gy = _gradients(gray)
        # Which cells overlap the image at all.
        cx = self.gx0 + p * np.arange(self.ncx)
        cy = self.gy0 + p * np.arange(self.ncy)
        self.inside = ((cy[:, None] + p > 0) & (cy[:, None] < h)
                       & (cx[None, :] + p > 0) & (cx[None, :] < w))
        self.image_size = (h, w)

    def cell_tests(self) -> tuple[np.ndarray, np.ndarray]:
        """(strong, weak) bool [ncy, ncx]: strong = flat inside with real steps on >= 2
        sides; weak = flat inside with a step on >= 1 side (grown from strong cells only)."""
        p, ncx, ncy = self.p, self.ncx, self.ncy
        m = _MARGIN
        y = self.luma
        # Steps across the grid lines. (Measuring across a wider span would see JPEG-smeared
        # steps better but also accepts straight edges of line art one pixel off the grid.)
        lines_x = m + p * np.arange(ncx + 1)
        rows = y[m:m + ncy * p]
        vlines = np.abs(rows[:, lines_x] - rows[:, lines_x - 1])
        vlines = vlines.reshape(ncy, p, ncx + 1).mean(axis=1)
        lines_y = m + p * np.arange(ncy + 1)
        cols = y[:, m:m + ncx * p]
        hlines = np.abs(cols[lines_y] - cols[lines_y - 1]).reshape(ncy + 1, ncx, p).mean(axis=2)
        cx = self.gx[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p)
        cy = self.gy[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p)
        # Interior: the strongest interior column (row) of mean gradient, so that one
        # off-grid straight edge (a pixelated area ending inside this cell) makes the cell
        # not flat even when the rest is. JPEG smears a step into the pixels beside the grid
        # line, so for p >= 5 those columns (rows) are left out.
        lo, hi = (2, p - 1) if p >= 5 else (1, p)
        inner = np.maximum(cx[:, :, :, lo:hi].mean(axis=1).max(axis=2),
                           cy[:, lo:hi, :, :].mean(axis=3).max(axis=1))
        need = _SIDE_RATIO * inner + _SIDE_MIN
        sides = ((vlines[:, :-1] >= need).astype(np.int8) + (vlines[:, 1:] >= need)
                 + (hlines[:-1, :] >= need) + (hlines[1:, :] >= need))
        flat = (inner <= _FLAT_MAX) & self.inside
        self.inner = inner
        # A mosaic is a 2-D grid: a strong cell has a step on a vertical and on a horizontal
        # side. (Cells along a straight thick outline of flat art have steps on the two
        # sides parallel to it only.)
        vert = (vlines[:, :-1] >= need) | (vlines[:, 1:] >= need)
        horiz = (hlines[:-1, :] >= need) | (hlines[1:, :] >= need)
        strong = flat & vert & horiz & (sides >= 2)
        # Block edges: between two constant blocks the step runs along the whole side (a
        # partial block at a patch corner covers part of it), while an edge of the art that
        # crosses a grid line near a cell corner steps on a few of its pixels only, yet
        # lifts the side's mean over the threshold.
        vstep = np.abs(rows[:, lines_x] - rows[:, lines_x - 1]).reshape(ncy, p, ncx + 1)
        hstep = np.abs(cols[lines_y] - cols[lines_y - 1]).reshape(ncy + 1, ncx, p)
        need_v, need_h = need[:, None, :], need[:, :, None]
        vert_e = (((vstep[:, :, :-1] >= need_v).mean(axis=1) >= _EDGE_COVER)
                  | ((vstep[:, :, 1:] >= need_v).mean(axis=1) >= _EDGE_COVER))
        horiz_e = (((hstep[:-1] >= need_h).mean(axis=2) >= _EDGE_COVER)
                   | ((hstep[1:] >= need_h).mean(axis=2) >= _EDGE_COVER))
        self.edged = strong & vert_e & horiz_e
        # Weak cells must be as flat as this grid's strong cells are (0 for PNG, JPEG noise
        # otherwise), not merely smooth like a natural background.
        level = float(np.median(inner[strong])) if strong.any() else 0.0
        # ... with steps on two sides, but small ones: a flat surrounding cell next to the
        # region has one step side only (the one it shares with the mosaic).
        need_weak = 1.5 * inner + 0.5
        weak_sides = ((vlines[:, :-1] >= need_weak).astype(np.int8) + (vlines[:, 1:] >= need_weak)
                      + (hlines[:-1, :] >= need_weak) + (hlines[1:, :] >= need_weak))
        weak = (inner <= 1.5 * level + 0.5) & self.inside & (weak_sides >= 2)
        return strong, weak

    def faint_cells(self) -> np.ndarray:
        """bool [ncy, ncx]: cells of a faint mosaic (see _FAINT_RATIO): mean steps on the
        grid lines above the mean step inside, on both axes, over most of a 3 x 3 window."""
        p, ncx, ncy = self.p, self.ncx, self.ncy
        m = _MARGIN
        y = self.luma
        lines_x = m + p * np.arange(ncx + 1)
        rows = y[m:m + ncy * p]
        vl = np.abs(rows[:, lines_x] - rows[:, lines_x - 1]).reshape(ncy, p, ncx + 1).mean(axis=1)
        lines_y = m + p * np.arange(ncy + 1)
        cols = y[:, m:m + ncx * p]
        hl = np.abs(cols[lines_y] - cols[lines_y - 1]).reshape(ncy + 1, ncx, p).mean(axis=2)
        ix = self.gx[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p)[:, :, :, 1:]
        iy = self.gy[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p)[:, 1:]
        cell = (((vl[:, :-1] + vl[:, 1:]) / 2 >= _FAINT_RATIO * ix.mean(axis=(1, 3)) + _FAINT_MIN)
                & ((hl[:-1] + hl[1:]) / 2 >= _FAINT_RATIO * iy.mean(axis=(1, 3)) + _FAINT_MIN))
        vote = ndimage.uniform_filter(cell.astype(np.float32), 3, mode="constant")
        return cell & (vote >= _FAINT_VOTE) & self.inside

    def constant_cells(self, which: np.ndarray) -> np.ndarray:
        """bool [ncy, ncx]: cells of ``which`` whose whole cell has exactly one color (all
        channels)."""
        p, ncx, ncy = self.p, self.ncx, self.ncy
        m = _MARGIN
        out = np.zeros(which.shape, bool)
        which = which & self.inside
        if not which.any():
            return out
        b = self.crop[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p, -1)
        iy, ix = np.nonzero(which)
        sel = b[iy, :, ix]  # [n, p, p, ch]
        out[iy, ix] = (sel == sel[:, :1, :1]).all(axis=(1, 2, 3))
        return out

    def block_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Block edges on grid lines: across the line, at least half a block's worth of lines
        (rows for a vertical grid line) run constant over the whole cell on both sides, in two
        different colors, each side in one color. Whole blocks meet like that, and so do
        partial blocks where the patch border crosses cells; clean flat art puts an edge
        exactly on a grid line only by chance. Returns (cells holding such an edge [ncy, ncx],
        edges across vertical grid lines [ncy, ncx-1], across horizontal ones [ncy-1, ncx])."""
        p, ncx, ncy = self.p, self.ncx, self.ncy
        m = _MARGIN
        c = self.crop[m:m + ncy * p, m:m + ncx * p].astype(np.int32)
        key = c[..., 0] if c.shape[-1] == 1 else (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
        by_rows = key.reshape(ncy, p, ncx, p)  # [i, r, j, c]: row r of cell (i, j)
        by_cols = by_rows.transpose(2, 3, 0, 1)  # [j, c, i, r]: column c of cell (i, j)
        need = max(2, p // 2)

        def edges(lines: np.ndarray) -> np.ndarray:
            """[a, n-1]: an edge between cells (a, k) and (a, k+1) of ``lines`` [a, line, n, px]."""
            const = (lines == lines[..., :1]).all(axis=3)  # [a, line, n]
            color = lines[..., 0]
            both = const[:, :, 1:] & const[:, :, :-1] & (color[:, :, 1:] != color[:, :, :-1])
            # Each side one color over the counted lines: as on the first counted line.
            first = np.argmax(both, axis=1)  # [a, n-1]
            ia, ik = np.indices(first.shape)
            ca = color[:, :, :-1][ia, first, ik][:, None, :]
            cb = color[:, :, 1:][ia, first, ik][:, None, :]
            ok = both & (color[:, :, :-1] == ca) & (color[:, :, 1:] == cb)
            return ok.sum(axis=1) >= need

        across_v = edges(by_rows)
        across_h = edges(by_cols).T
        out = np.zeros((ncy, ncx), bool)
        out[:, 1:] |= across_v
        out[:, :-1] |= across_v
        out[1:, :] |= across_h
        out[:-1, :] |= across_h
        return out & self.inside, across_v, across_h

    def exclusive_blocks(self, cand: np.ndarray) -> np.ndarray:
        """Cells of ``cand`` that are exactly constant (all channels, whole cell) in a color
        found nowhere else in the crop but in such cells: a pixelated cell over an edge of
        flat art has the *average* of the line and the fill, constant over exactly its cell.
        Clean flat art has its palette colors in shapes that do not end on one grid, and
        anti-aliased colors 1-2 px wide that vary along the edge."""
        p, ncx, ncy = self.p, self.ncx, self.ncy
        m = _MARGIN
        out = np.zeros(cand.shape, bool)
        exact = self.constant_cells(cand)
        if np.count_nonzero(exact) < _CERT_MIN:
            return out
        c = self.crop.astype(np.int32)
        keys = c[:, :, 0] if c.shape[2] == 1 else (c[:, :, 0] << 16) | (c[:, :, 1] << 8) | c[:, :, 2]
        idx = np.argwhere(exact)
        colors = keys[m + p * idx[:, 0], m + p * idx[:, 1]]
        in_cells = np.zeros(keys.shape, bool)
        in_cells[m:m + ncy * p, m:m + ncx * p] = np.repeat(np.repeat(exact, p, 0), p, 1)
        uniq = np.unique(colors)
        pos = np.clip(np.searchsorted(uniq, keys), 0, len(uniq) - 1)
        hit = uniq[pos] == keys
        bad = np.unique(keys[hit & ~in_cells])
        good = ~np.isin(colors, bad)
        out[idx[good, 0], idx[good, 1]] = True
        return out

    def partial_blocks(self, cells: np.ndarray, noise: float, lossless: bool) -> np.ndarray:
        """Pixel mask [ncy*p, ncx*p] of the cells plus the partial blocks around them: where
        the pixelated area ends between grid lines, the neighbouring cell starts with a
        constant strip continuing from the shared grid line. A strip filling the whole cell
        is the surroundings (or an undetectable block), not a partial block: left out.
        ``noise``: the cells' typical interior gradient on the unfiltered image; ``lossless``:
        the blocks are exactly constant (a few exact dark blocks after JPEG are not enough)."""
        p, ncx, ncy = self.p, self.ncx, self.ncy
        m = _MARGIN
        blocks = self.crop[m:m + ncy * p, m:m + ncx * p]
        blocks = blocks.reshape(ncy, p, ncx, p, -1).transpose(0, 2, 1, 3, 4)  # [i, j, r, c, ch]
        clean = lossless
        # Lossless: a partial block is exactly constant, so any change ends it (smooth
        # surroundings such as a sky change by a level every few pixels).
        tol = 0.0 if clean else 3.0 + 3.0 * noise
        pad = np.pad(cells, 1)
        left_in, right_in = pad[1:-1, :-2], pad[1:-1, 2:]
        up_in, down_in = pad[:-2, 1:-1], pad[2:, 1:-1]
        left_out, right_out, up_out, down_out = ~left_in, ~right_in, ~up_in, ~down_in
        left = pad[1:-1, :-2] & ~cells   # cell whose left neighbour is in the region
        right = pad[1:-1, 2:] & ~cells
        up = pad[:-2, 1:-1] & ~cells
        down = pad[2:, 1:-1] & ~cells

        def run(which: np.ndarray, axis: int, reverse: bool, straight: bool = True) -> np.ndarray:
            """Per cell (only where ``which``): the median over lines of the length of the
            constant run that starts at the cell side (axis 3: along rows from column 0,
            axis 2: along columns from row 0; ``reverse`` starts from the far side).
            ``straight``: 0 unless most lines' runs end at the median (a straight border)."""
            out = np.zeros(which.shape, np.int64)
            if not which.any():
                if straight:
                    runs.append((which, None))
                return out
            b = blocks[which].astype(np.int16)  # [n, r, c, ch]
            ax = axis - 1
            if reverse:
                b = np.flip(b, axis=ax)
            # Reference: the first pixel of each line. After JPEG (noisy cells) the median of
            # the first 3 pixels, and the first two always count: JPEG smears the grid
            # line's step into them.
            k = 1 if clean else min(3, p)
            head = b[:, :, :k] if ax == 2 else b[:, :k]
            ref = np.median(head, axis=ax, keepdims=True)
            same = np.abs(b - ref).max(axis=-1) <= tol
            if p >= 5 and not clean:
                if ax == 2:
                    same[:, :, :2] = True
                else:
                    same[:, :2] = True
            length = np.cumprod(same, axis=ax).sum(axis=ax)  # [n, lines]
            med = np.median(length, axis=-1)
            # A partial block ends on one straight line (the patch border): most lines must
            # end there. Smooth surroundings give runs that end wherever texture starts.
            agree = (np.abs(length - med[:, None]) <= (1 if clean else 2)).mean(axis=-1)
            ok = agree >= _PARTIAL_AGREE if straight else True
            out[which] = np.where(ok, med, 0).astype(np.int64)
            if straight:
                runs.append((which, length))
            return out

        runs: list = []  # (cells, per-line run lengths) of the straight runs, in call order

        w_from_left = run(left, 3, False)
        w_from_right = run(right, 3, True)
        h_from_top = run(up, 2, False)
        h_from_bottom = run(down, 2, True)
        for arr in (w_from_left, w_from_right, h_from_top, h_from_bottom):
            arr[arr >= p] = 0
            if clean:
                # Every pixel is a run of one: a 1 px strip is no evidence of a block.
                arr[arr < 2] = 0
        # A partial block's run is never shorter than the block (it may be longer where the
        # surroundings have the same color, e.g. a flat fill beyond the patch border), and a
        # patch border is straight: on each grid line the shortest run that two cells agree
        # on is the border. Lossy input too (there exact agreement measured better than
        # agreement within 1-2 px).
        for arr, line_axis in ((w_from_left, 0), (w_from_right, 0), (h_from_top, 1),
                               (h_from_bottom, 1)):
            lines = arr if line_axis == 1 else arr.T  # view: one grid line per row
            for line in lines:
                vals = line[line > 0]
                if len(vals) < 2:
                    continue
                v, n = np.unique(vals, return_counts=True)
                if (n >= 2).any():
                    border = v[np.argmax(n >= 2)]
                    np.minimum(line, border, out=line)
        # Lossy: a cell on such a grid line with no straight run of its own (its run went on
        # past the cell, or ended unevenly: surroundings of about the block's color beyond
        # the patch border) takes the border width when most of its lines run that far.
        if not clean and p >= _STRIP_FILL_MIN_P:
            for (which, length), arr, line_axis in zip(
                    runs, (w_from_left, w_from_right, h_from_top, h_from_bottom), (0, 0, 1, 1),
                    strict=True):
                if length is None:
                    continue
                full = np.zeros(which.shape + (p,), np.int64)
                full[which] = length
                lines = arr if line_axis == 1 else arr.T
                cand = which if line_axis == 1 else which.T
                per_line = full if line_axis == 1 else full.transpose(1, 0, 2)
                for k, line in enumerate(lines):
                    vals = line[line > 0]
                    if len(vals) < 2:
                        continue
                    v, n = np.unique(vals, return_counts=True)
                    if not (n >= 2).any():
                        continue
                    border = v[np.argmax(n >= 2)]
                    reach = (per_line[k] >= border).mean(axis=-1) >= _PARTIAL_AGREE
                    line[cand[k] & (line == 0) & reach] = border
        r = np.arange(p)
        # Border cells (region on one side, outside on the opposite side) may be a partial
        # block plus surroundings that happen to be smooth enough to pass the cell tests:
        # keep only the constant run from the region side when it clearly ends inside.
        open_top = cells & up_out & down_in
        open_bottom = cells & down_out & up_in
        open_left = cells & left_out & right_in
        open_right = cells & right_out & left_in
        keep_rows = np.ones((ncy, ncx, p), bool)
        keep_cols = np.ones((ncy, ncx, p), bool)
        luma = self.luma[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p).transpose(0, 2, 1, 3)

        def step_run(which: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
            """Lossy input: per border cell, the length from the region side to a straight
            step inside the cell (the patch border), -1 where there is none."""
            out = np.full(which.shape, -1, np.int64)
            if not which.any() or p < 6:
                return out
            b = luma[which]  # [n, r, c]
            ax = axis - 1
            if reverse:
                b = np.flip(b, axis=ax)
            d = np.abs(np.diff(b, axis=ax)).mean(axis=3 - ax)  # [n, p-1]: step after i
            # JPEG smears the steps on the cell's own grid lines into its first and last two
            # pixels: a border step is looked for between them.
            cand = d.copy()
            cand[:, :2] = -1.0
            cand[:, p - 3:] = -1.0
            i = cand.argmax(axis=1)
            top = d[np.arange(len(i)), i]
            pos = np.arange(p - 1)[None, :]
            # The region side must be flat up to the step (JPEG smears it by a pixel).
            before = np.where(pos < i[:, None] - 1, d, 0).max(axis=1)
            ok = (top >= 2.0 * np.median(d, axis=1) + _SIDE_MIN) & (before <= 0.5 * top)
            out[which] = np.where(ok, i + 1, -1)
            return out

        def texture_run(which: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
            """Lossy input, border cells with no step: the length from the region side over
            which the cell is as constant as a block along its lines, when the rest of the
            cell is clearly rougher (a partial block beside a textured or shaded background
            whose mean it matches), -1 otherwise."""
            out = np.full(which.shape, -1, np.int64)
            if not which.any() or p < 6:
                return out
            b = luma[which]  # [n, r, c]
            # Roughness of a line: the spread (standard deviation) of its pixels over the
            # cell, its first and last two (JPEG-smeared grid lines) left out. A block's part
            # is constant along it; a smooth background (a sky) changes too slowly for
            # neighbouring pixels to differ after JPEG, but over a block's length it does.
            # (Trimmed along c, axis 3: each column's spread down the rows.)
            rough = b[:, 2:p - 2].std(axis=1) if axis == 3 else b[:, :, 2:p - 2].std(axis=2)
            if reverse:
                rough = rough[:, ::-1]
            thr = _TEX_RATIO * rough[:, :2].mean(axis=1) + _TEX_MIN
            smooth = rough <= thr[:, None]
            length = np.cumprod(smooth, axis=1).sum(axis=1)
            pos = np.arange(p)[None, :]
            rest = pos >= (length + 1)[:, None]
            outer = (rough * rest).sum(axis=1) / np.maximum(rest.sum(axis=1), 1)
            ok = (length >= 2) & (length <= p - 3) & (outer >= _TEX_OUTER * thr)
            out[which] = np.where(ok, length, -1)
            return out

        def consensus(out: np.ndarray, which: np.ndarray, axis: int) -> np.ndarray:
            """Border cells with no length of their own (-1) take the median length of the
            other border cells on the same grid line (column for left/right borders, row for
            top/bottom): a patch border is straight, and over flat or smooth surroundings it
            is invisible in places."""
            line_axis = 0 if axis == 3 else 1
            n_found = np.count_nonzero(out >= 0, axis=line_axis)
            if not n_found.any():
                return out
            med = np.zeros(n_found.shape, np.int64)
            for k in np.nonzero(n_found)[0]:
                vals = out[:, k] if line_axis == 0 else out[k, :]
                med[k] = int(np.median(vals[vals >= 0]))
            fill = med[None, :] if line_axis == 0 else med[:, None]
            has = (n_found > 0)[None, :] if line_axis == 0 else (n_found > 0)[:, None]
            return np.where(which & (out < 0) & has, fill, out)

        for which, axis, reverse, keep in ((open_top, 2, True, keep_rows),
                                           (open_bottom, 2, False, keep_rows),
                                           (open_left, 3, True, keep_cols),
                                           (open_right, 3, False, keep_cols)):
            if clean:
                length = run(which, axis, reverse, straight=False)
                length = np.where(which & (length < p - 1), length, -1)
            else:
                # JPEG noise breaks constant runs early: look for the border's step instead.
                length = step_run(which, axis, reverse)
                length = np.where(length < 0, texture_run(which, axis, reverse), length)
            length = consensus(length, which, axis)
            cut = which & (length >= 0 if clean else length >= 1)
            idx = r[::-1] if reverse else r
            keep &= ~cut[:, :, None] | (idx[None, None, :] < length[:, :, None])
        trimmed = cells[:, :, None, None] & keep_rows[:, :, :, None] & keep_cols[:, :, None, :]
        out = trimmed.transpose(0, 2, 1, 3).reshape(ncy * p, ncx * p)
        col_left = r[None, None, :] < w_from_left[:, :, None]   # [i, j, c]
        col_right = r[None, None, ::-1] < w_from_right[:, :, None]
        row_top = r[None, None, :] < h_from_top[:, :, None]
        row_bottom = r[None, None, ::-1] < h_from_bottom[:, :, None]
        side = (col_left | col_right)[:, :, None, :] | (row_top | row_bottom)[:, :, :, None]
        # Corner cells (diagonal to the region only): the strip widths of their side
        # neighbours give the corner rectangle.
        diag = ~cells & ~left & ~right & ~up & ~down
        wl = np.zeros_like(w_from_left)
        wl[1:, :] = np.maximum(wl[1:, :], w_from_left[:-1, :])   # from the cell above
        wl[:-1, :] = np.maximum(wl[:-1, :], w_from_left[1:, :])  # from the cell below
        wr = np.zeros_like(w_from_right)
        wr[1:, :] = np.maximum(wr[1:, :], w_from_right[:-1, :])
        wr[:-1, :] = np.maximum(wr[:-1, :], w_from_right[1:, :])
        ht = np.zeros_like(h_from_top)
        ht[:, 1:] = np.maximum(ht[:, 1:], h_from_top[:, :-1])
        ht[:, :-1] = np.maximum(ht[:, :-1], h_from_top[:, 1:])
        hb = np.zeros_like(h_from_bottom)
        hb[:, 1:] = np.maximum(hb[:, 1:], h_from_bottom[:, :-1])
        hb[:, :-1] = np.maximum(hb[:, :-1], h_from_bottom[:, 1:])
        cols = (r[None, None, :] < wl[:, :, None]) | (r[None, None, ::-1] < wr[:, :, None])
        rows = (r[None, None, :] < ht[:, :, None]) | (r[None, None, ::-1] < hb[:, :, None])
        corner = diag[:, :, None, None] & rows[:, :, :, None] & cols[:, :, None, :]
        extra = (side | corner).transpose(0, 2, 1, 3).reshape(ncy * p, ncx * p)
        return out | extra

    def paste(self, result: np.ndarray, pixels: np.ndarray) -> None:
        h, w = self.image_size
        x0, y0 = self.gx0, self.gy0
        sx0, sy0 = max(0, -x0), max(0, -y0)
        ex = min(pixels.shape[1], w - x0)
        ey = min(pixels.shape[0], h - y0)
        if ex <= sx0 or ey <= sy0:
            return
        result[y0 + sy0:y0 + ey, x0 + sx0:x0 + ex] |= pixels[sy0:ey, sx0:ex]


def _clean_cells(cells: np.ndarray, seeds: np.ndarray, min_cells: int, thick: int = 2,
                 share: float = _SEED_SHARE, close: bool = True) -> np.ndarray:
    """Close one-cell gaps (if ``close``), fill enclosed holes (blocks equal to their neighbours, strokes
    over the mosaic); keep regions with at least ``min_cells`` seed cells that make up a good
    share of the region (a few seeds leaking along an outline are not a mosaic)."""
    if not cells.any():
        return cells
    st = np.ones((3, 3), bool)
    padded = np.pad(cells, 1)
    closed = (ndimage.binary_closing(padded, structure=st)[1:-1, 1:-1] | cells) if close else cells
    filled = ndimage.binary_fill_holes(closed)
    labels, n = ndimage.label(filled, structure=st)
    if n == 0:
        return filled
    found = np.bincount(labels.ravel(), weights=cells.ravel(), minlength=n + 1)
    seeded = np.bincount(labels.ravel(), weights=seeds.ravel(), minlength=n + 1)
    # A mosaic region is thick: it holds a k x k square of cells (thin strips of "cells"
    # follow staircase edges of aliased line art). Small blocks cover little, so ask more.
    core = ndimage.binary_erosion(cells, structure=np.ones((thick, thick), bool))
    cored = np.bincount(labels.ravel(), weights=core.ravel(), minlength=n + 1)
    keep = (seeded >= min_cells) & (seeded >= share * found) & (cored > 0)
    keep[0] = False
    return keep[labels]


def _extend_box(box: list[int], flat: np.ndarray, evidence: np.ndarray, slack: int,
                far: float = 2.0) -> list[int]:
    """Grow a region's cell box [y0, y1, x0, x1) in each direction across bands of flat cells
    as far as the last band holding evidence (a block-like cell of the same grid). A patch
    over line art shows its blocks only where a line or a fill edge crosses it, often in
    pieces separated by blocks over a flat fill; flat cells with no evidence beyond them are
    surroundings and stop nothing but are not taken."""
    ncy, ncx = flat.shape
    y0, y1, x0, x1 = box
    changed = True
    while changed:
        changed = False
        for direction in range(4):
            if direction < 2:  # columns right (0) / left (1) of the box, over its rows
                bands = range(x1, ncx) if direction == 0 else range(x0 - 1, -1, -1)
                seg = [(flat[y0:y1, k], evidence[y0:y1, k]) for k in bands]
            else:  # rows below (2) / above (3), over its columns
                bands = range(y1, ncy) if direction == 2 else range(y0 - 1, -1, -1)
                seg = [(flat[k, x0:x1], evidence[k, x0:x1]) for k in bands]
            # At most ``far`` times the box's extent that way: far-off block-like cells are more
            # likely another patch (one whose period is a multiple of this one) than a part.
            limit = int(far * ((x1 - x0) if direction < 2 else (y1 - y0)))
            reach = 0
            for i, (f, e) in enumerate(seg[:limit]):
                # The band must be flat, but for its two end cells (partial blocks where the
                # patch ends inside a cell) and ``slack`` more (JPEG noise).
                if np.count_nonzero(~f[1:-1]) > slack:
                    break
                if e.any():
                    reach = i + 1
            if reach:
                changed = True
                if direction == 0:
                    x1 += reach
                elif direction == 1:
                    x0 -= reach
                elif direction == 2:
                    y1 += reach
                else:
                    y0 -= reach
    return [y0, y1, x0, x1]


def _clip_to_evidence(cells: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """Lossless input: each region is cut to the bounding box of its block pairs (cells that
    prove blocks by themselves). Flat cells beyond them are surroundings as much as blocks over
    a flat fill; the partial blocks around the box are added from the pixels later."""
    out = np.zeros_like(cells)
    labels, _ = ndimage.label(cells, structure=np.ones((3, 3), bool))
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mine = labels[sl] == k
        ev = evidence[sl] & mine
        if not ev.any():
            out[sl] |= mine
            continue
        ys, xs = np.nonzero(ev)
        keep = np.zeros_like(mine)
        keep[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
        out[sl] |= mine & keep
    return out


def _join_block_groups(cells: np.ndarray, pairs: np.ndarray, across_v: np.ndarray,
                       across_h: np.ndarray, const: np.ndarray) -> np.ndarray:
    """Lossless input: one patch over line art shows its blocks in separate places, with
    blocks over a flat fill (exactly like the fill) between them. A region takes in a group of
    block-pair cells of its grid (two or more, outside every region, with a block edge of
    their own) when every cell strictly inside the joint bounding box of the region and the
    group's whole blocks away from the region is an exactly constant cell (the box's outer
    ring may hold partial blocks, so it is not judged); the box's constant cells join it."""
    out = cells.copy()
    st = np.ones((3, 3), bool)
    for _ in range(4):
        # A group must hold a block edge of its own (both cells outside the regions): cells
        # of a flat fill along a region's side pair with its blocks only.
        free = np.zeros_like(out)
        e = across_v & ~out[:, 1:] & ~out[:, :-1]
        free[:, 1:] |= e
        free[:, :-1] |= e
        e = across_h & ~out[1:, :] & ~out[:-1, :]
        free[1:, :] |= e
        free[:-1, :] |= e
        groups, ng = ndimage.label(pairs & ~out, structure=st)
        if ng == 0:
            break
        has_free = np.bincount(groups.ravel(), weights=free.ravel(), minlength=ng + 1) > 0
        # Cells touching a region: a flat cell there pairs with the region's border block
        # whether it is a block over a flat fill or the fill beyond the patch border.
        beside = ndimage.binary_dilation(out, structure=st) & ~out
        regions, _ = ndimage.label(out, structure=st)
        gsl = ndimage.find_objects(groups)
        rsl = ndimage.find_objects(regions)
        changed = False
        for gi, g in enumerate(gsl, start=1):
            if g is None or not has_free[gi] or np.count_nonzero(groups[g] == gi) < 2:
                continue
            # The box reaches the group's whole blocks away from the region only: its partial
            # ones (cells the patch border crosses) would take the flat cells beyond the border
            # along them, and cells beside the region prove nothing (see ``beside``).
            whole = np.argwhere((groups[g] == gi) & const[g] & ~beside[g])
            if not len(whole):
                continue
            gy0, gx0 = whole.min(axis=0) + (g[0].start, g[1].start)
            gy1, gx1 = whole.max(axis=0) + (g[0].start + 1, g[1].start + 1)
            for r in rsl:
                if r is None:
                    continue
                y0, y1 = min(gy0, r[0].start), max(gy1, r[0].stop)
                x0, x1 = min(gx0, r[1].start), max(gx1, r[1].stop)
                # Near each other: the joint box at most twice the region's extent.
                if (y1 - y0 > 2 * (r[0].stop - r[0].start) + 2
                        or x1 - x0 > 2 * (r[1].stop - r[1].start) + 2):
                    continue
                if not const[y0 + 1:y1 - 1, x0 + 1:x1 - 1].all():
                    continue
                before = np.count_nonzero(out)
                out[y0:y1, x0:x1] |= const[y0:y1, x0:x1]
                out |= (groups == gi) & const
                changed = changed or np.count_nonzero(out) > before
                break
        if not changed:
            break
    return out


def _complete_cells(cells: np.ndarray, flat: np.ndarray, evidence: np.ndarray | None = None,
                    slack: int = 0, certain: np.ndarray | None = None,
                    edged: np.ndarray | None = None) -> np.ndarray:
    """Complete each region along its own grid. A censorship patch is one contiguous area on
    one grid, but its blocks over flat fills (line art) look exactly like the fill, so the cell
    tests cannot see them. Flat cells (as flat as the grid's found cells, as pixelation leaves
    them) inside the bounding box of a region join it; the box first grows across flat cells
    to further block-like cells (``evidence``) of the same grid. Cells outside every region's
    (grown) box are never taken, so flat surroundings next to a mosaic are not swallowed, and
    an image with no region gets none. ``edged`` (lossy flat art): the strong cells with block
    edges; the box starts from the region's other cells (see ``_Grid.cell_tests``), grows to
    edged cells (to any strong cell only when no edged one is in reach), and strong cells
    without block edges outside the grown box are dropped."""
    if not cells.any():
        return cells
    out = cells.copy()
    labels, _ = ndimage.label(cells, structure=np.ones((3, 3), bool))
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        # Only solid regions: a few cells along a diagonal outline span a large box.
        # (``certain``: cells that prove a mosaic by themselves, e.g. a staircase of
        # exclusive blocks along a diagonal edge of line art; their box is the patch's.)
        if sl is None:
            continue
        sure = certain is not None and certain[sl][labels[sl] == k].any()
        mine = labels[sl] == k
        n = np.count_nonzero(mine)
        # Sparser regions (a patch over line art seen mostly along edges crossing it) when
        # most of their cells are strong (clean flat art with a few strong cells along its
        # outlines, plus weak ones, does not have that).
        sparse_ok = (evidence is not None and n >= _SPARSE_DENSITY * mine.size
                     and np.count_nonzero(evidence[sl][mine]) >= _SPARSE_STRONG * n)
        if not sure and not sparse_ok and n < _COMPLETE_DENSITY * mine.size:
            continue
        box = [sl[0].start, sl[0].stop, sl[1].start, sl[1].stop]
        if evidence is not None and edged is not None:
            # Lossy flat art: a strong cell whose steps are an edge of the art crossing its
            # corner (no block edge) does not widen the box that flat cells are completed over
            # (they would be the fill beside the patch).
            core = mine & ~(evidence[sl] & ~edged[sl])
            if core.any():
                ys, xs = np.nonzero(core)
                box = [sl[0].start + ys.min(), sl[0].start + ys.max() + 1,
                       sl[1].start + xs.min(), sl[1].start + xs.max() + 1]
            # The box grows to cells with block edges (a strong cell that an
            # edge of the art crossing its corner steps pulled it over the fill beside the
            # patch); only when none is in reach, to any strong cell (a patch over a flat fill
            # may show no more than partial blocks along its border), but by at most the box's
            # own extent (not twice): such a cell far out is more likely an art edge again.
            grown = _extend_box(box, flat, evidence & edged, slack)
            box = grown if grown != box else _extend_box(box, flat, evidence, slack, far=1.0)
        elif evidence is not None:
            box = _extend_box(box, flat, evidence, slack)
        y0, y1, x0, x1 = box
        out[y0:y1, x0:x1] |= flat[y0:y1, x0:x1]
        if edged is not None and evidence is not None:
            # ... and such cells left outside the (grown) box leave the region: flat fill
            # beside the patch whose only steps are the art's edges and the patch's side.
            outside = np.zeros_like(out)
            outside[sl] = mine
            outside[y0:y1, x0:x1] = False
            out &= ~outside
    return out


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
    # Luma for finding the grid: JPEG subsamples chroma 2x, whose blur puts color steps on
    # even columns everywhere; luma keeps full resolution.
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    gx, gy = _gradients(luma)
    # Pixel repetition (an image upscaled by repeating pixels, e.g. skimage's moon): its
    # texture is itself "constant k x k blocks", every step isolated and on one phase mod k,
    # so that tiles folded as period k and drowned a mosaic's own period. Steps are then
    # judged at the source resolution and the folding's chance level counts the phases such
    # steps can fall on; a grid needs 1/k of the step pixels (the stricter step tests leave
    # fewer of JPEG's weak block edges). Both axes must show it (a mosaic whose grid lines
    # dominate one axis is not an upscale); without repetition (k = 1) nothing changes.
    kx, ky = _repetition(gx, axis=1), _repetition(gy, axis=0)
    if kx == 1 or ky == 1:
        kx = ky = 1
    sx = _grid_steps(gx, axis=1, across=kx, along=ky)
    sy = _grid_steps(gy, axis=0, across=ky, along=kx)
    # Period 2 is folded too: an image upscaled 2x by pixel repetition that is not recognised
    # as one (too flat, or too lossy) is "periodic" at every even p, and must be recognised as
    # period 2 (below any mosaic block size), not as a mosaic.
    fold, periods, starts = _fold_matrix(2, max_block)
    px = _tile_profiles(sx, axis=1)
    py = _tile_profiles(sy, axis=0)
    nty, ntx = px.shape[:2]
    score_x, phase_x, on_x, second_x = _periodicity(px, fold, periods, starts, kx)
    score_y, phase_y, on_y, second_y = _periodicity(py, fold, periods, starts, ky)
    score = np.minimum(score_x, score_y)
    best = score.max(axis=1)
    # Divisors of the true period score the same as it after chance correction (noise may
    # even favour them), so the best period may be a divisor: take the largest multiple of it
    # that scores near the best. Unrelated periods are not considered: with only 2-3 grid
    # lines in a tile any large period puts them on distinct phases and scores ~1/3.
    period_arr = np.asarray(periods)
    best_p = period_arr[score.argmax(axis=1)]
    near = ((score >= _NEAR_BEST * best[:, None])
            & (period_arr[None, :] % best_p[:, None] == 0))
    pick = len(periods) - 1 - np.argmax(near[:, ::-1], axis=1)
    idx = np.arange(len(best))
    ok = ((best >= _PERIODIC_SCORE) & (period_arr[pick] >= min_block)
          & (score[idx, pick] >= _PERIODIC_SCORE)
          & (on_x[idx, pick] >= _MIN_GRID_PIXELS // kx) & (on_y[idx, pick] >= _MIN_GRID_PIXELS // ky))
    grids: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    runners: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for t in np.nonzero(ok)[0]:
        ty, tx = divmod(int(t), ntx)
        # With 2-3 (JPEG-blurred) grid lines per tile a period one off scores about as well;
        # let the cell tests choose between neighbouring periods.
        options = [int(pick[t])]
        for j in (int(pick[t]) - 1, int(pick[t]) + 1):
            if (0 <= j < len(periods) and periods[j] >= min_block
                    and score[t, j] >= _NEIGHBOUR_SCORE * score[t, pick[t]]):
                options.append(j)
        for j in options:
            p = periods[j]
            # A straight patch border (as long as the tile) can outvote a grid line of big
            # blocks: the runner-up phase is a candidate too.
            for ph_x in (int(phase_x[t, j]), int(second_x[t, j])):
                for ph_y in (int(phase_y[t, j]), int(second_y[t, j])):
                    if ph_x < 0 or ph_y < 0:
                        continue
                    fx = (ph_x + tx * _STRIDE) % p
                    fy = (ph_y + ty * _STRIDE) % p
                    runner = ph_x != int(phase_x[t, j]) or ph_y != int(phase_y[t, j])
                    (runners if runner else grids).setdefault((p, fx, fy), []).append((ty, tx))
    # Grids that are only some tile's runner-up (not also another tile's best) are tested
    # after the others and are not completed over flat cells: next to a patch found on its
    # true grid, the one its border suggests took the flat fills beside it.
    order = [(key, tiles, False) for key, tiles in grids.items()]
    order += [(key, tiles, True) for key, tiles in runners.items() if key not in grids]
    for (p, fx, fy), tiles, runner in order:
        tys = [t[0] for t in tiles]
        txs = [t[1] for t in tiles]
        # Test cells well beyond the tiles that found this grid: neighbouring tiles of the
        # same mosaic may have settled on another phase (a straight patch edge can outvote a
        # grid line there), and the cell tests decide anyway.
        grow = _BOX_MARGIN + p
        box = (max(0, min(txs) * _STRIDE - grow), max(0, min(tys) * _STRIDE - grow),
               min(w, max(txs) * _STRIDE + _TILE + grow), min(h, max(tys) * _STRIDE + _TILE + grow))
        grid = _Grid(rgb, p, fx, fy, box)
        strong, weak = grid.cell_tests()
        # (Not on a pixel-repetition upscale: its texture steps fall on grid lines of every
        # even period and none between.)
        faint = grid.faint_cells() if p <= _SMALL_BLOCK and kx == 1 else None
        if faint is not None:
            strong = strong | faint
        if not strong.any():
            continue
        noise = float(np.median(grid.inner[strong]))
        # A few exactly flat strong cells do not prove lossless input (JPEG keeps uniform
        # dark blocks exact): with few strong cells, assume lossy and try the median pass.
        lossless = noise <= _CLEAN_NOISE and np.count_nonzero(strong) >= _LOSSLESS_MIN_CELLS
        exact_rgb = False
        raw_inner = grid.inner
        if not lossless and p >= _MEDIAN_MIN_P:
            grid = _Grid(rgb, p, fx, fy, box, denoise=5 if p >= _MEDIAN5_MIN_P else 3)
            strong, weak = grid.cell_tests()
            if faint is not None:
                strong = strong | faint
            if not strong.any():
                continue
        elif lossless:
            # Truly lossless input (most strong cells exactly constant in all channels; JPEG
            # q95 keeps luma flat but not chroma): a weak cell must be an exactly constant
            # block too (smooth surroundings and anti-aliased edges of flat art pass the
            # luma tests). Strong cells stay: a border cell holds the patch border.
            const = grid.constant_cells(strong | weak)
            exact_rgb = np.count_nonzero(const & strong) >= _EXACT_SHARE * np.count_nonzero(strong)
            if exact_rgb:
                weak = weak & const
        # Hysteresis: weak cells join when connected to strong ones (blocks over smooth
        # areas differ from some neighbours by very little).
        grown = ndimage.binary_propagation(strong, structure=np.ones((3, 3), bool),
                                           mask=weak | strong)
        # Big blocks: few cells already make a large area.
        min_cells = int(np.clip(np.ceil(_MIN_AREA / (p * p)), 3, _MIN_CELLS))
        # JPEG's own 8x8 blocks look like a weak mosaic in smooth areas: a grid that lines
        # up with them must be carried by strong cells.
        jpeg_aligned = p % 8 == 0 and fx % 8 == 0 and fy % 8 == 0
        # Small blocks: after JPEG few cells pass the strong test (the step smears into the
        # 1-3 interior pixels), while the weak test stays specific.
        share = (_JPEG_GRID_SEED_SHARE if jpeg_aligned
                 else _SMALL_SEED_SHARE if p <= _SMALL_BLOCK else _SEED_SHARE)
        # No closing of one-cell gaps: completion along the grid fills cells lost to JPEG
        # noise inside a region, while closing bridged regions to clusters of smooth
        # surroundings (sky, dark clothes) whose bounding box completion then filled.
        # Thickness: 3 x 3 cells for blocks up to _SMALL_BLOCK px (their staircases along
        # aliased outlines are 2 cells thick), 2 x 2 from 7 px (3 x 3 lost whole 7-12 px
        # patches over line art after JPEG, seen only as 2-cell-wide bands along edges).
        cells = _clean_cells(grown, strong, min_cells, thick=3 if p <= _SMALL_BLOCK else 2,
                             share=share,
                             close=False)
        # Lossless line art: a staircase of exclusive blocks along an edge is a mosaic even
        # when it is one cell thin (its cells' mixed colors exist nowhere else).
        certain = None
        if np.count_nonzero(strong) >= _CERT_MIN:
            excl = grid.exclusive_blocks(strong)
            if np.count_nonzero(excl) >= _CERT_MIN:
                comp, _ = ndimage.label(grown | excl, structure=np.ones((3, 3), bool))
                n_excl = np.bincount(comp.ravel(), weights=excl.ravel())
                ok_comp = n_excl >= _CERT_MIN
                ok_comp[0] = False
                certain = ok_comp[comp] & excl
                cells = cells | ok_comp[comp]
        if not cells.any():
            continue
        # "As flat as the region's cells": most of them, not the median strong cell (after
        # JPEG the flattest strong cells are a few exact dark blocks).
        level = float(np.percentile(grid.inner[cells], 80))
        if not runner:  # see ``order``
            # Lossy flat art (the region's cells not exactly flat, and many cells of the grid
            # an exactly flat fill): completion boxes leave out strong cells with no block edge.
            fill_share = float(np.mean(raw_inner[grid.inside] == 0)) if grid.inside.any() else 0.0
            flat_art = (not lossless and fill_share >= _FILL_SHARE
                        and float(np.percentile(raw_inner[cells], 75)) > _CLEAN_NOISE)
            cells = _complete_cells(cells, (grid.inner <= 1.5 * level + 0.5) & grid.inside,
                                    strong, slack=0 if lossless else 1, certain=certain,
                                    edged=grid.edged if flat_art else None)
        # Partial blocks are exact runs when the region's cells are exactly flat on the
        # unfiltered image (lossless input, even with few strong cells, e.g. big blocks);
        # JPEG keeps only some blocks exact (dark ones, q95). Judged on the cells inside the
        # region, as border cells hold the patch border (a step) when the block is partial.
        pad = np.pad(cells, 1)
        interior = cells & pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
        judged = raw_inner[interior] if np.count_nonzero(interior) >= 3 else raw_inner[cells]
        exact = float(np.percentile(judged, 75)) <= _CLEAN_NOISE
        # Truly lossless: cut each region to the box of its block edges; completion and box
        # growth took flat cells and cells that thin lines clip on every side of it.
        if exact and exact_rgb:
            pairs, across_v, across_h = grid.block_pairs()
            cells = _clip_to_evidence(cells, pairs)
            cells = _join_block_groups(cells, pairs, across_v, across_h,
                                       grid.constant_cells(grid.inside))
        grid.paste(result, grid.partial_blocks(cells, noise, exact))
    return result
