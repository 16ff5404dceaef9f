"""Cell tests on one candidate grid: which p x p cells look like mosaic blocks.

A block is flat inside and steps to its neighbours exactly on the grid lines. *Strong*
cells have real steps on a vertical and a horizontal side; *weak* cells are as flat as the
grid's strong cells with small steps on two sides (blocks over smooth areas); *faint* cells
(small blocks after JPEG) have grid-line steps above the mean step inside. Lossless tests
(exactly constant cells, block pairs, exclusive colors) decide what can be certain.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np
from scipy import ndimage

from deepcream.mosaic.params import DEFAULT_PARAMS, MosaicParams
from deepcream.mosaic.period import gradients


def color_keys(pixels: np.ndarray) -> np.ndarray:
    """int32 [...]: one integer per pixel of uint8 [..., C] (C = 1 or 3) naming its color,
    for equality tests and ``np.unique`` over colors."""
    c = pixels.astype(np.int32)
    return c[..., 0] if c.shape[-1] == 1 else (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def colors_found(colors: np.ndarray, pixels: np.ndarray, where: np.ndarray | None = None
                 ) -> np.ndarray:
    """bool [n]: which of ``colors`` (uint8 [n, C]) some pixel of ``pixels`` (uint8 [..., C])
    has, among those where ``where`` (bool [...]) is set. A pixel can only match when its
    first two channels do: a table of those (16 bits) leaves few pixels whose whole color is
    looked up."""
    if pixels.shape[-1] == 1:
        table = np.zeros(256, bool)
        table[pixels[..., 0][where] if where is not None else pixels[..., 0]] = True
        return table[colors[:, 0]]
    pair = np.zeros(1 << 16, bool)
    pair[(colors[:, 0].astype(np.uint16) << 8) | colors[:, 1]] = True
    maybe = pair[(pixels[..., 0].astype(np.uint16) << 8) | pixels[..., 1]]
    if where is not None:
        maybe &= where
    table = np.zeros(1 << 24, bool)
    table[color_keys(pixels[maybe])] = True
    return table[color_keys(colors)]


def cell_pixels(cell_mask: np.ndarray, p: int) -> np.ndarray:
    """[ncy * p, ncx * p]: each cell's value over its p x p pixels."""
    return np.repeat(np.repeat(cell_mask, p, 0), p, 1)


def _lag_difference(series: list[tuple[np.ndarray, np.ndarray, int]], lag: int,
                    min_pairs: int) -> float:
    """Mean absolute difference of values ``lag`` cells apart, over (values, valid, axis)
    arrays together (pairs where both are valid); inf with fewer than ``min_pairs`` pairs
    (too few to judge)."""
    found = []
    for values, valid, axis in series:
        n = values.shape[axis]
        if n <= lag:
            continue
        a, b = (values[:n - lag], values[lag:]) if axis == 0 else (values[:, :n - lag], values[:, lag:])
        ok = (valid[:n - lag] & valid[lag:]) if axis == 0 else (valid[:, :n - lag] & valid[:, lag:])
        found.append(np.abs(a - b)[ok])
    both = np.concatenate(found) if found else np.empty(0)
    return float(both.mean()) if len(both) >= min_pairs else np.inf


def plane_rms(values: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> float:
    """RMS distance of ``values`` from their least-squares plane over the positions
    (``ix``, ``iy``): how far cell means are from a linear shading."""
    design = np.stack([np.ones(len(ix)), ix, iy], axis=1).astype(np.float64)
    v = np.asarray(values, np.float64)
    coef = np.linalg.lstsq(design, v, rcond=None)[0]
    return float(np.sqrt(np.mean((v - design @ coef) ** 2)))


def sum_last(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=-1)`` for float32 arrays of integers (luma, its steps): exact in any
    order, so for a short last axis (a cell's p pixels) as p - 1 whole-array adds, several
    times faster than numpy's reduction over a few elements at a time."""
    if a.shape[-1] > 12:
        return a.sum(axis=-1)
    out = a[..., 0].copy()
    for k in range(1, a.shape[-1]):
        out += a[..., k]
    return out


def block_sums(a: np.ndarray, p: int, first_col: int = 0) -> np.ndarray:
    """[ncy, ncx] sums over the p x p cells of ``a`` ([ncy * p, ncx * p] float32 of
    integers: exact, see ``sum_last``), from column ``first_col`` of each cell on."""
    ncy, ncx = a.shape[0] // p, a.shape[1] // p
    rows = a.reshape(ncy, p, ncx * p).sum(axis=1)
    return sum_last(rows.reshape(ncy, ncx, p)[:, :, first_col:])


def _share(hits: np.ndarray, axis: int) -> np.ndarray:
    """The share of True along ``axis`` (what ``hits.mean(axis)`` gives, without its float
    copy of the array)."""
    n = hits.shape[axis]
    ones = hits.view(np.uint8)  # (counts up to a cell side, < 256)
    if axis in (-1, hits.ndim - 1) and n <= 12:
        count = ones[..., 0].copy()
        for k in range(1, n):
            count += ones[..., k]
    else:
        count = ones.sum(axis=axis, dtype=np.uint8)
    return count / n


class Grid:
    """Cells of one grid (period p, phase fx, fy) over a box, on an edge-replicated crop.

    The crop starts ``margin`` pixels before a grid line so every cell's left/top step is inside
    it; edge replication turns a block cut by the image border into a whole constant block.
    """

    def __init__(self, rgb: np.ndarray, p: int, fx: int, fy: int,
                 box: tuple[int, int, int, int], denoise: int = 0,
                 prm: MosaicParams = DEFAULT_PARAMS) -> None:
        self.prm = prm
        h, w = rgb.shape[:2]
        bx0, by0, bx1, by1 = box
        self.p = p
        self.gx0 = fx + p * ((bx0 - fx) // p)  # grid line at or before the box
        self.gy0 = fy + p * ((by0 - fy) // p)
        self.ncx = -(-(bx1 - self.gx0) // p)
        self.ncy = -(-(by1 - self.gy0) // p)
        m = prm.margin
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
        self.gx, self.gy = gradients(gray)
        # Which cells overlap the image at all.
        cx = self.gx0 + p * np.arange(self.ncx)
        cy = self.gy0 + p * np.arange(self.ncy)
        self.inside = ((cy[:, None] + p > 0) & (cy[:, None] < h)
                       & (cx[None, :] + p > 0) & (cx[None, :] < w))
        self.image_size = (h, w)
        self._const = np.zeros((self.ncy, self.ncx), bool)
        self._const_known = np.zeros((self.ncy, self.ncx), bool)
        #: lossy input: partial blocks in the cells beside the regions (pixels as the regions'
        #: mask), added once the regions are grown (``border.lossy_block_pixels``)
        self.beside: np.ndarray | None = None
        #: [ncy, ncx] strongest interior gradient per cell, set by ``cell_tests``
        self.inner: np.ndarray | None = None
        #: (no weak step on a vertical side, none on a horizontal side), set by ``cell_tests``
        self.unstepped_sides: tuple[np.ndarray, np.ndarray] | None = None
        #: (left, right, top, bottom) bool [ncy, ncx]: the sides with a weak cell's step, set by
        #: ``cell_tests``
        self.weak_side_steps: tuple[np.ndarray, ...] | None = None
        #: (mean steps across the vertical grid lines [ncy, ncx+1], across the horizontal ones
        #: [ncy+1, ncx]), between alike cells 0, set by ``cell_tests``
        self.side_steps: tuple[np.ndarray, np.ndarray] | None = None
        #: [ncy, ncx] flat cells with block edges on both sides across one axis (left and
        #: right, or top and bottom), set by ``cell_tests``
        self.two_sided: np.ndarray | None = None

    @cached_property
    def line_steps(self) -> tuple[np.ndarray, np.ndarray]:
        """(|luma steps| across the vertical grid lines [ncy, p, ncx+1]: row r of cell row i
        at line j, across the horizontal ones [ncy+1, ncx, p]). Steps measured across one
        pixel pair: a wider span would see JPEG-smeared steps better but also accept
        straight edges of line art one pixel off the grid."""
        p, ncx, ncy, m = self.p, self.ncx, self.ncy, self.prm.margin
        lines_x = m + p * np.arange(ncx + 1)
        rows = self.luma[m:m + ncy * p]
        lines_y = m + p * np.arange(ncy + 1)
        cols = self.luma[:, m:m + ncx * p]
        return (np.abs(rows[:, lines_x] - rows[:, lines_x - 1]).reshape(ncy, p, ncx + 1),
                np.abs(cols[lines_y] - cols[lines_y - 1]).reshape(ncy + 1, ncx, p))

    @cached_property
    def side_means(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean steps across the vertical grid lines [ncy, ncx+1], across the horizontal
        ones [ncy+1, ncx]): ``line_steps`` averaged along each cell side. Read only."""
        vstep, hstep = self.line_steps
        return vstep.mean(axis=1), sum_last(hstep) / np.float32(self.p)

    @cached_property
    def cell_means(self) -> np.ndarray:
        """[ncy, ncx] mean luma of each cell (several tests read them). Read only."""
        p, ncx, ncy, m = self.p, self.ncx, self.ncy, self.prm.margin
        return block_sums(self.luma[m:m + ncy * p, m:m + ncx * p], p) / np.float32(p * p)

    def cell_tests(self, pair: bool = False, exact_sides: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(strong, weak) bool [ncy, ncx]: strong = flat inside with real steps on >= 2
        sides; weak = flat inside with a step on >= 1 side (grown from strong cells only).
        ``pair``: a side's step must exceed the interior gradient of both its cells.
        ``exact_sides``: a step between two exactly constant cells of different colors is
        a side however small (``MosaicParams.exact_sides``; the caller asks it on lossless
        images only)."""
        p, ncx, ncy = self.p, self.ncx, self.ncy
        m = self.prm.margin
        vstep, hstep = self.line_steps
        vlines, hlines = self.side_means
        # Interior: the strongest interior column (row) of mean gradient, so that one
        # off-grid straight edge (a pixelated area ending inside this cell) makes the cell
        # not flat even when the rest is. JPEG smears a step into the pixels beside the grid
        # line, so for p >= 5 those columns (rows) are left out. (Summed over whole rows
        # first, contiguous and so faster, then divided: the same floats as their means.)
        lo, hi = (2, p - 1) if p >= 5 else (1, p)
        col_sums = self.gx[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx * p).sum(axis=1)
        row_sums = sum_last(self.gy[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p)[:, lo:hi])
        inner = np.maximum(col_sums.reshape(ncy, ncx, p)[:, :, lo:hi].max(axis=2) / np.float32(p),
                           row_sums.max(axis=1) / np.float32(p))
        need = self.prm.side_ratio * inner + self.prm.side_min
        need_l = need_r = need_t = need_b = need
        if pair:
            need_v = np.concatenate([need[:, :1], np.maximum(need[:, :-1], need[:, 1:]), need[:, -1:]], axis=1)
            need_h = np.concatenate([need[:1], np.maximum(need[:-1], need[1:]), need[-1:]], axis=0)
            need_l, need_r, need_t, need_b = need_v[:, :-1], need_v[:, 1:], need_h[:-1], need_h[1:]
        # Between two blocks the step on the grid line is the difference of the two cells'
        # means (JPEG smears it over a few pixels, which keeps the means). A regular texture
        # with the grid's period (screentone dots, hatching) steps on the grid line too, but
        # its cells are alike: the means barely differ. Such sides are no block sides.
        # (The outermost lines of the crop have no neighbour cell: not judged.)
        vlines, hlines = self._block_sides(vlines, hlines)
        left, right = vlines[:, :-1] >= need_l, vlines[:, 1:] >= need_r
        top, bottom = hlines[:-1, :] >= need_t, hlines[1:, :] >= need_b
        sides = left.astype(np.int8) + right + top + bottom
        flat = (inner <= self.prm.flat_max) & self.inside
        self.inner = inner
        # A mosaic is a 2-D grid: a strong cell has a step on a vertical and on a horizontal
        # side. (Cells along a straight thick outline of flat art have steps on the two
        # sides parallel to it only.)
        vert = left | right
        horiz = top | bottom
        strong = flat & vert & horiz & (sides >= 2)
        if exact_sides:
            # Lossless: between two exactly constant cells of different colors any step is
            # a block side, however small (blocks over vertical hatching and a soft
            # gradient step by a level or less down the hatching, yet are blocks).
            one_axis = flat & (vert ^ horiz)
            if one_axis.any():
                # (those cells and their four neighbours)
                ask = ndimage.binary_dilation(one_axis, structure=ndimage.generate_binary_structure(2, 1))
                const = self.constant_cells(ask & flat)
                first = self.crop[m:m + ncy * p:p, m:m + ncx * p:p]  # a pixel per cell
                across_h = const[:-1] & const[1:] & (first[:-1] != first[1:]).any(axis=2)
                across_v = const[:, :-1] & const[:, 1:] & (first[:, :-1] != first[:, 1:]).any(axis=2)
                vert_x, horiz_x = vert.copy(), horiz.copy()
                horiz_x[1:] |= across_h
                horiz_x[:-1] |= across_h
                vert_x[:, 1:] |= across_v
                vert_x[:, :-1] |= across_v
                # (a vertical and a horizontal side: two sides)
                strong |= one_axis & vert_x & horiz_x
        # Block edges: between two constant blocks the step runs along the whole side (a
        # partial block at a patch corner covers part of it), while an edge of the art that
        # crosses a grid line near a cell corner steps on a few of its pixels only, yet
        # lifts the side's mean over the threshold.
        cov = self.prm.edge_cover
        left_e = _share(vstep[:, :, :-1] >= need_l[:, None, :], 1) >= cov
        right_e = _share(vstep[:, :, 1:] >= need_r[:, None, :], 1) >= cov
        top_e = _share(hstep[:-1] >= need_t[:, :, None], 2) >= cov
        bottom_e = _share(hstep[1:] >= need_b[:, :, None], 2) >= cov
        self.edged = strong & (left_e | right_e) & (top_e | bottom_e)
        # Flat cells whose block edges run along both sides across one axis: after JPEG,
        # blocks over a shading that changes along that axis only (``two_sided_min_p``).
        self.two_sided = flat & ((left & right & left_e & right_e) | (top & bottom & top_e & bottom_e))
        # Weak cells must be as flat as this grid's strong cells are (0 for PNG, JPEG noise
        # otherwise), not merely smooth like a natural background.
        level = float(np.median(inner[strong])) if strong.any() else 0.0
        # ... with steps on two sides, but small ones: a flat surrounding cell next to the
        # region has one step side only (the one it shares with the mosaic).
        need_weak = self.prm.weak_ratio * inner + self.prm.weak_min
        if self.prm.weak_cover > 0:
            # ... along most of the side: a line of the art (hatching) crossing a grid line
            # steps on a few of its pixels only.
            nw_v, nw_h = need_weak[:, None, :], need_weak[:, :, None]
            cov = self.prm.weak_cover
            left = _share(vstep[:, :, :-1] >= nw_v, 1) >= cov
            right = _share(vstep[:, :, 1:] >= nw_v, 1) >= cov
            top = _share(hstep[:-1] >= nw_h, 2) >= cov
            bottom = _share(hstep[1:] >= nw_h, 2) >= cov
        else:
            left = right = top = bottom = True
        w_left = (vlines[:, :-1] >= need_weak) & left
        w_right = (vlines[:, 1:] >= need_weak) & right
        w_top = (hlines[:-1, :] >= need_weak) & top
        w_bottom = (hlines[1:, :] >= need_weak) & bottom
        weak_sides = (w_left.astype(np.int8) + w_right + w_top + w_bottom)
        weak = (inner <= self.prm.weak_ratio * level + self.prm.weak_min) & self.inside & (weak_sides >= 2)
        # (see ``long_bands``)
        self.unstepped_sides = (~(w_left | w_right), ~(w_top | w_bottom))
        self.weak_side_steps = (w_left, w_right, w_top, w_bottom)
        self.side_steps = (vlines, hlines)
        return strong, weak

    def long_bands(self, weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
        """[ncy, ncx]: the weak cells (not strong) that step on their top and bottom sides only
        (or left and right only), by ``band_max_step`` levels at most, in a band of such cells
        one cell thick that runs on for ``band_min_cells`` cells or more (see
        ``MosaicParams.band_min_cells``)."""
        n = self.prm.band_min_cells
        out = np.zeros_like(weak)
        if n <= 0 or self.unstepped_sides is None or self.side_steps is None:
            return out
        vlines, hlines = self.side_steps
        faint = (np.maximum(hlines[:-1], hlines[1:]) <= self.prm.band_max_step,
                 np.maximum(vlines[:, :-1], vlines[:, 1:]) <= self.prm.band_max_step)
        for axis, only, small in zip((1, 0), self.unstepped_sides, faint, strict=True):
            band = weak & ~strong & only & small
            # one cell thick: no band cell beside it across the band
            pad = np.pad(band, 1)
            if axis == 1:
                beside = pad[:-2, 1:-1] | pad[2:, 1:-1]
                run = np.ones((1, n), bool)
            else:
                beside = pad[1:-1, :-2] | pad[1:-1, 2:]
                run = np.ones((n, 1), bool)
            thin = band & ~beside
            out |= ndimage.binary_opening(thin, structure=run)
        return out

    def spread(self) -> np.ndarray:
        """[ncy, ncx]: max - min of the luma inside each cell, its outer ``t`` pixels left out
        (t = 2 from 8 px, where JPEG smears the grid-line steps into them; else 1)."""
        p, ncx, ncy, m = self.p, self.ncx, self.ncy, self.prm.margin
        t = 2 if p >= 8 else 1
        cell = self.luma[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p)[:, t:p - t, :, t:p - t]
        return cell.max(axis=(1, 3)) - cell.min(axis=(1, 3))

    def ramp(self) -> np.ndarray:
        """[ncy, ncx]: how much the luma inside each cell rises or falls across it: the larger
        of |mean of its last interior columns - mean of its first| and the same for rows
        (a third of the interior each; the outer ``t`` pixels left out as in ``spread``). A
        block is constant, while a cell of a smooth gradient ramps however flat it looks."""
        p, ncx, ncy, m = self.p, self.ncx, self.ncy, self.prm.margin
        t = 2 if p >= 8 else 1
        cell = self.luma[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p)[:, t:p - t, :, t:p - t]
        k = max(1, (p - 2 * t) // 3)
        rx = np.abs(cell[:, :, :, -k:].mean(axis=(1, 3)) - cell[:, :, :, :k].mean(axis=(1, 3)))
        ry = np.abs(cell[:, -k:].mean(axis=(1, 3)) - cell[:, :k].mean(axis=(1, 3)))
        return np.maximum(rx, ry)

    def _block_sides(self, vlines: np.ndarray, hlines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean steps on the grid lines ([ncy, ncx+1], [ncy+1, ncx]) with those between
        two alike cells set to 0 (see ``MosaicParams.mean_step_ratio``)."""
        r = self.prm.mean_step_ratio
        if r <= 0:
            return vlines, hlines
        means = self.cell_means
        vlines, hlines = vlines.copy(), hlines.copy()
        dv = np.abs(np.diff(means, axis=1))
        dh = np.abs(np.diff(means, axis=0))
        vlines[:, 1:-1] = np.where(dv >= r * vlines[:, 1:-1], vlines[:, 1:-1], 0.0)
        hlines[1:-1, :] = np.where(dh >= r * hlines[1:-1, :], hlines[1:-1, :], 0.0)
        return vlines, hlines

    def drop_texture_regions(self, cells: np.ndarray, strong: np.ndarray, exact: bool,
                             constant: np.ndarray | None = None) -> np.ndarray:
        """``cells`` without the regions (8-connected) that are a regular texture: on
        lossless input (``exact``) their strong cells take fewer than ``min_levels`` distinct
        mean lumas (or half their count, for a few big blocks), or their cell means repeat
        every 2-3 cells (``_repeats``; not asked when the region's strong cells that are
        exactly constant, ``constant``, take ``repeat_max_levels`` levels or more)."""
        k = self.prm.min_levels if exact else 0
        if not cells.any():
            return cells
        means = self.cell_means
        level = np.round(means).astype(np.int64)
        labels, n = ndimage.label(cells, structure=np.ones((3, 3), bool))
        out = cells.copy()
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None:
                continue
            mine = labels[sl] == i
            seen = level[sl][mine & strong[sl]]
            few_levels = k > 0 and len(np.unique(seen)) < min(k, (len(seen) + 1) // 2)
            many_levels = (constant is not None and 0 < self.prm.repeat_max_levels <= len(
                np.unique(level[sl][mine & strong[sl] & constant[sl]])))
            if few_levels or (not many_levels and self._repeats(means[sl], mine)):
                out[sl] &= ~mine
        return out

    def drop_unstepped_regions(self, cells: np.ndarray) -> np.ndarray:
        """``cells`` without the regions (8-connected) of two or more cells in which no grid
        line between two of its cells steps (``weak_side_steps``; ``cell_tests`` first):
        one flat area of the art cut by the grid (``MosaicParams.stepped_inside``)."""
        if not cells.any() or self.weak_side_steps is None:
            return cells
        w_l, w_r, w_t, w_b = self.weak_side_steps
        labels, n = ndimage.label(cells, structure=np.ones((3, 3), bool))
        pair_v = cells[:, :-1] & cells[:, 1:]  # cell (i, j) and (i, j + 1) both in a region
        pair_h = cells[:-1] & cells[1:]
        stepped_v = pair_v & (w_r[:, :-1] | w_l[:, 1:])
        stepped_h = pair_h & (w_b[:-1] | w_t[1:])
        pairs = (np.bincount(labels[:, :-1][pair_v], minlength=n + 1)
                 + np.bincount(labels[:-1][pair_h], minlength=n + 1))
        steps = (np.bincount(labels[:, :-1][stepped_v], minlength=n + 1)
                 + np.bincount(labels[:-1][stepped_h], minlength=n + 1))
        flat = (pairs > 0) & (steps == 0)
        flat[0] = False
        return cells & ~flat[labels] if flat.any() else cells

    def drop_smooth_regions(self, cells: np.ndarray) -> np.ndarray:
        """``cells`` without the regions (8-connected) whose cell means follow a smooth
        shading: of their cells with all eight neighbours in the region, at least
        ``jpeg_smooth_min_cells``, at most a share ``jpeg_smooth_rough`` differ from their
        neighbours' mean by over ``jpeg_smooth_step`` levels (that mean is the cell's own
        value on any plane, and near it on a gentle curve); or, ``jpeg_smooth_plane_cells``
        cells or more, all within ``jpeg_smooth_plane`` levels (rms) of one plane over the
        cell positions (small regions, which have few such inner cells). JPEG decodes a
        soft shading as flat 8 x 8 blocks that step on its own grid lines, each the
        shading's mean there up to the rounding of its DC value; a mosaic's blocks average
        the art under them, which a few outlines or colors already make rough."""
        if not cells.any():
            return cells
        prm = self.prm
        means = self.cell_means
        # The mean of each cell's eight neighbours (exact in float32 on the periods this is
        # asked on, 4, 8 and 16: the means are integers over p^2).
        around = (cv2.boxFilter(means, -1, (3, 3), normalize=False,
                                borderType=cv2.BORDER_CONSTANT) - means) / 8
        labels, _n = ndimage.label(cells, structure=np.ones((3, 3), bool))
        out = cells.copy()
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None:
                continue
            mine = labels[sl] == i
            whole = ndimage.binary_erosion(mine, structure=np.ones((3, 3), bool))
            judged = int(np.count_nonzero(whole))
            smooth = False
            if 0 < prm.jpeg_smooth_min_cells <= judged:
                off = np.abs(means[sl] - around[sl])[whole] > prm.jpeg_smooth_step
                smooth = np.count_nonzero(off) <= prm.jpeg_smooth_rough * judged
            if not smooth and prm.jpeg_smooth_plane_cells > 0:
                iy, ix = np.nonzero(mine)
                smooth = (len(iy) >= prm.jpeg_smooth_plane_cells
                          and plane_rms(means[sl][iy, ix], ix, iy) <= prm.jpeg_smooth_plane)
            if smooth:
                out[sl] &= ~mine
        return out

    def _repeats(self, means: np.ndarray, mine: np.ndarray) -> bool:
        """True when the cell means of a region repeat with a period of 2 or 3 cells (a
        checkered texture, or a dot screen at 45 degrees, whose period in x and y is about
        twice the grid's): cells that far apart are much more alike than neighbours. A
        mosaic's blocks follow the picture, which changes more with distance, not less.
        (Blocks up to ``small_block`` px over a screen of twice their size alternate dark and
        light: for them "much more alike" is ``repeat_ratio_small``, stricter. Bigger blocks
        must repeat the steps between neighbours too, see ``repeat_step_ratio``.)"""
        prm = self.prm
        both_axes = [(means, mine, 0), (means, mine, 1)]
        d = [_lag_difference(both_axes, lag, prm.repeat_min_pairs) for lag in (1, 2, 3)]
        if not np.isfinite(d[0]) and prm.repeat_strong_step > 0:
            # Too few cells for the tests below, unless ink and paper alternate.
            few = [_lag_difference(both_axes, lag, prm.repeat_strong_pairs) for lag in (1, 2, 3)]
            return bool(few[0] >= prm.repeat_strong_step
                        and min(few[1], few[2]) < prm.repeat_ratio_small * few[0])
        if not (np.isfinite(d[0]) and d[0] >= prm.repeat_min_step):
            return False
        if self.p <= prm.small_block:
            return min(d[1], d[2]) < prm.repeat_ratio_small * d[0]
        if prm.repeat_step_ratio <= 0:
            return min(d[1], d[2]) < prm.repeat_ratio * d[0]
        # The means and the steps between neighbours (a linear shading under a texture moves
        # the steps less than the means) must both repeat, 2-4 cells apart.
        d.append(_lag_difference(both_axes, 4, prm.repeat_min_pairs))
        if min(d[1:]) >= prm.repeat_ratio * d[0]:
            return False
        steps = [(means[:, 1:] - means[:, :-1], mine[:, 1:] & mine[:, :-1], 1),
                 (means[1:] - means[:-1], mine[1:] & mine[:-1], 0)]
        e = [_lag_difference(steps, lag, prm.repeat_min_pairs) for lag in (2, 3, 4)]
        return min(e) < prm.repeat_step_ratio * d[0]

    def faint_cells(self) -> np.ndarray:
        """bool [ncy, ncx]: cells of a faint mosaic (see ``MosaicParams.faint_ratio``): mean steps on the
        grid lines above the mean step inside, on both axes, over most of a 3 x 3 window."""
        p, ncx, ncy = self.p, self.ncx, self.ncy
        m = self.prm.margin
        vl, hl = self._block_sides(*self.side_means)
        # The mean steps inside the cells (the first column's, row's, on the grid line, left out).
        ix = block_sums(self.gx[m:m + ncy * p, m:m + ncx * p], p, 1) / np.float32(p * (p - 1))
        iy = block_sums(self.gy[m:m + ncy * p, m:m + ncx * p].T, p, 1).T / np.float32(p * (p - 1))
        cell = (((vl[:, :-1] + vl[:, 1:]) / 2 >= self.prm.faint_ratio * ix + self.prm.faint_min)
                & ((hl[:-1] + hl[1:]) / 2 >= self.prm.faint_ratio * iy + self.prm.faint_min))
        # Faint means faint: a smooth area inside the cells (regular textures such as
        # screentone also step on grid lines more than inside, by far larger steps).
        cell &= (ix <= self.prm.faint_inner_max) & (iy <= self.prm.faint_inner_max)
        vote = ndimage.uniform_filter(cell.astype(np.float32), 3, mode="constant")
        return cell & (vote >= self.prm.faint_vote) & self.inside

    def constant_cells(self, which: np.ndarray) -> np.ndarray:
        """bool [ncy, ncx]: cells of ``which`` whose whole cell has exactly one color (all
        channels)."""
        out = np.zeros(which.shape, bool)
        todo = which & self.inside & ~self._const_known
        n_todo = np.count_nonzero(todo)
        if n_todo * 4 > todo.size:
            # Most cells asked: every cell at once, each pixel against its cell's first
            # (one color key per pixel; no gather).
            p, m, ncy, ncx = self.p, self.prm.margin, self.ncy, self.ncx
            key = color_keys(self.crop[m:m + ncy * p, m:m + ncx * p])
            off = key.reshape(ncy, p, ncx, p) != key[::p, ::p][:, None, :, None]
            rows = off.reshape(ncy, p, ncx * p).any(axis=1).reshape(ncy, ncx, p)
            varies = rows[:, :, 0].copy()
            for k in range(1, p):
                varies |= rows[:, :, k]
            self._const = ~varies
            self._const_known[:] = True
        elif n_todo:
            p, m = self.p, self.prm.margin
            iy, ix = np.nonzero(todo)
            # Gather only the asked cells (often few of a large crop), each once per grid.
            ys = m + iy[:, None] * p + np.arange(p)[None, :]  # [n, p]
            xs = m + ix[:, None] * p + np.arange(p)[None, :]
            sel = self.crop[ys[:, :, None], xs[:, None, :]]  # [n, p, p, ch]
            self._const[iy, ix] = (sel == sel[:, :1, :1]).all(axis=(1, 2, 3))
            self._const_known |= todo
        out[:] = which & self.inside & self._const
        return out

    def block_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Block edges on grid lines: across the line, at least half a block's worth of lines
        (rows for a vertical grid line) run constant over the whole cell on both sides, in two
        different colors, each side in one color. Whole blocks meet like that, and so do
        partial blocks where the patch border crosses cells; clean flat art puts an edge
        exactly on a grid line only by chance. Returns (cells holding such an edge [ncy, ncx],
        edges across vertical grid lines [ncy, ncx-1], across horizontal ones [ncy-1, ncx])."""
        p, ncx, ncy = self.p, self.ncx, self.ncy
        m = self.prm.margin
        key = color_keys(self.crop[m:m + ncy * p, m:m + ncx * p])
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
        m = self.prm.margin
        out = np.zeros(cand.shape, bool)
        exact = self.constant_cells(cand)
        if np.count_nonzero(exact) < self.prm.cert_min:
            return out
        idx = np.argwhere(exact)
        corner = self.crop[m + p * idx[:, 0], m + p * idx[:, 1]]
        elsewhere = np.ones(self.crop.shape[:2], bool)
        elsewhere[m:m + ncy * p, m:m + ncx * p] = ~cell_pixels(exact, p)
        good = ~colors_found(corner, self.crop, elsewhere)
        out[idx[good, 0], idx[good, 1]] = True
        return out

    def grow_exclusive(self, cells: np.ndarray, rings: int) -> np.ndarray:
        """``cells`` grown (8-connected) over cells within ``rings`` cells of them that are
        exactly constant (all channels, whole cell) in an *exclusive* color: one found in no
        other cell of that zone but constant ones (lossless input; the region's own cells
        are not judged). A block over drawn art has the mean of its square, a color of its
        own, while a fill beside a patch also covers cells that an edge crosses; so a patch
        whose blocks the cell tests missed (a block over a sparse line steps on one side
        only) is followed block by block."""
        st = np.ones((3, 3), bool)
        near = ndimage.binary_dilation(cells, structure=st, iterations=rings)
        zone = near & self.inside & ~cells
        # (A constant cell has no luma gradient inside: the cheap test first, when known.)
        flat = zone if self.inner is None else zone & (self.inner <= 0)
        cand = self.constant_cells(flat)
        reach = ndimage.binary_propagation(cells, structure=st, mask=cells | cand) & cand
        if not reach.any():
            return cells
        p, m = self.p, self.prm.margin
        iy, ix = np.nonzero(reach)
        # ... judged on the pixels of the zone's other cells.
        oy, ox = np.nonzero(zone & ~cand)
        view = self.crop[m:m + self.ncy * p, m:m + self.ncx * p].reshape(self.ncy, p, self.ncx, p, -1)
        colors = self.crop[m + iy * p, m + ix * p]
        good = ~colors_found(colors, view[oy, :, ox])
        if self.prm.exclusive_beyond and len(oy) == 0:
            # No other cell in the zone to judge by (a patch whose sides all lie on grid lines,
            # in a flat fill): the colors are judged on the crop beyond the zone, where a fill
            # goes on and a block's own color does not.
            beyond = np.ones(self.crop.shape[:2], bool)
            beyond[m:m + self.ncy * p, m:m + self.ncx * p] = ~cell_pixels(near, p)
            good &= ~colors_found(colors, self.crop, beyond)
        excl = np.zeros_like(cells)
        excl[iy[good], ix[good]] = True
        return ndimage.binary_propagation(cells, structure=st, mask=cells | excl)

    def grow_stepped_constant(self, cells: np.ndarray, rings: int, across_v: np.ndarray,
                              across_h: np.ndarray) -> np.ndarray:
        """``cells`` grown (8-connected) over cells within ``rings`` cells of them that a
        pixelation made exactly constant (lossless input): a constant cell (all channels,
        whole cell) whose four neighbours are constant too and which differs in color from
        one of them. A block over a smooth gradient or soft shading steps to its neighbours
        by a level or two, too little for the cell tests, yet is exactly constant, while the
        gradient beside the patch holds one of its quantization steps inside most cells; a
        flat fill beside a patch is constant but steps nowhere. A band of gradient rows that
        happens to hold no step is constant too and may step on a grid line, so what grows
        is kept only where a square of ``stepped_thick_px`` pixels (3 cells at least) fits in
        the grown region (such bands are a few cells tall and run along the picture), and
        only in parts that step within themselves (``stepped_apart_share``); constant cells
        it encloses are taken in. ``across_v`` / ``across_h``: ``block_pairs``' edges (two
        constant cells of different colors always make one)."""
        st = np.ones((3, 3), bool)
        reach = 2 * rings + 1
        near = cv2.dilate(cells.astype(np.uint8), np.ones((reach, reach), np.uint8)).astype(bool)
        near &= self.inside
        cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
        around = cv2.dilate(near.astype(np.uint8), cross).astype(bool)
        const = self.constant_cells(around)
        pc, pr = np.pad(const, 1), np.pad(cells, 1)
        ny, nx = const.shape
        # each cell's block edge to its upper, lower, left and right neighbour
        edge = np.zeros((4, ny, nx), bool)
        edge[0, 1:], edge[1, :-1] = across_h, across_h
        edge[2, :, 1:], edge[3, :, :-1] = across_v, across_v
        all_constant = const.copy()
        steps = np.zeros_like(const)
        steps_apart = np.zeros_like(const)  # to a cell outside the region
        for side, (dy, dx) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1))):
            nc = pc[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
            all_constant &= nc
            step = nc & edge[side]
            steps |= step
            steps_apart |= step & ~pr[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
        ok = all_constant & steps & near & ~cells
        grown = ndimage.binary_propagation(cells, structure=st, mask=cells | ok)
        k = max(3, -(-self.prm.stepped_thick_px // self.p))
        thick = ndimage.binary_opening(np.pad(grown, k), structure=np.ones((k, k), bool))[k:-k, k:-k]
        added = ndimage.binary_propagation(cells, structure=st, mask=cells | (thick & ok)) & ~cells
        # A fill beside the region steps to its border blocks only: a grown part must step
        # within itself (blocks over a gradient step to each other).
        parts, n = ndimage.label(added, structure=st)
        if n:
            part_cells = np.bincount(parts.ravel(), minlength=n + 1)
            apart = np.bincount(parts.ravel(), weights=steps_apart.ravel(), minlength=n + 1)
            keep = apart >= self.prm.stepped_apart_share * part_cells
            keep[0] = False
            added = keep[parts]
        grown = cells | added
        return grown | (ndimage.binary_fill_holes(grown) & const)

    def window(self, pixels: np.ndarray) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
        """(image slices, slices of ``pixels``) where a crop-sized pixel mask lands in the
        image, or None when it lies outside."""
        h, w = self.image_size
        x0, y0 = self.gx0, self.gy0
        sx0, sy0 = max(0, -x0), max(0, -y0)
        ex = min(pixels.shape[1], w - x0)
        ey = min(pixels.shape[0], h - y0)
        if ex <= sx0 or ey <= sy0:
            return None
        return ((slice(y0 + sy0, y0 + ey), slice(x0 + sx0, x0 + ex)),
                (slice(sy0, ey), slice(sx0, ex)))

    def paste(self, result: np.ndarray, pixels: np.ndarray) -> None:
        win = self.window(pixels)
        if win is not None:
            result[win[0]] |= pixels[win[1]]
