"""Region borders: where the pixelated area does not end on a grid line.

Cells next to a region may hold a *partial block*, a constant strip continuing from the
shared grid line and ending on one straight line (the patch border); border cells of the
region may hold a partial block plus surroundings, and are trimmed where the patch border
crosses them (an exact run's end on lossless input, a straight step or the end of the
block's smoothness after JPEG, else their grid line's median width). Then the cells the
border crosses are decided pixel by pixel: on lossless input where the block colors show it
(``exact_block_pixels``; a selection of any shape, not only straight borders), after JPEG
by cutting away what is not near the block's color (``lossy_block_pixels``).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from deepcream.mosaic.cells import Grid, cell_pixels, color_keys


def partial_blocks(grid: Grid, cells: np.ndarray, noise: float, lossless: bool) -> np.ndarray:
    """Pixel mask [ncy*p, ncx*p] of the cells plus the partial blocks around them: where
    the pixelated area ends between grid lines, the neighbouring cell starts with a
    constant strip continuing from the shared grid line. A strip filling the whole cell
    is the surroundings (or an undetectable block), not a partial block: left out.
    ``noise``: the cells' typical interior gradient on the unfiltered image; ``lossless``:
    the blocks are exactly constant (a few exact dark blocks after JPEG are not enough)."""
    # One function over 80 lines on purpose: the four sides share the same dozen per-cell
    # arrays (neighbour masks, strip widths, tolerances), and split helpers would pass all
    # of them around; the steps are marked by the comments below.
    p, ncx, ncy = grid.p, grid.ncx, grid.ncy
    prm = grid.prm
    m = prm.margin
    blocks = grid.crop[m:m + ncy * p, m:m + ncx * p]
    blocks = blocks.reshape(ncy, p, ncx, p, -1).transpose(0, 2, 1, 3, 4)  # [i, j, r, c, ch]
    clean = lossless
    # Lossless: a partial block is exactly constant, so any change ends it (smooth
    # surroundings such as a sky change by a level every few pixels).
    tol = 0.0 if clean else prm.partial_tol + prm.partial_tol_noise * noise
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
        ok = agree >= prm.partial_agree if straight else True
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
    if not clean and p >= prm.strip_fill_min_p:
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
                reach = (per_line[k] >= border).mean(axis=-1) >= prm.partial_agree
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
    luma = grid.luma[m:m + ncy * p, m:m + ncx * p].reshape(ncy, p, ncx, p).transpose(0, 2, 1, 3)

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
        ok = (top >= 2.0 * np.median(d, axis=1) + prm.side_min) & (before <= 0.5 * top)
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
        thr = prm.tex_ratio * rough[:, :2].mean(axis=1) + prm.tex_min
        smooth = rough <= thr[:, None]
        length = np.cumprod(smooth, axis=1).sum(axis=1)
        pos = np.arange(p)[None, :]
        rest = pos >= (length + 1)[:, None]
        outer = (rough * rest).sum(axis=1) / np.maximum(rest.sum(axis=1), 1)
        ok = (length >= 2) & (length <= p - 3) & (outer >= prm.tex_outer * thr)
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



def exact_block_pixels(grid: Grid, cells: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Lossless input: the pixel mask [ncy*p, ncx*p] of ``partial_blocks`` (``fallback``)
    with the region's border decided pixel by pixel where the block colors show it.

    A drawing program writes each block's color (the mean of its square) inside the
    selection only, so a cell the selection's border crosses holds its block color exactly
    on the selected pixels and the untouched picture on the others. In the region's
    non-constant cells and in the cells beside it, the partial block is the pixels of the
    block color 4-connected to the sides the cell shares with region cells. The block color
    is the most frequent color on those sides that steps to the region cell across the grid
    line (a block beside a block) and is *exclusive*: found nowhere as an area (a pixel with
    its 3 x 3 neighbourhood in that color) in the two rings of cells around them. A mean of
    a square of drawn art is a color of its own; a flat fill beyond the border is found all
    around, and grey images over smooth areas take every level somewhere: such cells, and
    cells beside the region wholly in the color (a fill the region's blocks match, or a
    block that cannot be told from one), keep ``fallback``'s pixels."""
    p = grid.p
    prm = grid.prm
    m = prm.margin
    st = np.ones((3, 3), bool)
    near = ndimage.binary_dilation(cells, structure=st) & grid.inside
    refine = near & ~grid.constant_cells(cells)
    if not refine.any():
        return fallback
    ring = ndimage.binary_dilation(near, iterations=2, structure=st) & ~near
    # Work on the cells around the region only.
    ys, xs = np.nonzero(near | ring)
    i0, i1, j0, j1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    cells, near, refine, ring = (a[i0:i1, j0:j1] for a in (cells, near, refine, ring))
    ncy, ncx = cells.shape
    hh, ww = ncy * p, ncx * p
    full = color_keys(grid.crop[i0 * p:i1 * p + 2 * m, j0 * p:j1 * p + 2 * m])
    keys = full[m:m + hh, m:m + ww]

    # Side pixels facing a region cell, and those of them that step to the pixel across
    # the grid line (dy, dx: where the region cell lies).
    pad = np.pad(cells, 1)
    rows = np.arange(hh)[:, None] % p
    cols = np.arange(ww)[None, :] % p
    side = np.zeros((hh, ww), bool)
    votes = np.zeros((hh, ww), bool)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
        on = np.ones((hh, ww), bool)
        if dy:
            on &= rows == (0 if dy < 0 else p - 1)
        if dx:
            on &= cols == (0 if dx < 0 else p - 1)
        on &= cell_pixels(pad[1 + dy:1 + dy + ncy, 1 + dx:1 + dx + ncx], p)
        across = full[m + dy:m + dy + hh, m + dx:m + dx + ww]
        side |= on
        votes |= on & (keys != across)
    refine_px = cell_pixels(refine, p)
    side &= refine_px
    votes &= refine_px
    # Colors found as an area in the two rings of cells around the region and its
    # neighbours.
    flat = np.ones(keys.shape, bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = full[m:m + hh, m:m + ww]
        for sgn in (1, -1):
            b = full[m + sgn * dy:m + sgn * dy + hh, m + sgn * dx:m + sgn * dx + ww]
            flat &= a == b
    found = np.unique(keys[cell_pixels(ring, p) & flat])
    by_cell = keys.reshape(ncy, p, ncx, p).transpose(0, 2, 1, 3)  # [i, j, r, c]
    vote_cells = votes.reshape(ncy, p, ncx, p).transpose(0, 2, 1, 3)
    side_cells = side.reshape(ncy, p, ncx, p).transpose(0, 2, 1, 3)
    chosen = np.full((ncy, ncx), -1, np.int64)
    for i, j in zip(*np.nonzero(refine), strict=True):
        vals = by_cell[i, j][vote_cells[i, j]]
        if not len(vals):
            continue
        u, n = np.unique(vals, return_counts=True)
        if len(found):
            pos = np.clip(np.searchsorted(found, u), 0, len(found) - 1)
            excl = found[pos] != u
        else:
            excl = np.ones(len(u), bool)
        # The block color holds a good share of the stepping side pixels (a noisy
        # surrounding gives each of its colors a pixel or two).
        if excl.any() and n[excl].max() >= prm.exact_votes * len(vals):
            k = u[excl][np.argmax(n[excl])]
            # ... and not the color of a region block it touches without a step (the
            # block continues there, or a fill does: the border is not in this cell's colors).
            same = np.count_nonzero(by_cell[i, j][side_cells[i, j] & ~vote_cells[i, j]] == k)
            if same <= n[excl].max():
                chosen[i, j] = k
    chosen_px = cell_pixels(chosen, p)
    eq = (keys == chosen_px) & (chosen_px >= 0)
    grown = ndimage.binary_propagation(eq & side, mask=eq)
    area = grown.reshape(ncy, p, ncx, p).sum(axis=(1, 3))
    whole = (area == p * p) & ~cells
    decided = cell_pixels(refine & (chosen >= 0) & ~whole, p)
    out = fallback.copy()
    win = out[i0 * p:i1 * p, j0 * p:j1 * p]
    win[:] = (win & ~decided) | (grown & decided & cell_pixels(area >= prm.exact_min_area, p))
    return out


def lossy_block_pixels(grid: Grid, cells: np.ndarray, fallback: np.ndarray, noise: float
                       ) -> np.ndarray:
    """Lossy input: ``fallback`` (``partial_blocks``) cut pixel by pixel in the region's
    border cells and the cells beside it. A partial block is its block's color on the
    selected pixels only; after JPEG that color is known to a tolerance: the median luma of
    the cell's pixels 1-3 px from the sides it shares with region cells. Only the pixels
    within ``lossy_pixel_tol`` x the partial-strip tolerance of it, 4-connected to those
    sides after a 3 x 3 opening (JPEG noise), keep. What the same test finds in the cells
    beside the region is not added here but kept in ``grid.beside`` (``beside_blocks``)."""
    p = grid.p
    prm = grid.prm
    m = prm.margin
    st = np.ones((3, 3), bool)
    near = ndimage.binary_dilation(cells, structure=st) & grid.inside
    pad = np.pad(cells, 1)
    interior = cells & pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    refine = near & ~interior
    if not refine.any() or p < 6:
        return fallback
    # Work on the cells around the region only.
    ys, xs = np.nonzero(near)
    i0, i1, j0, j1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    cells, refine = cells[i0:i1, j0:j1], refine[i0:i1, j0:j1]
    ncy, ncx = cells.shape
    hh, ww = ncy * p, ncx * p
    crop = np.ascontiguousarray(grid.crop[i0 * p + m:i1 * p + m, j0 * p + m:j1 * p + m])
    lum = (cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.shape[2] == 3 else crop[..., 0]
           ).astype(np.float32)

    rows = np.arange(hh)[:, None] % p
    cols = np.arange(ww)[None, :] % p
    pad = np.pad(cells, 1)
    band = np.zeros((hh, ww), bool)  # 1-3 px from a side shared with a region cell
    edge = np.zeros((hh, ww), bool)  # 0-1 px from it
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        facing = cell_pixels(pad[1 + dy:1 + dy + ncy, 1 + dx:1 + dx + ncx], p)
        along = rows if dy else cols  # distance from the shared side
        d = along if dy + dx < 0 else p - 1 - along
        band |= facing & (d >= 1) & (d <= 3)
        edge |= facing & (d <= 1)
    refine_px = cell_pixels(refine, p)
    band &= refine_px
    edge &= refine_px
    by_band = band.reshape(ncy, p, ncx, p).transpose(0, 2, 1, 3)[refine].reshape(-1, p * p)
    by_lum = lum.reshape(ncy, p, ncx, p).transpose(0, 2, 1, 3)[refine].reshape(-1, p * p)
    has = by_band.any(axis=1)
    color = np.zeros((ncy, ncx), np.float32)
    known = np.zeros((ncy, ncx), bool)
    iy, ix = np.nonzero(refine)
    color[iy[has], ix[has]] = np.nanmedian(np.where(by_band[has], by_lum[has], np.nan), axis=1)
    known[iy[has], ix[has]] = True
    tol = prm.lossy_pixel_tol * (prm.partial_tol + prm.partial_tol_noise * noise)
    close = ((np.abs(lum - cell_pixels(color, p)) <= tol) & cell_pixels(known, p)).astype(np.uint8)
    close = cv2.morphologyEx(close, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8),
                             borderType=cv2.BORDER_CONSTANT, borderValue=0)
    # The components (4-connected) that reach the shared sides.
    n, labels = cv2.connectedComponents(close, connectivity=4)
    reach = np.zeros(n, bool)
    reach[labels[edge & (close > 0)]] = True
    reach[0] = False
    grown = reach[labels]
    decided = cell_pixels(refine & known, p)
    out = fallback.copy()
    win = out[i0 * p:i1 * p, j0 * p:j1 * p]
    win &= ~decided | grown
    if prm.beside_blocks:
        # (Cells with a strip of their own keep it: its straight run ended where the
        # patch border is.)
        strip = fallback[i0 * p:i1 * p, j0 * p:j1 * p].reshape(ncy, p, ncx, p).any(axis=(1, 3))
        grid.beside = beside_blocks(grid, cells, refine & known & ~cells & ~strip, grown,
                                    (i0, j0), color, tol)
    return out


def beside_blocks(grid: Grid, cells: np.ndarray, beside: np.ndarray, grown: np.ndarray,
                  origin: tuple[int, int], color: np.ndarray, tol: float) -> np.ndarray | None:
    """Lossy input: the partial blocks in the cells ``beside`` the region, as a pixel mask
    like the regions' (bool [ncy*p, ncx*p] over the grid), or None. ``cells``, ``beside``,
    ``grown``, ``color`` and ``tol`` are ``lossy_block_pixels``' over its window of cells,
    whose first cell is ``origin`` (i0, j0): the region's cells, the cells beside it, the
    pixels near each cell's side color connected to the sides it shares with the region,
    that color (luma) and its tolerance.

    Where a patch's border runs through a cell the region did not take, JPEG leaves its
    partial block flat and of one color from the shared side to the border; beyond lies the
    picture the selection left. A flat color of the surroundings (paper, a fill) passes that
    test too, but goes on past the cell: beyond a hatching line, between a screen's dots, in
    the next cell. So a cell's part is taken only when at most ``beside_beyond`` of the
    other pixels within half a block around the cell (not the region's, not the parts
    taken) are near its color, and it covers ``beside_min_share`` of the cell or more."""
    p, prm, m = grid.p, grid.prm, grid.prm.margin
    i0, j0 = origin
    ncy, ncx = grown.shape[0] // p, grown.shape[1] // p
    share = grown.reshape(ncy, p, ncx, p).mean(axis=(1, 3))
    add = beside & (share >= prm.beside_min_share)
    if not add.any():
        return None
    taken = cell_pixels(cells, p) | (grown & cell_pixels(add, p))
    crop = grid.crop
    oy, ox = i0 * p + m, j0 * p + m  # the window's first pixel in the crop
    e = p // 2
    for i, j in zip(*np.nonzero(add), strict=True):
        y0, x0 = max(0, oy + i * p - e), max(0, ox + j * p - e)
        y1, x1 = min(crop.shape[0], oy + (i + 1) * p + e), min(crop.shape[1], ox + (j + 1) * p + e)
        part = np.ascontiguousarray(crop[y0:y1, x0:x1])
        lum = (cv2.cvtColor(part, cv2.COLOR_RGB2GRAY) if part.shape[2] == 3 else part[..., 0]
               ).astype(np.float32)
        # The pixels around the cell that are not taken (those beyond the window count too).
        ry, rx = y0 - oy, x0 - ox
        ya, yb = max(0, ry), min(taken.shape[0], ry + lum.shape[0])
        xa, xb = max(0, rx), min(taken.shape[1], rx + lum.shape[1])
        others = np.ones(lum.shape, bool)
        others[ya - ry:yb - ry, xa - rx:xb - rx] = ~taken[ya:yb, xa:xb]
        again = np.count_nonzero((np.abs(lum - color[i, j]) <= tol) & others)
        if again > prm.beside_beyond * np.count_nonzero(others):
            add[i, j] = False
    if not add.any():
        return None
    out = np.zeros((grid.ncy * p, grid.ncx * p), bool)
    out[i0 * p:(i0 + ncy) * p, j0 * p:(j0 + ncx) * p] = grown & cell_pixels(add, p)
    return out
