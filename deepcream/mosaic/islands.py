"""Mosaics that flattened a texture.

A mosaic over screentone or hatching averages the texture into blocks that differ from each
other by a few levels only: too little for the step-based period search (the texture's own
steps dominate every tile) and for the cell tests. Such a patch is a *smooth island* in a
rough surrounding, of about the surrounding's mean color, whose pixels change color (exactly:
lossless input) only on the lines of one grid. Each of the three is common alone (speech
balloons in screentone are smooth islands of another color; flat fills beside hatching end
on outlines; a smooth gradient changes color everywhere), all three together make a mosaic.
Blocks that are all equal (a uniform texture averaged to one color) show no grid and are not
found. After JPEG no pixel is exactly equal to its neighbour: a third pass (``_lossy_islands``)
reads smoothness and the grid's steps in a way JPEG's noise does not fake.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from deepcream.mosaic.cells import cell_pixels, plane_rms
from deepcream.mosaic.params import DEFAULT_PARAMS, MosaicParams
from deepcream.mosaic.period import jpeg_period, near_jpeg_lines, on_jpeg_lines
from deepcream.mosaic.regions import hull_mask


def _fold(pos: np.ndarray, min_p: int, max_p: int, near_best: float
          ) -> tuple[int, int, float]:
    """(period, phase, chance-corrected share of ``pos`` on that phase): the largest period
    scoring at least ``near_best`` of the best (a divisor of the true period scores the same)."""
    # Every period at once: the positions' histogram (they span a box, a few hundred px)
    # folded by each period into a row of ``counts`` [periods, max_p].
    base = int(pos.min())
    hist = np.bincount(pos - base)
    periods = np.arange(min_p, max_p + 1)
    at = (base + np.arange(len(hist)))[None, :] % periods[:, None] + max_p * np.arange(len(periods))[:, None]
    counts = np.bincount(at.ravel(), weights=np.broadcast_to(hist, at.shape).ravel(),
                         minlength=len(periods) * max_p).reshape(len(periods), max_p)
    phases = counts.argmax(axis=1)  # (the columns past a period's own are 0)
    scores = _chance_corrected(counts[np.arange(len(periods)), phases] / len(pos), periods)
    k = int(np.nonzero(scores >= near_best * scores.max())[0][-1])
    return int(periods[k]), int(phases[k]), float(scores[k])


def smooth_islands(rgb: np.ndarray, luma: np.ndarray, prm: MosaicParams = DEFAULT_PARAMS,
                   lossless: Callable[[], bool] | None = None
                   ) -> list[tuple[int, int, int, tuple[int, int, int, int], np.ndarray, float]]:
    """[(period rounded, phase x, phase y, box (x0, y0, x1, y1), bool mask over the box,
    period)] of the smooth islands that are mosaics (see the module's doc). ``luma``: the
    image's uint8 luma. With ``island_blends``, a second pass where blended pixels count as
    smooth adds the islands that do not overlap the first pass's (the first pass's islands
    stay exactly as they are: after JPEG the looser map reshaped some). With
    ``island_lossy``, a third pass adds the islands of lossy input that overlap neither.
    ``lossless()``: whether the image was saved without loss (then no island is JPEG's own
    blocks; asked only where that matters; None: not known)."""
    steps = _neighbour_steps(luma)
    out = _islands(rgb, luma, steps, prm, blends=False, lossless=lossless)
    if prm.island_blends:
        taken = _taken(out, luma.shape)
        out += [found for found in _islands(rgb, luma, steps, prm, blends=True, lossless=lossless)
                if not (taken[found[3][1]:found[3][3], found[3][0]:found[3][2]] & found[4]).any()]
    if prm.island_lossy:
        out += _lossy_islands(rgb, luma, steps, prm, _taken(out, luma.shape))
    return out


def _taken(islands: list[tuple[int, int, int, tuple[int, int, int, int], np.ndarray, float]],
           shape: tuple[int, int]) -> np.ndarray:
    """bool [H, W]: the pixels of ``islands``."""
    taken = np.zeros(shape, bool)
    for _p, _fx, _fy, (x0, y0, x1, y1), mask, _period in islands:
        taken[y0:y1, x0:x1] |= mask
    return taken


def _half_map(smooth: np.ndarray) -> np.ndarray:
    """The half-size map of ``smooth`` (bool [H, W]): 2 x 2 pixels all smooth. Islands are
    labelled on it (4 x fewer pixels) and taken back at full size inside their boxes."""
    hh, hw = smooth.shape[0] // 2, smooth.shape[1] // 2
    return (smooth[0:2 * hh:2, 0:2 * hw:2] & smooth[1:2 * hh:2, 0:2 * hw:2]
            & smooth[0:2 * hh:2, 1:2 * hw:2] & smooth[1:2 * hh:2, 1:2 * hw:2])


def _box(stat: np.ndarray, r: int, h: int, w: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the box at full size of a half-map component (its ``stats`` row),
    with room for a ring of ``r`` px."""
    x, y, bw, bh = stat[:4] * 2
    return max(0, x - r - 1), max(0, y - r - 1), min(w, x + bw + r + 1), min(h, y + bh + r + 1)


def _half_box(box: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """The half-map slices of a full-size ``_box``."""
    x0, y0, x1, y1 = box
    return slice(y0 // 2, (y1 + 1) // 2), slice(x0 // 2, (x1 + 1) // 2)


def _ring_roughness(mask: np.ndarray, rough: np.ndarray, kern: np.ndarray
                    ) -> tuple[np.ndarray, float]:
    """(the ring ``kern`` puts around ``mask``, its share of ``rough`` pixels; -1 when there
    is no ring)."""
    ring = cv2.dilate(mask.view(np.uint8), kern).astype(bool) & ~mask
    return ring, float(np.mean(rough[ring])) if ring.any() else -1.0


def _at_full_size(lab: np.ndarray, box: tuple[int, int, int, int], smooth: np.ndarray
                  ) -> np.ndarray:
    """A half-map component ``lab`` (over ``_half_box(box)``) back at full size over ``box``:
    the ``smooth`` pixels (over ``box``) within one pixel of its 2 x 2 cells."""
    x0, y0, x1, y1 = box
    big = cell_pixels(lab, 2)[y0 % 2:y0 % 2 + y1 - y0, x0 % 2:x0 % 2 + x1 - x0]
    full = np.zeros((y1 - y0, x1 - x0), bool)
    full[:big.shape[0], :big.shape[1]] = big
    return cv2.dilate(full.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & smooth


def _hull_cut(mask: np.ndarray, chg_x: np.ndarray, chg_y: np.ndarray, margin: int) -> np.ndarray:
    """``mask`` within the convex hull, grown by ``margin`` px, of the pixels right of the
    changes ``chg_x`` ([h, w - 1]) and below ``chg_y`` ([h - 1, w])."""
    changed = np.zeros(mask.shape, bool)
    changed[:, 1:] |= chg_x
    changed[1:, :] |= chg_y
    return mask & hull_mask(changed, margin)


def _exact_changes(comp: np.ndarray, dl: np.ndarray, du: np.ndarray,
                   box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The exact luma changes between two pixels of ``comp`` (over ``box``): across vertical
    edges [h, w - 1] and horizontal ones [h - 1, w], from the image-sized left and upper
    steps ``dl``, ``du`` (``_neighbour_steps``), and the numbers of such pixel pairs."""
    x0, y0, x1, y1 = box
    both_x = comp[:, 1:] & comp[:, :-1]
    both_y = comp[1:, :] & comp[:-1, :]
    return (both_x & (dl[y0:y1, x0 + 1:x1] > 0), both_y & (du[y0 + 1:y1, x0:x1] > 0),
            np.count_nonzero(both_x), np.count_nonzero(both_y))


def _neighbour_steps(luma: np.ndarray) -> tuple[np.ndarray, ...]:
    """(luma padded by 1 px, |step| to the left, right, upper and lower neighbour, the largest
    of the four): uint8 arithmetic, fast on big images; both passes read them."""
    pad = cv2.copyMakeBorder(luma, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    dl = cv2.absdiff(pad[1:-1, 1:-1], pad[1:-1, :-2])
    dr = cv2.absdiff(pad[1:-1, 1:-1], pad[1:-1, 2:])
    du = cv2.absdiff(pad[1:-1, 1:-1], pad[:-2, 1:-1])
    dd = cv2.absdiff(pad[1:-1, 1:-1], pad[2:, 1:-1])
    return pad, dl, dr, du, dd, cv2.max(cv2.max(dl, dr), cv2.max(du, dd))


def _islands(rgb: np.ndarray, luma: np.ndarray, steps: tuple[np.ndarray, ...], prm: MosaicParams,
             blends: bool, lossless: Callable[[], bool] | None = None
             ) -> list[tuple[int, int, int, tuple[int, int, int, int], np.ndarray, float]]:
    """``smooth_islands``' pass over the ``_neighbour_steps`` of ``luma``; ``blends``: blended
    pixels are smooth and the grid may have a real period; ``lossless``: see there."""
    h, w = luma.shape
    tol = prm.island_smooth
    # Smooth: luma within ``tol`` of the 4 neighbours.
    pad, dl, dr, du, dd, worst = steps
    # ... and inside a block: equal to a neighbour each way (lossless blocks of 2 px and more;
    # after JPEG few pixels are, so its smooth areas fall apart into small pieces).
    in_x = cv2.min(dl, dr) == 0
    in_y = cv2.min(du, dd) == 0
    if blends:
        # ... or, rescaled with an area filter, a blend of the two blocks an edge cuts:
        # strictly between its neighbours across the edge.
        c = pad[1:-1, 1:-1]
        for both, a, b in ((in_x, pad[1:-1, :-2], pad[1:-1, 2:]), (in_y, pad[:-2, 1:-1], pad[2:, 1:-1])):
            both |= (cv2.min(a, b) < c) & (c < cv2.max(a, b))
    smooth = (worst <= tol) & in_x & in_y
    half = _half_map(smooth)
    hh, hw = half.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(half.view(np.uint8), connectivity=4)
    rough_sub = worst[0:2 * hh:2, 0:2 * hw:2] > tol
    area = stats[:, cv2.CC_STAT_AREA] * 4
    ok = (area >= prm.island_min_area) & (area <= prm.island_max_share * h * w)
    ok[0] = False
    if not ok.any():
        return []
    # A first look at exact changes on the half-size map (every other pixel): a flat fill has
    # none, JPEG changes nearly everywhere, blocks on some columns (rows) only.
    sub = luma[0:2 * hh:2, 0:2 * hw:2]
    keep = ok[labels]
    pair_x = keep[:, 1:] & (labels[:, 1:] == labels[:, :-1])
    pair_y = keep[1:, :] & (labels[1:, :] == labels[:-1, :])
    px_n = np.bincount(labels[:, 1:][pair_x], minlength=n)
    py_n = np.bincount(labels[1:, :][pair_y], minlength=n)
    cx_n = np.bincount(labels[:, 1:][pair_x & (sub[:, 1:] != sub[:, :-1])], minlength=n)
    cy_n = np.bincount(labels[1:, :][pair_y & (sub[1:, :] != sub[:-1, :])], minlength=n)
    half_m = prm.island_min_changes / 2
    ok &= ((cx_n >= half_m) & (cy_n >= half_m) & (cx_n <= prm.island_change_share * px_n)
           & (cy_n <= prm.island_change_share * py_n))
    cand = np.nonzero(ok)[0]
    out = []
    r = prm.island_ring
    kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    kern_half = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (r + 1, r + 1))
    img = rgb if rgb.ndim == 3 else rgb[:, :, None]
    m = prm.island_min_changes
    for k in cand[cand > 0]:
        box = _box(stats[k], r, h, w)
        x0, y0, x1, y1 = box
        half_box = _half_box(box)
        lab = labels[half_box] == k
        # Rough surroundings, first judged on the half-size map (cheap; most smooth areas of
        # photos and fills have smooth surroundings). Its narrower ring, every other pixel,
        # reads a light dot screen as smoother than the full-size test does: a lower bar.
        if _ring_roughness(lab, rough_sub[half_box], kern_half)[1] < prm.island_rough_half:
            continue
        comp = _at_full_size(lab, box, smooth[y0:y1, x0:x1])
        # Exact luma changes between two pixels of the island: lossless blocks change only on
        # the grid lines; a flat fill not at all.
        chg_x, chg_y, pairs_x, pairs_y = _exact_changes(comp, dl, du, box)
        nx, ny = np.count_nonzero(chg_x), np.count_nonzero(chg_y)
        if (nx < m or ny < m or nx > prm.island_change_share * pairs_x
                or ny > prm.island_change_share * pairs_y):
            continue
        ring, rough = _ring_roughness(comp, worst[y0:y1, x0:x1] > tol, kern)
        if rough < prm.island_rough:
            continue
        cx = np.nonzero(chg_x)[1] + x0 + 1
        cy = np.nonzero(chg_y)[0] + y0 + 1
        p, fx, sx = _fold(cx, prm.min_block, prm.max_block, prm.near_best)
        py, fy, sy = _fold(cy, prm.min_block, prm.max_block, prm.near_best)
        if (not blends and p == py and prm.island_leak_grid <= min(sx, sy) < prm.island_grid
                and lossless is not None and lossless()):
            # A patch whose smooth area runs on into the flat gaps of the texture it covers
            # (between hatching lines): judged again on its cells of that grid alone. (Not
            # after JPEG: its flat 8 x 8 blocks are such cells. The ring's roughness stays
            # the whole island's: the cells' own ring lies partly on the gaps.)
            cells = _constant_cells(comp, luma, box, p, fx, fy)
            if cells is not None:
                comp = cells
                ring = _ring_roughness(comp, worst[y0:y1, x0:x1] > tol, kern)[0]
                chg_x, chg_y, _, _ = _exact_changes(comp, dl, du, box)
                cx = np.nonzero(chg_x)[1] + x0 + 1
                cy = np.nonzero(chg_y)[0] + y0 + 1
                if len(cx) < m or len(cy) < m:
                    continue
                sx, sy = _share(cx, p, fx), _share(cy, p, fy)
        period = float(p)
        if p == py and min(sx, sy) >= prm.island_grid:
            # At least two grid lines each way (one straight edge is no grid).
            if len(np.unique(cx[cx % p == fx])) < 2 or len(np.unique(cy[cy % p == fy])) < 2:
                continue
        elif blends:
            # A non-integer period (rescaled after pixelation): the changes weighted by
            # their size, whose centroid across a blended pixel is the edge's position.
            found = _fractional_fold(chg_x, dl[y0:y1, x0 + 1:x1], chg_y, du[y0 + 1:y1, x0:x1],
                                     (x0 + 1, y0 + 1), prm)
            if found is None:
                continue
            period, fx, fy = found
            p = max(1, round(period))
        else:
            continue
        # Of about the surroundings' mean color (blocks average the texture they cover).
        gap = _mean_gap(img[y0:y1, x0:x1], comp, ring)
        if gap > prm.island_mean_tol and not blends and prm.island_mean_texture:
            # ... or of the texture around it: the ring's pixels in blocks of one luma on the
            # grid left out (the same patch's blocks over an outline or a black fill).
            texture = ring & ~_one_luma_cells(luma, box, p, fx, fy)
            if texture.any():
                gap = _mean_gap(img[y0:y1, x0:x1], comp, texture)
        if gap > prm.island_mean_tol:
            continue
        on_jpeg_grid = on_jpeg_lines(p, fx, fy)
        jx, jy = fx, fy
        if not on_jpeg_grid and period != p and jpeg_period(p):
            # A real period within a hair of JPEG's (8.003 px from the blends of its flattened
            # blocks) drifts to another phase at the image's origin: on JPEG's grid too when
            # its changes are, as a whole grid's must be on its own phase (``island_grid``).
            q = min(p, 8)
            on_jpeg_grid = min(np.mean(cx % q == 0), np.mean(cy % q == 0)) >= prm.island_grid
            jx = jy = 0
        if (on_jpeg_grid and prm.island_jpeg_grid_exact > 0
                and _jpeg_blocks_share(img, luma, comp, box, p, jx, jy) > 1 - prm.island_jpeg_grid_exact):
            continue  # JPEG's own blocks (see the parameter)
        near_jpeg = on_jpeg_grid
        if not near_jpeg and near_jpeg_lines(p, fx, fy, prm.island_jpeg_grid_near):
            near_jpeg, jx, jy = True, 0, 0  # (for the strip test only: see the parameter)
        if (near_jpeg and _flattened_strip(luma, comp, box, p, jx, jy, prm)
                and not (lossless is not None and lossless())):
            continue  # a gradient JPEG flattened between two lines (see the parameters)
        # The block pixels next to the texture are not smooth themselves (their neighbour
        # outside differs): a pixel beside the island of the same luma as its neighbour in it
        # joins.
        lum = luma[y0:y1, x0:x1]
        mask = comp.copy()
        mask[:, 1:] |= comp[:, :-1] & (lum[:, 1:] == lum[:, :-1])
        mask[:, :-1] |= comp[:, 1:] & (lum[:, :-1] == lum[:, 1:])
        mask[1:, :] |= comp[:-1, :] & (lum[1:, :] == lum[:-1, :])
        mask[:-1, :] |= comp[1:, :] & (lum[:-1, :] == lum[1:, :])
        if prm.island_hull_margin >= 0:
            # The patch is where its grid's changes are: a smooth fill that the island runs on
            # into beyond them (a flat area beside a patch over cel shading) is not, past
            # island_hull_margin blocks.
            mask = _hull_cut(mask, chg_x, chg_y, prm.island_hull_margin * p)
        out.append((p, fx, fy, box, mask, period))
    return out


def _lossy_islands(rgb: np.ndarray, luma: np.ndarray, steps: tuple[np.ndarray, ...],
                   prm: MosaicParams, taken: np.ndarray
                   ) -> list[tuple[int, int, int, tuple[int, int, int, int], np.ndarray, float]]:
    """The islands of lossy (JPEG) input that the exact passes cannot see, apart from
    ``taken`` (bool, what they found). JPEG's noise makes few pixels equal to a neighbour and
    changes nearly every pair, so smooth is a low mean step around a pixel, and a block edge
    is a step that keeps its sign and size along the edge (JPEG's noise does not), read as
    the mean of the signed steps over island_lossy_run pixels across. JPEG's own 8 x 8 grid
    steps that way too: an island on a grid aligned with it is left out."""
    h, w = luma.shape
    worst = steps[-1]
    smooth = cv2.blur(worst, (3, 3)) <= prm.island_lossy_smooth
    half = _half_map(smooth)
    hh, hw = half.shape
    if prm.island_lossy_open > 0:
        # The flat paper between hatching lines is smooth too and would join an island
        # that touches it: parts narrower than island_lossy_open px are cut off.
        d = prm.island_lossy_open // 2  # (on the half-size map)
        half = cv2.morphologyEx(half.view(np.uint8), cv2.MORPH_OPEN,
                                cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))).astype(bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(half.view(np.uint8), connectivity=4)
    area = stats[:, cv2.CC_STAT_AREA] * 4
    ok = (area >= prm.island_min_area) & (area <= prm.island_max_share * h * w)
    ok[0] = False
    # (What the exact passes found stays theirs.)
    if taken.any():
        ok &= np.bincount(labels.ravel(), weights=taken[0:2 * hh:2, 0:2 * hw:2].ravel(),
                          minlength=n) == 0
    out = []
    r = prm.island_ring
    kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    kern_half = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (r + 1, r + 1))
    rough_sub = ~smooth[0:2 * hh:2, 0:2 * hw:2]
    img = rgb if rgb.ndim == 3 else rgb[:, :, None]
    img_sub = np.ascontiguousarray(img[0:2 * hh:2, 0:2 * hw:2])
    run = prm.island_lossy_run
    for k in np.nonzero(ok)[0]:
        box = _box(stats[k], r, h, w)
        x0, y0, x1, y1 = box
        half_box = _half_box(box)
        lab = labels[half_box] == k
        ring_half, rough = _ring_roughness(lab, rough_sub[half_box], kern_half)
        if rough < prm.island_rough_half:
            continue
        # The mean colors first on the half-size map too (cheap; most smooth areas of a
        # photo differ from their surroundings), with a looser bar than the full-size test.
        if _mean_gap(img_sub[half_box], lab, ring_half) > 1.5 * prm.island_mean_tol:
            continue
        comp = _at_full_size(lab, box, smooth[y0:y1, x0:x1])
        ring, rough = _ring_roughness(comp, ~smooth[y0:y1, x0:x1], kern)
        if rough < prm.island_rough:
            continue
        if _mean_gap(img[y0:y1, x0:x1], comp, ring) > prm.island_mean_tol:
            continue
        lum = luma[y0:y1, x0:x1].astype(np.float32)
        # Steps across vertical edges, then (transposed) across horizontal ones.
        chg_x, held_x = _held_steps(lum, comp, run, prm.island_lossy_step)
        chg_y, held_y = (a.T for a in _held_steps(lum.T, comp.T, run, prm.island_lossy_step))
        # (Not on JPEG's own 8 px lines, neither as changes nor as places for one.)
        for a in (chg_x, held_x):
            a[:, (np.arange(x0 + 1, x1) % 8) == 0] = False
        for a in (chg_y, held_y):
            a[(np.arange(y0 + 1, y1) % 8) == 0, :] = False
        m = prm.island_min_changes
        if np.count_nonzero(chg_x) < m or np.count_nonzero(chg_y) < m:
            continue
        cx = np.nonzero(chg_x)[1] + x0 + 1
        cy = np.nonzero(chg_y)[0] + y0 + 1
        # (Each phase's changes per pair that could have one: the island's width and
        # height vary along it.)
        lines_x = np.nonzero(held_x)[1] + x0 + 1
        lines_y = np.nonzero(held_y)[0] + y0 + 1
        p, fx, _ = _fold(cx, prm.min_block, prm.max_block, prm.near_best)
        py, fy, _ = _fold(cy, prm.min_block, prm.max_block, prm.near_best)
        p, fx = _smallest_period(cx, lines_x, p, fx, prm.min_block)
        py, fy = _smallest_period(cy, lines_y, py, fy, prm.min_block)
        # (One axis may still fold best at a multiple of the other's period, the same grid.)
        if max(p, py) % min(p, py) == 0:
            p = min(p, py)
            fx, fy = fx % p, fy % p
        elif p != py:
            continue
        if min(_share(cx, p, fx), _share(cy, p, fy)) < prm.island_lossy_grid:
            continue
        if p < prm.island_lossy_min_p or on_jpeg_lines(p, fx, fy):
            continue
        if (near_jpeg_lines(p, fx, fy, prm.island_jpeg_grid_near)
                and _flattened_strip(luma, comp, box, p, 0, 0, prm)):
            continue  # steps a pixel off JPEG's lines, between two lines of a hatching
        if len(np.unique(cx[cx % p == fx])) < 2 or len(np.unique(cy[cy % p == fy])) < 2:
            continue
        # The block pixels next to the texture are not smooth themselves: one pixel more.
        mask = cv2.dilate(comp.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if prm.island_hull_margin >= 0:
            # (The grid's own steps only.)
            on_x = chg_x & (np.arange(1, x1 - x0) % p == (fx - x0) % p)[None, :]
            on_y = chg_y & (np.arange(1, y1 - y0) % p == (fy - y0) % p)[:, None]
            mask = _hull_cut(mask, on_x, on_y, prm.island_hull_margin * p)
        out.append((p, fx, fy, box, mask, float(p)))
    return out


def _flattened_strip(luma: np.ndarray, comp: np.ndarray, box: tuple[int, int, int, int],
                     p: int, fx: int, fy: int, prm: MosaicParams) -> bool:
    """Whether an island on (or by) JPEG's grid is a strip whose cells, laid at phase (fx,
    fy), follow a plane: a gradient JPEG flattened into its blocks between two lines of a
    hatching (``island_jpeg_grid_strip`` / ``island_jpeg_grid_plane``; either 0: never)."""
    return (prm.island_jpeg_grid_strip > 0 and prm.island_jpeg_grid_plane > 0
            and _aspect(comp) >= prm.island_jpeg_grid_strip
            and _cells_on_a_plane(luma, comp, box, p, fx, fy, prm.island_jpeg_grid_plane))


def _aspect(comp: np.ndarray) -> float:
    """Long side over short side of the minimum-area rectangle around ``comp``'s pixels."""
    ys, xs = np.nonzero(comp)
    (_, _), (a, b), _ = cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))
    return max(a, b) / max(min(a, b), 1.0)


def _whole_cells(comp: np.ndarray, box: tuple[int, int, int, int], p: int, fx: int, fy: int
                 ) -> tuple[int, int, np.ndarray] | None:
    """(x, y of the first grid lines inside ``box``, bool [rows, columns] of the grid's
    (p, fx, fy) cells from there that lie wholly inside ``comp``), or None when no cell fits."""
    window = _cell_window(box, p, fx, fy)
    if window is None:
        return None
    gx0, gy0, ncx, ncy = window
    x0, y0 = box[:2]
    inside = comp[gy0 - y0:gy0 - y0 + ncy * p, gx0 - x0:gx0 - x0 + ncx * p]
    return gx0, gy0, inside.reshape(ncy, p, ncx, p).all(axis=(1, 3))


def one_color_whole_cells(img: np.ndarray, comp: np.ndarray, box: tuple[int, int, int, int],
                          p: int, fx: int, fy: int
                          ) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """``_whole_cells`` (x, y of the first grid lines, the whole cells) and bool [rows,
    columns]: which of those cells of ``img`` (uint8 [H, W, C] or [H, W]) are exactly one
    color in every channel; None when no cell lies wholly inside ``comp``."""
    found = _whole_cells(comp, box, p, fx, fy)
    if found is None or not found[2].any():
        return None
    gx0, gy0, whole = found
    ncy, ncx = whole.shape
    cells = img[gy0:gy0 + ncy * p, gx0:gx0 + ncx * p].reshape(ncy, p, ncx, p, -1)
    return gx0, gy0, whole, (cells == cells[:, :1, :, :1]).all(axis=(1, 3, 4))


def _cell_window(box: tuple[int, int, int, int], p: int, fx: int, fy: int
                 ) -> tuple[int, int, int, int] | None:
    """(x, y of the first grid lines inside ``box``, the numbers of the grid's (p, fx, fy)
    whole cells from there across and down), or None when no cell fits."""
    x0, y0, x1, y1 = box
    gx0 = fx + p * -(-(x0 - fx) // p)
    gy0 = fy + p * -(-(y0 - fy) // p)
    ncx, ncy = (x1 - gx0) // p, (y1 - gy0) // p
    return None if ncx < 1 or ncy < 1 else (gx0, gy0, ncx, ncy)


def _cells_on_a_plane(luma: np.ndarray, comp: np.ndarray, box: tuple[int, int, int, int],
                      p: int, fx: int, fy: int, tol: float, min_cells: int = 12) -> bool:
    """True when the grid's (p, fx, fy) cells wholly inside ``comp`` (over ``box``), at least
    ``min_cells`` of them, have mean lumas within ``tol`` (rms) of their least-squares plane
    over the cell positions: a smooth gradient sampled per block, as JPEG's flattened blocks
    are, up to the rounding of their DC values. Fewer cells say too little."""
    cells = _whole_cells(comp, box, p, fx, fy)
    if cells is None:
        return False
    gx0, gy0, whole = cells
    iy, ix = np.nonzero(whole)
    if len(iy) < min_cells:
        return False
    ncy, ncx = whole.shape
    means = luma[gy0:gy0 + ncy * p, gx0:gx0 + ncx * p].reshape(ncy, p, ncx, p).mean(
        axis=(1, 3), dtype=np.float64)[iy, ix]
    return plane_rms(means, ix, iy) <= tol


def _jpeg_blocks_share(img: np.ndarray, luma: np.ndarray, comp: np.ndarray,
                       box: tuple[int, int, int, int], p: int, fx: int, fy: int) -> float:
    """Share of the cells of the grid (p, fx, fy) wholly inside ``comp`` (over ``box``) that
    are one luma but not one color: JPEG's flat blocks, whose chroma is rebuilt smoothly
    (0.0 when there is none). A lossless block is one color; a rescaled one's sides blend in
    luma too."""
    found = one_color_whole_cells(img, comp, box, p, fx, fy)
    if found is None:
        return 0.0
    gx0, gy0, whole, one_color = found
    ncy, ncx = whole.shape
    lum = luma[gy0:gy0 + ncy * p, gx0:gx0 + ncx * p].reshape(ncy, p, ncx, p)
    one_luma = (lum == lum[:, :1, :, :1]).all(axis=(1, 3))
    return float(np.count_nonzero(one_luma & ~one_color & whole)) / float(np.count_nonzero(whole))


def _held_steps(lum: np.ndarray, comp: np.ndarray, run: int, step: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """(bool [h, w - 1] block edges between columns x and x + 1, bool [h, w - 1] pairs that
    could have one) of float32 ``lum`` over the island ``comp``: the signed steps between two
    island pixels, their mean over ``run`` pixels along the edge, kept where all ``run``
    pairs are in the island, at least ``step`` and the larger of the two neighbours across."""
    both = comp[:, 1:] & comp[:, :-1]
    signed = np.ascontiguousarray(np.where(both, lum[:, 1:] - lum[:, :-1], 0), np.float32)
    mean = np.abs(cv2.blur(signed, (1, run), borderType=cv2.BORDER_CONSTANT))
    held = cv2.blur(np.ascontiguousarray(both, np.float32), (1, run),
                    borderType=cv2.BORDER_CONSTANT) > 1 - 1e-3
    peak = np.ones(mean.shape, bool)
    peak[:, 1:] &= mean[:, 1:] >= mean[:, :-1]
    peak[:, :-1] &= mean[:, :-1] > mean[:, 1:]
    return held & (mean >= step) & peak, held


def _one_luma_cells(luma: np.ndarray, box: tuple[int, int, int, int], p: int, fx: int, fy: int
                    ) -> np.ndarray:
    """bool over ``box``: the pixels of the grid's (p, fx, fy) whole cells in it that are of
    one ``luma``."""
    x0, y0, x1, y1 = box
    out = np.zeros((y1 - y0, x1 - x0), bool)
    window = _cell_window(box, p, fx, fy)
    if window is None:
        return out
    gx0, gy0, ncx, ncy = window
    lum = luma[gy0:gy0 + ncy * p, gx0:gx0 + ncx * p].reshape(ncy, p, ncx, p)
    cells = lum.min(axis=(1, 3)) == lum.max(axis=(1, 3))
    out[gy0 - y0:gy0 - y0 + ncy * p, gx0 - x0:gx0 - x0 + ncx * p] = cell_pixels(cells, p)
    return out


def _constant_cells(comp: np.ndarray, luma: np.ndarray, box: tuple[int, int, int, int], p: int,
                    fx: int, fy: int) -> np.ndarray | None:
    """The grid's (p, fx, fy) cells that lie wholly in ``comp`` (over ``box``) and are of one
    ``luma`` (bool like ``comp``; None: no such cell)."""
    whole = _whole_cells(comp & _one_luma_cells(luma, box, p, fx, fy), box, p, fx, fy)
    if whole is None or not whole[2].any():
        return None
    gx0, gy0, cells = whole
    ncy, ncx = cells.shape
    x0, y0 = box[:2]
    out = np.zeros_like(comp)
    out[gy0 - y0:gy0 - y0 + ncy * p, gx0 - x0:gx0 - x0 + ncx * p] = cell_pixels(cells, p)
    return out


def _mean_gap(img: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Largest per-channel difference between the mean colors of ``img`` over the bool masks
    ``a`` and ``b`` (cv2.mean: no float copy of the image)."""
    ma = cv2.mean(img, a.view(np.uint8))
    mb = cv2.mean(img, b.view(np.uint8))
    return max(abs(u - v) for u, v in zip(ma[:img.shape[2]], mb[:img.shape[2]], strict=True))


def _chance_corrected(share: float | np.ndarray, p: int | np.ndarray) -> float | np.ndarray:
    """A share of positions on one phase of period ``p``, 0 at chance (1 / p), 1 when all."""
    return (share - 1.0 / p) / (1.0 - 1.0 / p)


def _share(pos: np.ndarray, p: int, f: int) -> float:
    """Chance-corrected share of ``pos`` on phase ``f`` of period ``p`` (``_fold``'s score)."""
    return _chance_corrected(np.count_nonzero(pos % p == f) / len(pos), p)


def _smallest_period(pos: np.ndarray, lines: np.ndarray, p: int, f: int, min_p: int
                     ) -> tuple[int, int]:
    """(period, phase): ``p`` divided by 2 or 3 while every phase of the smaller grid holds at
    least half the changes per line of the found phase ``f``: a few grid lines, some of them
    missing, can fold best at a multiple of the period, and ``_fold`` keeps the largest.
    ``pos``: change positions; ``lines``: the positions a change may have."""
    for d in (2, 3):
        while p % d == 0 and p // d >= min_p:
            q = p // d
            rate = (np.bincount(pos % p, minlength=p)
                    / np.maximum(np.bincount(lines % p, minlength=p), 1))
            # (JPEG spreads a step over two pixels: a line's changes fall either side.)
            near = rate + np.roll(rate, 1) + np.roll(rate, -1)
            if min(near[(f + k * q) % p] for k in range(1, d)) < 0.5 * near[f]:
                break
            p, f = q, f % q
    return p, f


def _fractional_fold(chg_x: np.ndarray, dx: np.ndarray, chg_y: np.ndarray, dy: np.ndarray,
                     start: tuple[int, int], prm: MosaicParams) -> tuple[float, int, int] | None:
    """(period, phase x, phase y; phases rounded) of a real-period grid that the island's
    exact changes (``chg_x`` [h, w'], sizes ``dx``, positions ``start[0] +`` column; likewise
    y) comb on at the same period on both axes (chance-corrected comb score of
    island_frac_grid each, periods within frac_agree / 5 of each other), or None."""
    from deepcream.mosaic.fractional import chance_corrected, comb, largest_multiple

    profiles = [np.where(chg_x, dx, 0).sum(axis=0, dtype=np.float64),
                np.where(chg_y, dy, 0).sum(axis=1, dtype=np.float64)]
    if min(np.count_nonzero(q) for q in profiles) < 2:  # (one straight edge is no grid)
        return None
    n = max(len(q) for q in profiles)
    df = 1.0 / (4 * n)
    freqs = np.arange(1.0 / prm.frac_max_period, 1.0 / prm.frac_min_period + 1e-12, df)
    periods = 1.0 / freqs
    best = []
    for q, at in zip(profiles, start, strict=True):
        score = chance_corrected(q[None].astype(np.float32), periods)[0]
        j = int(np.argmax(score))
        if score[j] < prm.island_frac_grid:
            return None
        j = largest_multiple(score, freqs, j, df, prm.near_best)
        # ... then finer, over the coarse step around it
        fine = periods[j] * (1.0 + np.linspace(-1.0, 1.0, 81) * periods[j] * df)
        sc, ph = comb(q[None], fine, start=at)
        k = int(np.argmax(sc[0]))
        best.append((float(score[j]), float(fine[k]), float(ph[0, k])))
    (sx, px, fx), (sy, py, fy) = best
    if min(sx, sy) < prm.island_frac_grid or abs(px - py) > prm.frac_agree / 5 * px:
        return None
    period = (px + py) / 2
    return period, int(round(fx)) % max(1, round(period)), int(round(fy)) % max(1, round(period))
