"""Blocks that erased a texture, beside a region the grids found.

A mosaic over hatching or screentone averages the texture: where the texture is uniform, its
blocks all take one color, with no step between them and so no grid for the cell tests to
see. The grid finds the part of the patch whose blocks step (over an outline, a fill's edge,
shading); the rest is a flat area of the texture's own mean color, which the texture
surrounds and which runs on from the found region. Flat areas are everywhere in art, so all
of these must hold for one to be taken:

- it is flat (luma within ``erased_level_tol`` of its color where it meets the region) and
  shares a block's area with the region (the region's own flat blocks are part of it);
- it is enclosed: it ends within ``erased_reach`` region sizes (a background goes on);
- it is thick: ``erased_deep_share`` of its new pixels lie a block or more from its border
  (the gaps between hatching lines are as flat, but thin);
- its border is the texture itself: most pixels around it are rough, the texture a half to
  one block out averages to its color over a block (``erased_color_tol``), and so do the
  pixels right at its border (``erased_edge_tol``): the outline of a flat shape does not.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import cv2
import numpy as np

from deepcream.mosaic.params import DEFAULT_PARAMS, MosaicParams


def _local_var(x: np.ndarray, k: int, x2: np.ndarray) -> np.ndarray:
    """The variance of ``x`` over k x k px; ``x2``: x * x (shared by the window sizes)."""
    mean = cv2.boxFilter(x, -1, (k, k), borderType=cv2.BORDER_REFLECT)
    sq = cv2.boxFilter(x2, -1, (k, k), borderType=cv2.BORDER_REFLECT)
    return np.subtract(sq, np.multiply(mean, mean, out=mean), out=sq)


def _grown(mask: np.ndarray, r: int) -> np.ndarray:
    return cv2.dilate(mask.view(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).view(bool)


def _depth(area: np.ndarray) -> np.ndarray:
    """float32: each pixel's distance to the nearest pixel outside ``area`` (bool), the
    window's border counting as outside."""
    return cv2.distanceTransform(np.pad(area.view(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]


def _near_deep(area: np.ndarray, r: int) -> np.ndarray:
    """bool: the pixels within r + 2 px of ``area``'s pixels r px or more inside it (its
    strands thinner than 2 r left out; its deep part and border kept)."""
    return _grown(_depth(area) >= r, r + 2)


def _thick_and_ringed(area: np.ndarray, new: np.ndarray, mine: np.ndarray | None, rough: np.ndarray,
                      p: int, prm: MosaicParams) -> bool:
    """``_bordered_by_texture``'s first two tests, which read nothing farther than 2 px from
    ``area``: ``erased_deep_share`` of its ``new`` pixels lie a block or more from its border,
    and ``erased_rough_share`` of the pixels 1-2 px around it (not next to ``mine``, if
    given) are ``rough``."""
    depth = _depth(area)
    if np.count_nonzero(depth[new] >= p) < prm.erased_deep_share * np.count_nonzero(new):
        return False
    ring = _grown(area, 2) & ~area
    if mine is not None:
        ring &= ~_grown(mine, 1)
    return bool(np.count_nonzero(ring) >= 10 and np.mean(rough[ring]) >= prm.erased_rough_share)


def _bordered_by_texture(area: np.ndarray, new: np.ndarray, mine: np.ndarray | None, others: np.ndarray,
                         rough: np.ndarray, colors: np.ndarray, p: int, prm: MosaicParams,
                         edge_px: int | None = None, edge_tol: float | None = None) -> bool:
    """Whether a flat ``area`` (bool, over a window) is thick and bordered by a texture of its
    own mean color: the module's last two tests. ``new``: its pixels not yet found; ``mine``
    / ``others``: this region's / every region's pixels; ``rough``: the rough pixels;
    ``colors``: the window's pixels (uint8 [h, w, c]); ``edge_px``: the width of the band
    that must not be an outline (half a block if None); ``edge_tol``: how far its mean may
    lie from the area's color (``erased_edge_tol`` if None). An area found with no region
    (``mine`` None) that fails them all around may pass them by sectors
    (``erased_sectors``)."""
    if not _thick_and_ringed(area, new, mine, rough, p, prm):
        return False
    inner = _grown(area, (p + 1) // 2)
    edge = (inner if edge_px is None else _grown(area, edge_px)) & ~area & ~others
    outer = _grown(area, p) & ~inner & ~others & rough
    if np.count_nonzero(edge) < 10 or np.count_nonzero(outer) < 10:
        return False
    pixels = colors.astype(np.float32)
    color = np.median(pixels[new], axis=0)
    tol = prm.erased_edge_tol if edge_tol is None else edge_tol
    rings: dict[int, np.ndarray] = {1: outer}
    means: dict[int, np.ndarray] = {}

    def ring(k: int) -> np.ndarray:
        """The rough pixels a half to one box of k blocks out."""
        if k not in rings:
            b = k * p
            rings[k] = _grown(area, b) & ~_grown(area, (b + 1) // 2) & ~others & rough
        return rings[k]

    def box_mean(k: int) -> np.ndarray:
        if k not in means:
            b = k * p
            means[k] = cv2.boxFilter(pixels, -1, (b, b), borderType=cv2.BORDER_REFLECT).reshape(pixels.shape)
        return means[k]

    def matches(side: np.ndarray | None) -> bool:
        """The edge and texture tests over the band and rings (within ``side``, if given)."""
        band = edge if side is None else edge & side
        if np.count_nonzero(band) < 10:
            return False
        if float(np.abs(pixels[band].mean(axis=0) - color).max()) > tol:
            return False  # an outline, not the texture
        smaller = None
        for k in range(1, max(1, prm.erased_texture_scales) + 1):
            # The texture's tone: the median of its box means a half to one box out. A
            # hatching sparser than the box averages to its tone only over a box of a few
            # of its periods (a box holds one line or none), so boxes of 1, 2, ... blocks
            # are read in turn. A larger box's tone counts when the box before gave nearly
            # the same: a texture averaged out keeps its tone as the box grows, while boxes
            # that still hold a line or none give medians that jump, and one of them can
            # match by chance.
            out = ring(k) if side is None else ring(k) & side
            if np.count_nonzero(out) < 10:
                break
            texture = np.median(box_mean(k)[out], axis=0)
            steady = smaller is None or float(np.abs(texture - smaller).max()) <= prm.erased_scale_tol
            if steady and float(np.abs(texture - color).max()) <= prm.erased_color_tol:
                return True
            smaller = texture
        return False

    if matches(None):
        return True
    if prm.erased_sectors <= 0 or mine is not None:
        return False
    # Blocks over the border of a texture's region: the area borders that texture on one
    # side and other textures or fills elsewhere, and the medians all around match none.
    # Judged by sectors around the area's centre: enough of its ring must match. (Not for
    # an area grown from a found region: see below.)
    ys, xs = np.nonzero(area)
    yy, xx = np.indices(area.shape)
    angle = np.arctan2(yy - ys.mean(), xx - xs.mean())
    sector = ((angle + np.pi) * (prm.erased_sectors / (2 * np.pi))).astype(np.int32) % prm.erased_sectors
    # (Not within two blocks of a found region: a patch's own unfound border cells average
    # to the fill beside it, and a sector over them matched a flat fill next to the patch.)
    away = ~_grown(others, 2 * p) if others.any() else np.ones_like(area)
    total = np.count_nonzero(outer)
    held = sum(np.count_nonzero(outer & side) for side in ((sector == k) & away for k in range(prm.erased_sectors))
               if matches(side))
    return held >= prm.erased_sector_share * total


def _tone_share_around(luma: np.ndarray, area: np.ndarray, found: np.ndarray) -> float:
    """The share of the pixels 2-6 px around ``area`` (not ``found``) whose 7 x 7 mean luma
    lies within 12 of the area's mean: a texture of its tone averages to it nearly all
    around, a darker shading's border runs along the lighter fill beside it."""
    band = _grown(area, 6) & ~_grown(area, 1) & ~found
    if not band.any():
        return 0.0
    local = cv2.boxFilter(luma, -1, (7, 7), borderType=cv2.BORDER_REFLECT)
    return float(np.mean(np.abs(local[band] - luma[area].mean()) <= 12))


@dataclass(frozen=True)
class FlatAreas:
    """An image's smooth pixels (luma std over 3 x 3 px at most ``erased_smooth``) and rough
    pixels (over 7 x 7 px at least ``erased_rough``; bool [H, W]) and, with
    ``erased_alone``, the areas flat over 7 x 7 px (``flat_areas``): their labels (int32
    [H, W], 4-connected) and ``cv2.connectedComponentsWithStats`` stats."""

    smooth: np.ndarray
    rough: np.ndarray
    labels: np.ndarray | None
    stats: np.ndarray | None


def flat_areas(luma: np.ndarray, prm: MosaicParams = DEFAULT_PARAMS) -> FlatAreas:
    """The maps ``erased_texture`` and ``flat_areas_in_texture`` read, from the luma alone (so
    they can be computed while the grids are searched). (Variances against squared bounds:
    the same pixels as the std against the bounds, without two square roots of the image.)"""
    lum = luma.astype(np.float32)
    lum2 = lum * lum
    var7 = _local_var(lum, 7, lum2)
    labels = stats = None
    if prm.erased_alone:
        _, labels, stats, _ = cv2.connectedComponentsWithStats(
            (var7 <= prm.erased_alone_smooth ** 2).view(np.uint8), connectivity=4)
    rough = var7 >= prm.erased_rough ** 2
    return FlatAreas(_local_var(lum, 3, lum2) <= prm.erased_smooth ** 2, rough, labels, stats)


def erased_texture(rgb: np.ndarray, luma: np.ndarray, found: np.ndarray, region: np.ndarray,
                   origin: tuple[int, int], p: int, maps: FlatAreas,
                   prm: MosaicParams = DEFAULT_PARAMS, trim: int = 0
                   ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """(box (x0, y0, x1, y1), bool mask over it) of the flat areas that run on from one
    found region over a texture its blocks erased (see the module), or None. ``found``: every
    region's pixels (bool [H, W]); ``region``: this region's pixels over its bounding box,
    whose top-left pixel is ``origin`` (y, x); ``p``: its block size; ``maps``: the image's
    ``flat_areas`` (its smooth and rough pixels); ``trim``: each flat area is taken, and
    judged, only within trim + 2 px of its pixels trim px or more inside it (0: whole)."""
    h, w = luma.shape
    ry, rx = origin
    rh, rw = region.shape
    if np.count_nonzero(region) < p * p:
        return None
    reach = max(3 * p, min(prm.erased_max_reach, int(prm.erased_reach * max(rh, rw))))
    x0, y0 = max(0, rx - reach), max(0, ry - reach)
    x1, y1 = min(w, rx + rw + reach), min(h, ry + rh + reach)
    lum = luma[y0:y1, x0:x1].astype(np.float32)
    mine = np.zeros(lum.shape, bool)
    mine[ry - y0:ry - y0 + rh, rx - x0:rx - x0 + rw] = region
    smooth = maps.smooth[y0:y1, x0:x1]
    n, comp, stats, _ = cv2.connectedComponentsWithStats(smooth.view(np.uint8), connectivity=4)
    near = _grown(mine, 2)
    others = found[y0:y1, x0:x1]
    colors = rgb[y0:y1, x0:x1].reshape(y1 - y0, x1 - x0, -1)
    shared = np.bincount(comp[mine], minlength=n)
    added = np.zeros(lum.shape, bool)
    bh, bw = lum.shape
    m = max(1, prm.erased_texture_scales) * p + 3  # room for the rings below
    for k in np.unique(comp[near & smooth]):
        if k == 0 or shared[k] < p * p:
            continue
        # (Each flat area is judged in its own window: the box can be large.)
        cx, cy, cw, ch, _ = stats[k]
        win = (slice(max(0, cy - m), min(bh, cy + ch + m)), slice(max(0, cx - m), min(bw, cx + cw + m)))
        oy, ox = win[0].start, win[1].start
        part = comp[win] == k
        wmine, wothers, wlum = mine[win], others[win], lum[win]
        # Where it meets the region: the flat area's level (a flat area of the texture's mean
        # may touch other flat shapes through blocks of their colors).
        meet = part & near[win] & ~wmine
        if np.count_nonzero(meet) < 3:
            continue
        level = float(np.median(wlum[meet]))
        flat = part & (np.abs(wlum - level) <= prm.erased_level_tol)
        _, sub, sub_stats, _ = cv2.connectedComponentsWithStats(flat.view(np.uint8), connectivity=4)
        for j in np.unique(sub[meet & flat]):
            if j == 0:
                continue
            sx, sy, sw, sh, _ = sub_stats[j]
            if ox + sx == 0 or oy + sy == 0 or ox + sx + sw >= bw or oy + sy + sh >= bh:
                continue  # not enclosed within the reach
            area = sub == j
            if trim:
                # (Strands along a sparse hatching's flat gaps: they would count against
                # erased_max_growth and bring the hatching's lines into the outline test.)
                area &= _near_deep(area, trim)
            new = area & ~wothers
            count = np.count_nonzero(new)
            if (count < p * p or count > prm.erased_max_growth * np.count_nonzero(region)
                    or np.count_nonzero(area & wmine) < p * p):
                continue
            if _bordered_by_texture(area, new, wmine, wothers, maps.rough[y0:y1, x0:x1][win],
                                    colors[win], p, prm):
                added[win] |= new
    if not added.any():
        return None
    return (x0, y0, x1, y1), added


def flat_areas_in_texture(rgb: np.ndarray, luma: np.ndarray, found: np.ndarray, flat: FlatAreas,
                          prm: MosaicParams = DEFAULT_PARAMS
                          ) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """(box (x0, y0, x1, y1), bool mask over it) of each flat area of a texture's mean color
    that the texture encloses and no region holds: a mosaic over a uniform screen or
    hatching whose blocks all took one color. JPEG erases the level or two between such
    blocks, so no grid is seen at all (nor its block size); the area is judged by the tests
    above alone, with blocks of ``erased_alone_block`` px. ``found``: every region's pixels;
    ``flat``: ``flat_areas(luma, prm)`` (with ``erased_alone``). Flat here means flat over 7 x 7 px:
    the gaps between a screen's dots are flat over 3 x 3 and would join the screen to the
    area."""
    h, w = luma.shape
    smooth, rough, comp, stats = flat.smooth, flat.rough, flat.labels, flat.stats
    assert comp is not None and stats is not None
    p = prm.erased_alone_block
    m = max(1, prm.erased_texture_scales) * p + 6  # room for the rings of the tests
    # (Areas mostly inside a region are not judged: counted in one pass.)
    held = np.bincount(comp[found], minlength=len(stats))
    x, y, bw, bh, count = stats.T
    inside = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    judged = np.nonzero((count >= prm.erased_alone_min_px) & (bw * bh <= prm.erased_alone_max_share * h * w)
                        & (inside | (prm.erased_alone_edge_share > 0)) & (held <= 0.5 * count))[0]
    judged = judged[judged > 0]  # (not small, not held)

    def window(k: int, margin: int) -> tuple[slice, slice]:
        """Area k's box and ``margin`` px around it, within the image."""
        cx, cy, cw, ch = stats[k, :4]
        return (slice(max(0, cy - margin), min(h, cy + ch + margin)),
                slice(max(0, cx - margin), min(w, cx + cw + margin)))

    def flat_area(k: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
        """(its window 5 px around area k's box, the area over it, its pixels no region
        holds), or None where the area is left out. (The area reaches 3 px past its flat
        core, and the tests that read 2 px around it run on this window.)"""
        win = window(k, 5)
        core = comp[win] == k
        if not inside[k]:
            # A background goes on past the picture: much of its outline runs along the
            # picture's edge. A patch that the edge cuts borders it over a short stretch.
            on_edge = ((np.count_nonzero(core[0]) if win[0].start == 0 else 0)
                       + (np.count_nonzero(core[-1]) if win[0].stop == h else 0)
                       + (np.count_nonzero(core[:, 0]) if win[1].start == 0 else 0)
                       + (np.count_nonzero(core[:, -1]) if win[1].stop == w else 0))
            outline = np.count_nonzero(_grown(core, 1) & ~core)
            if on_edge > prm.erased_alone_edge_share * (outline + on_edge):
                return None
        wl = luma[win].astype(np.float32)
        level = float(np.median(wl[core]))
        # (The 7 x 7 test leaves out 3 px along the area's border: taken back where flat
        # over 3 x 3 at the area's level. The core itself is kept whole: blocks under a
        # shading take levels 20 apart, and cut to one level its pieces border blocks of
        # other levels, not the texture.)
        area = (_grown(core, 3) & smooth[win]
                & (np.abs(wl - level) <= prm.erased_level_tol))
        if prm.erased_alone_whole_core:
            area |= core
        ns, sub = cv2.connectedComponents(area.view(np.uint8), connectivity=4)
        if ns < 2:
            return None
        area = sub == int(np.bincount(sub[core & area], minlength=ns)[1:].argmax()) + 1
        new = area & ~found[win]
        if np.count_nonzero(new) < prm.erased_alone_min_px:
            return None
        return win, area, new

    def judge(k: int) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        # Most areas fail the tests that read 2 px around them (``_thick_and_ringed``),
        # judged on the small window; the few that pass are put into the window of
        # scales x block + 6 px that the later tests need.
        found_area = flat_area(k)
        if found_area is None:
            return None
        small, area, new = found_area
        if not _thick_and_ringed(area, new, None, rough[small], p, prm):
            return None
        win = window(k, m)
        oy, ox = small[0].start - win[0].start, small[1].start - win[1].start
        placed = np.zeros((win[0].stop - win[0].start, win[1].stop - win[1].start), bool)
        placed[oy:oy + area.shape[0], ox:ox + area.shape[1]] = area
        area = placed
        wfound = found[win]
        new = area & ~wfound
        if not _bordered_by_texture(
                area, new, None, wfound, rough[win],
                rgb[win].reshape(*area.shape, -1), p, prm, prm.erased_alone_edge_px,
                None if inside[k] else prm.erased_alone_edge_cut_tol):
            return None
        if not inside[k] and _tone_share_around(luma[win].astype(np.float32), area,
                                                wfound) < prm.erased_alone_edge_cut_share:
            return None
        if prm.erased_alone_trim:
            # (Judged with the strands it sends into a sparse hatching's gaps, taken without
            # them: a disc's opening would also round off the patch's corners.)
            r = prm.erased_alone_trim
            new &= _near_deep(area, r)
            if not new.any():
                return None
        ys, xs = np.nonzero(new)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        oy, ox = win[0].start + y0, win[1].start + x0
        return (ox, oy, ox + x1 - x0, oy + y1 - y0), new[y0:y1, x0:x1]

    # (Two threads: OpenCV and numpy's whole-window passes release the GIL, and nothing else
    # runs by now.)
    with ThreadPoolExecutor(max_workers=2) if prm.parallel else nullcontext() as pool:
        judgements = list(pool.map(judge, judged) if pool is not None else map(judge, judged))
    return [found_area for found_area in judgements if found_area is not None]
