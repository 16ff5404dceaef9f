"""Mosaics with a non-integer period: pixelated, then rescaled (e.g. 12 px blocks at 0.75 x
are 9 px, 10 px blocks are 7.5 px).

After an area-filtered rescale the block edges are at x = phase + k * period with a real
period and phase. An edge that falls inside a pixel makes that pixel a blend of the two
blocks: the step is split over the two pixel differences beside it, whose gradient-weighted
centroid is still the edge's exact position. So the column profile of straight steps is a
comb with a real period, found per tile by a Fourier transform over sub-pixel periods and
refined over the tiles that agree. The pixels wholly inside a cell are then as constant as
the blocks were: keeping only those (the same count per cell) gives an image with an
integer grid, whose cells the integer-period detector tests as usual; its mask is mapped
back to the image's pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy import ndimage

from deepcream.mosaic.params import DEFAULT_PARAMS, MosaicParams
from deepcream.mosaic.period import tile_profiles
from deepcream.mosaic.resampled import refine_grid


@dataclass(frozen=True)
class FractionalGrid:
    """A grid with real periods and phases (edges at x = phase_x + k * period_x, pixel x
    spanning [x, x + 1)) found over ``box`` (x0, y0, x1, y1; exclusive ends)."""
    period_x: float
    period_y: float
    phase_x: float
    phase_y: float
    box: tuple[int, int, int, int]
    #: the box of the tiles that found it (``box`` is grown around it)
    core: tuple[int, int, int, int] | None = None
    #: the tiles that found it (x0, y0 of each, best comb first; a blurred grid is first
    #: fitted on one)
    tiles: tuple[tuple[int, int], ...] = ()


def edge_steps(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(net x, flank x, net y, flank y) uint8 of ``edge_weights``, which both the exact and
    the blurred grid search weigh (computed once for both)."""
    img = np.ascontiguousarray(luma)
    # (uint8 arithmetic through OpenCV, which saturates: |a - b| by absdiff.)
    # Window at x: the differences between x - 1, x and x + 1 (net = |a[x + 1] - a[x - 1]|),
    # flanks: the differences between x - 2 and x - 1 and between x + 1 and x + 2.
    d = cv2.absdiff(img[:, 1:], img[:, :-1])  # d[:, i]: between i and i + 1
    net = cv2.absdiff(img[:, 2:], img[:, :-2])  # net[:, i]: between i and i + 2
    nx, fx = net[:, 1:-1], cv2.add(d[:, :-3], d[:, 3:])
    d = cv2.absdiff(img[1:], img[:-1])
    net = cv2.absdiff(img[2:], img[:-2])
    return nx, fx, net[1:-1], cv2.add(d[:-3], d[3:])


def edge_weights(luma: np.ndarray, prm: MosaicParams = DEFAULT_PARAMS, exact: bool = True,
                 steps: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Block-edge-like steps across x and across y (uint8 [H, W], at the window's start
    pixel): the net step over two pixel differences (a step blurred into one pixel, or a
    sharp one) less the differences on either side of them (a block is flat beside its edge;
    a thin line steps up and down, netting 0), kept where it persists 3 px along the edge and
    capped so that a few strong outlines do not outweigh a grid of low-contrast blocks. The
    weights' centroid across a step is the step's position (exactly, for a step at a pixel
    border or mid-pixel). ``steps``: ``edge_steps(luma)`` if already computed."""
    # On lossless input only (``frac_lossless_only``) the flanks must be exactly flat, as
    # inside blocks: JPEG noise and natural texture then leave few weights, and few tiles
    # to search. Not so (``exact`` False) for filters that spread a step over 3-6 pixels
    # with an overshoot beside it (``resampled.py``). (net - flank is clipped at 0 by
    # OpenCV's saturating subtract.)
    exact = exact and prm.frac_lossless_only
    nx, fx, ny, fy = steps if steps is not None else edge_steps(luma)
    wx = np.zeros(luma.shape[:2], np.uint8)
    wy = np.zeros(luma.shape[:2], np.uint8)
    for w, net, flank in ((wx[:, 2:-2], nx, fx), (wy[2:-2], ny, fy)):
        w[...] = (cv2.bitwise_and(net, cv2.compare(flank, 0, cv2.CMP_EQ)) if exact
                  else cv2.subtract(net, flank))
    px = cv2.erode(wx, np.ones((3, 1), np.uint8))
    py = cv2.erode(wy, np.ones((1, 3), np.uint8))
    cap = min(int(prm.frac_cap), 255)
    # Steps up to frac_min_step dropped, the rest capped (OpenCV's thresholds: uint8 in,
    # several times faster than numpy's masked assignment on whole images). (uint8:
    # ``tile_profiles`` sums them into float32 tiles.)
    low = math.floor(prm.frac_min_step)  # (x > floor(t) <=> x > t for integers)
    return tuple(cv2.threshold(cv2.threshold(a, low, 0, cv2.THRESH_TOZERO)[1], cap, 0,
                               cv2.THRESH_TRUNC)[1] for a in (px, py))


def _comb_matrices(start: float, n: int, periods: np.ndarray, rows: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) [n, len(periods)] float32 of 2 pi x / P at x = start + 0..n-1; with
    ``rows``, at those x only and 0 elsewhere (where the weights are 0: the products, and so
    the sums, stay the same, and most of a profile's positions have no step)."""
    x = start + np.arange(n, dtype=np.float64)
    if rows is None:
        ang = np.outer(x, 2 * np.pi / periods)  # (float64: x up to the image size)
        return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
    ang = np.outer(x[rows], 2 * np.pi / periods)
    cos = np.zeros((n, len(periods)), np.float32)
    sin = np.zeros((n, len(periods)), np.float32)
    cos[rows] = np.cos(ang)
    sin[rows] = np.sin(ang)
    return cos, sin


@lru_cache(maxsize=4)
def _tile_comb(n: int, periods: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``_comb_matrices`` at start 0: every tile's profile is combed at the same periods
    (cached; read only)."""
    return _comb_matrices(0.0, n, np.frombuffer(periods, np.float64))


def comb(profile: np.ndarray, periods: np.ndarray, start: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(score, phase) of a comb of each period in ``periods`` over the profile(s)
    [..., n] at positions start + 0..n-1: |sum w e^(-2 pi i x / P)| / sum w (1 for all
    weight on the comb) and the comb's phase in [0, P)."""
    n = profile.shape[-1]
    w = profile.astype(np.float32)
    if start == 0.0 and w.ndim == 2 and len(w) > 1:  # (the tiles' batches)
        cos, sin = _tile_comb(n, np.asarray(periods, np.float64).tobytes())
    else:
        cos, sin = _comb_matrices(start, n, periods,
                                  np.nonzero(w.reshape(-1, n).any(axis=0))[0])
    # e^(-i a) = cos a - i sin a
    re = w @ cos
    im = w @ sin
    total = np.maximum(w.sum(axis=-1, keepdims=True, dtype=np.float64), 1e-9)
    score = np.hypot(re, im) / total
    phase = np.mod(np.arctan2(im, re) / (2 * np.pi) * periods, periods)
    return score, phase


def chance_corrected(profiles: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Comb scores [n, P] of the profiles [n, tile] less what their weights score at random
    positions (about 1 / sqrt(effective number of weighted columns): a tile with a few
    edges combs well at any period)."""
    score, _ = comb(profiles, periods)
    total = profiles.sum(axis=1)
    n_eff = total ** 2 / np.maximum((profiles ** 2).sum(axis=1), 1e-9)
    chance = np.minimum(1.0 / np.sqrt(np.maximum(n_eff, 1.0)), 0.99)[:, None]
    return (score - chance) / (1.0 - chance)


def largest_multiple(score: np.ndarray, freqs: np.ndarray, j: int, df: float, near_best: float
                     ) -> int:
    """The index of the period to take for the comb peak ``j`` of ``score`` over ``freqs``
    (evenly spaced by ``df``): a comb of period P also scores at its harmonics P / k, so the
    largest multiple (k = 2, 3) scoring at least ``near_best`` of the peak, else ``j``."""
    pick = j
    for k in (2, 3):
        jk = int(round((freqs[j] / k - freqs[0]) / df))
        if jk >= 0 and score[jk] >= near_best * score[j]:
            pick = jk
    return pick


def fractional_grids(luma: np.ndarray, prm: MosaicParams = DEFAULT_PARAMS,
                     steps: tuple[np.ndarray, ...] | None = None) -> list[FractionalGrid]:
    """Grids whose period or phase is not an integer (the integer-period search has the
    others) and whose cut pixels blend as an area filter blends them, each over the box of
    the tiles that found it, best comb first. One may be another's at a 2 or 3 x smaller
    period (``is_divisor``): the caller tests it only when that one finds nothing
    (``detect.fractional_detections``). ``steps``: ``edge_steps(luma)`` if already
    computed."""
    return list(combed_grids(luma, prm, False, steps))


def blurred_grids(luma: np.ndarray, prm: MosaicParams = DEFAULT_PARAMS,
                  steps: tuple[np.ndarray, ...] | None = None) -> Iterator[FractionalGrid]:
    """The grids of steps that need not have exactly flat flanks, best comb first, not
    checked for area-filter blends (the block model of ``resampled.py`` tests them). A
    generator: each grid's refinement costs, and the caller stops after a few. (Every grid
    goes to the block model, so a comb at twice the period, which any grid's art can show,
    does not remove it.)"""
    return combed_grids(luma, prm, True, steps)


def combed_grids(luma: np.ndarray, prm: MosaicParams, blurred: bool,
                 steps: tuple[np.ndarray, ...] | None) -> Iterator[FractionalGrid]:
    """The grids of ``fractional_grids`` (``blurred`` False) or ``blurred_grids``, in the
    order of their best tile's comb score."""
    h, w = luma.shape[:2]
    wx, wy = edge_weights(luma, prm, exact=not blurred, steps=steps)
    prof_x = tile_profiles(wx, 1, prm)  # [nty, ntx, tile]
    prof_y = tile_profiles(wy, 0, prm)
    nty, ntx = prof_x.shape[:2]
    # Frequencies 4 x finer than a tile resolves (1 / tile), from 1 / frac_max_period to
    # 1 / frac_min_period.
    df = 1.0 / (4 * prm.tile)
    freqs = np.arange(1.0 / prm.frac_max_period, 1.0 / prm.frac_min_period + 1e-12, df)
    periods = 1.0 / freqs
    flat_x = prof_x.reshape(-1, prm.tile)
    flat_y = prof_y.reshape(-1, prm.tile)
    enough = (flat_x.sum(axis=1) >= prm.frac_mass) & (flat_y.sum(axis=1) >= prm.frac_mass)
    # (Scored only where there are enough steps: most tiles of a photo or a JPEG have few
    # with exactly flat flanks.)
    score = np.full((flat_x.shape[0], len(periods)), -1.0, np.float32)
    some = np.nonzero(enough)[0]
    if len(some):
        score[some] = np.minimum(chance_corrected(flat_x[some], periods),
                                 chance_corrected(flat_y[some], periods))
    # Per tile the strongest few local maxima over the periods: where a mosaic covers part
    # of a tile, the art's own texture beside it may comb better.
    peak = np.zeros(score.shape, bool)
    peak[:, 1:-1] = (score[:, 1:-1] >= score[:, :-2]) & (score[:, 1:-1] >= score[:, 2:])
    peak &= (score >= prm.frac_score) & enough[:, None]
    ranked = np.argsort(-np.where(peak, score, -1.0), axis=1)[:, :prm.frac_peaks]
    entries = []  # (score, tile, period)
    for t in np.nonzero(peak.any(axis=1))[0]:
        for j in ranked[t]:
            if not peak[t, j]:
                break
            pick = largest_multiple(score[t], freqs, int(j), df, prm.near_best)
            entries.append((float(score[t, j]), int(t), float(periods[pick])))
    entries.sort(reverse=True)
    lumaf = None
    n_local = 0
    used = np.zeros(len(entries), bool)
    ent_tile = np.array([e[1] for e in entries], np.int64)
    ent_per = np.array([e[2] for e in entries])
    for i, (_sc, t, p0) in enumerate(entries):
        if used[i]:
            continue
        # Tiles that have a peak at about this period, 8-connected to this one, make one grid.
        near = ~used & (np.abs(ent_per - p0) <= prm.frac_agree * p0)
        has = np.zeros(nty * ntx, bool)
        has[ent_tile[near]] = True
        lab, _ = ndimage.label(has.reshape(nty, ntx), structure=np.ones((3, 3), bool))
        mine = lab == lab.flat[t]
        used |= near & mine.ravel()[ent_tile]
        if np.count_nonzero(mine) < prm.frac_min_tiles:
            continue
        tys, txs = np.nonzero(mine)
        x0, y0 = int(txs.min()) * prm.stride, int(tys.min()) * prm.stride
        x1 = min(w, int(txs.max()) * prm.stride + prm.tile)
        y1 = min(h, int(tys.max()) * prm.stride + prm.tile)
        tile_w = np.array([score[u, int(np.argmin(np.abs(periods - p0)))] for u in tys * ntx + txs])
        seeds = tuple((int(txs[i]) * prm.stride, int(tys[i]) * prm.stride) for i in np.argsort(-tile_w))
        grids = refine(prof_x, prof_y, np.stack([tys, txs], axis=1), np.maximum(tile_w, 0.0),
                       p0, (x0, y0, x1, y1), prm)

        def over_core(g: FractionalGrid, core: tuple[int, int, int, int] = (x0, y0, x1, y1)
                      ) -> FractionalGrid:
            return FractionalGrid(g.period_x, g.period_y, g.phase_x, g.phase_y, core)

        if (not blurred and grids and n_local < prm.frac_local_max
                and blend_count(luma, over_core(grids[0]), prm) >= prm.frac_blend_min):
            # The tiles' combs summed over the group give a period a few 0.1% off when the
            # group spans art that combs alike beside a small mosaic (its far edges then
            # drift onto the blended pixels): the area-filter block model refines the
            # first grid where its best-combing tiles are. (Only where that grid already
            # blends some cut pixels: lossy input and textures, which do not, cost nothing.)
            if lumaf is None:
                lumaf = luma.astype(np.float32)
            g = grids[0]
            n_local += 1
            fit = refine_grid(lumaf, seeds, (x0, y0, x1, y1), (g.period_x, g.period_y),
                              (g.phase_x, g.phase_y), prm, filters=("area",), seek=True)
            if fit is not None and not is_integer(fit[0], fit[1], prm):
                grids.insert(0, FractionalGrid(*fit[0], *fit[1], g.box))
                # (A seed tile mostly of art can pull the fit off: the grid that blends
                # more of the cut pixels over the tiles goes first.)
                grids.sort(key=lambda g: -blend_count(luma, over_core(g), prm))
        # The per-axis grid, else (axes apart) one period for both: the first that blends.
        for grid in grids:
            grow = prm.box_margin + int(math.ceil(max(grid.period_x, grid.period_y)))
            box = (max(0, x0 - grow), max(0, y0 - grow), min(w, x1 + grow), min(h, y1 + grow))
            found = FractionalGrid(grid.period_x, grid.period_y, grid.phase_x, grid.phase_y, box,
                                   (x0, y0, x1, y1), seeds)
            if blurred or blends_somewhere(luma, found, prm):
                yield found
                break


def is_divisor(g: FractionalGrid, other: FractionalGrid) -> bool:
    """Whether ``g`` is ``other`` at a k x smaller period (k = 2, 3) over overlapping tiles:
    half of its edges are the other's, and the rest, inside flat blocks, cut nothing that
    would not blend."""
    a, b = g.core or g.box, other.core or other.box
    if a[0] >= b[2] or b[0] >= a[2] or a[1] >= b[3] or b[1] >= a[3]:
        return False
    return any(abs(other.period_x - k * g.period_x) <= 0.02 * other.period_x
               and abs(other.period_y - k * g.period_y) <= 0.02 * other.period_y for k in (2, 3))


def refine(prof_x: np.ndarray, prof_y: np.ndarray, tiles: np.ndarray, weights: np.ndarray,
           p0: float, box: tuple[int, int, int, int], prm: MosaicParams) -> list[FractionalGrid]:
    """Period and phase per axis from the tiles' profiles ([nty, ntx, tile]) laid out at
    their places and summed, each weighted by its comb score (the art beside a mosaic adds
    to a tile's profile; tiles that comb well say more), over periods within frac_agree of
    p0: the per-axis grid, and when the axes' periods differ by more than frac_axes_agree a
    grid with one period for both; without those that are integer grids (the integer
    search's)."""
    # Per axis; but when the two disagree by more than frac_axes_agree, one period for both
    # (blocks are square, and rescaling keeps the aspect ratio): the art beside a small
    # mosaic pulled one axis' own best period off. Two passes: steps of 10 x frac_fine over
    # the range, then frac_fine around the best.
    lines = []
    for prof, axis in ((prof_x, 1), (prof_y, 0)):
        first = int(tiles[:, axis].min())
        size = (int(tiles[:, axis].max()) - first) * prm.stride + prm.tile
        line = np.zeros(size, np.float64)
        for (ty, tx), wt in zip(tiles, weights, strict=True):
            at = ((tx if axis == 1 else ty) - first) * prm.stride
            line[at:at + prm.tile] += wt * prof[ty, tx]
        # (A weight at x stands for the step centred at x + 0.5, see ``edge_weights``.)
        lines.append((line, first * prm.stride + 0.5))

    def joint(periods: np.ndarray) -> tuple[int, list[np.ndarray]]:
        scores, phases = zip(*(comb(line, periods, start=start) for line, start in lines),
                             strict=True)
        return int(np.argmax(scores[0] * scores[1])), list(phases)

    coarse = p0 * (1.0 + np.arange(-prm.frac_agree, prm.frac_agree + 1e-9, 10 * prm.frac_fine))
    per_axis = []
    for line, start in lines:
        sc, _ = comb(line, coarse, start=start)
        fine = coarse[int(sc.argmax())] * (1.0 + np.arange(-10, 11) * prm.frac_fine)
        sc, ph = comb(line, fine, start=start)
        per_axis.append((float(fine[int(sc.argmax())]), float(ph[int(sc.argmax())])))
    (px, fx), (py, fy) = per_axis
    grids = [FractionalGrid(px, py, fx, fy, box)]
    if abs(px - py) > prm.frac_axes_agree * p0:
        j, _ = joint(coarse)
        fine = coarse[j] * (1.0 + np.arange(-10, 11) * prm.frac_fine)
        j, phases = joint(fine)
        grids.append(FractionalGrid(float(fine[j]), float(fine[j]), float(phases[0][j]),
                                    float(phases[1][j]), box))
    # (An integer grid found with a slightly wrong period: the integer search tests it.)
    return [g for g in grids if not is_integer((g.period_x, g.period_y), (g.phase_x, g.phase_y), prm)]


def is_integer(period: tuple[float, float], phase: tuple[float, float], prm: MosaicParams) -> bool:
    """Whether a grid is an integer one (the integer search's), within frac_integer_period
    and frac_integer."""
    return (all(abs(v - round(v)) <= prm.frac_integer_period for v in period)
            and all(abs(v - round(v)) <= prm.frac_integer for v in phase))


def cell_columns(start: int, stop: int, period: float, phase: float, tol: float,
                 q: int | None = None) -> tuple[np.ndarray, int, np.ndarray]:
    """For the cells (edges at phase + k * period) covering pixels start..stop-1: the kept
    pixel indices (q per cell, the first q pixels wholly inside it; may lie outside the
    image), q (the fewest such pixels of a cell unless given), and per pixel start..stop-1 its index among the kept ones (the nearest kept
    pixel of the cell holding its center)."""
    k0 = math.floor((start + 0.5 - phase) / period)
    k1 = math.floor((stop - 0.5 - phase) / period)
    ks = np.arange(k0, k1 + 1)
    edges = phase + ks * period
    first = np.ceil(edges - tol).astype(np.int64)
    last = np.floor(edges + period + tol).astype(np.int64)  # exclusive
    if q is None:
        q = int((last - first).min())
    if q < 1:
        return np.zeros(0, np.int64), 0, np.zeros(0, np.int64)
    kept = (first[:, None] + np.arange(q)[None, :]).ravel()
    x = np.arange(start, stop)
    cell = np.floor((x + 0.5 - phase) / period).astype(np.int64) - k0
    off = np.clip(x - first[cell], 0, q - 1)
    return kept, q, cell * q + off


def cut_pixels(start: int, n: int, period: float, phase: float,
               prm: MosaicParams = DEFAULT_PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """(positions in 0..n-1, float32 share of each left of its edge) of the pixels that the
    grid's edges (phase + k * period) cut more than ``frac_blend_cut`` from either side,
    along an axis whose first pixel is ``start``; not within 2 px of its ends."""
    ks = np.arange(math.ceil((start - phase) / period), math.floor((start + n - phase) / period) + 1)
    b = phase + ks * period - start  # edge positions in box coordinates
    px = np.floor(b).astype(np.int64)
    cut = b - px  # share of pixel px left of the edge
    ok = (cut >= prm.frac_blend_cut) & (cut <= 1 - prm.frac_blend_cut) & (px >= 2) & (px < n - 2)
    return px[ok], cut[ok].astype(np.float32)


def cut_share(fg: FractionalGrid, prm: MosaicParams = DEFAULT_PARAMS) -> float:
    """The share of the grid's edges over ``fg.box`` (on the axis where it is smaller) that
    cut a pixel more than ``frac_blend_cut`` from either side (``cut_pixels``): the others
    fall on or near a pixel border and blend nothing."""
    x0, y0, x1, y1 = fg.box
    shares = []
    for start, n, period, phase in ((x0, x1 - x0, fg.period_x, fg.phase_x),
                                    (y0, y1 - y0, fg.period_y, fg.phase_y)):
        ks = np.arange(math.ceil((start - phase) / period), math.floor((start + n - phase) / period) + 1)
        b = phase + ks * period - start
        edges = np.count_nonzero((b >= 2) & (b < n - 2))
        if edges:
            shares.append(len(cut_pixels(start, n, period, phase, prm)[0]) / edges)
    return min(shares) if shares else 1.0


def blend_residuals(luma: np.ndarray, fg: FractionalGrid, prm: MosaicParams = DEFAULT_PARAMS
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Over ``fg.box``: (residual, step) float32 maps at the pixels that an edge of the grid
    cuts (more than ``frac_blend_cut`` from either side). An area-filtered rescale makes
    such a pixel the blend of its two neighbours in the proportions of the cut: residual =
    |pixel - blend|, step = |right - left| (where the step reaches ``frac_blend_step``).
    A texture that merely combs at the period does not blend so."""
    x0, y0, x1, y1 = fg.box
    img = luma[y0:y1, x0:x1].astype(np.float32)
    res = np.zeros(img.shape, np.float32)
    step = np.zeros(img.shape, np.float32)
    for a, r, s, period, phase, start in ((img, res, step, fg.period_x, fg.phase_x, x0),
                                          (img.T, res.T, step.T, fg.period_y, fg.phase_y, y0)):
        px, cut = cut_pixels(start, a.shape[1], period, phase, prm)
        left, right, mid = a[:, px - 1], a[:, px + 1], a[:, px]
        d = np.abs(right - left)
        big = d >= prm.frac_blend_step
        # ... between flat blocks: a ramp (smooth shading) blends any pixel with its
        # neighbours, but its pixels beside them change as much.
        flank = np.abs(a[:, px - 2] - left) + np.abs(a[:, px + 2] - right)
        r[:, px] = np.where(big, np.abs(mid - (cut * left + (1 - cut) * right)) + flank, 0.0)
        s[:, px] = np.where(big, d, 0.0)
    return res, step


def blend_count(luma: np.ndarray, fg: FractionalGrid, prm: MosaicParams = DEFAULT_PARAMS) -> int:
    """How many of the pixels the grid's edges cut over ``fg.box`` blend as it predicts
    (see ``blend_residuals``)."""
    res, step = blend_residuals(luma, fg, prm)
    return int(np.count_nonzero((step > 0) & (res <= prm.frac_blend_max * step)))


def blends_somewhere(luma: np.ndarray, fg: FractionalGrid, prm: MosaicParams = DEFAULT_PARAMS) -> bool:
    """Whether some stride x stride block of the grid's core box blends its cut pixels as
    the grid predicts (see ``blend_residuals``): frac_blend_min of them, and frac_blend_share
    of the block's cut pixels (where the mosaic covers part of the block); a cheap test
    before the cells are."""
    core = FractionalGrid(fg.period_x, fg.period_y, fg.phase_x, fg.phase_y, fg.core or fg.box)
    res, step = blend_residuals(luma, core, prm)
    s = prm.stride
    h, w = res.shape
    hp, wp = -(-h // s) * s, -(-w // s) * s

    def blocks(a: np.ndarray) -> np.ndarray:
        out = np.zeros((hp, wp), np.float32)
        out[:h, :w] = a
        return out.reshape(hp // s, s, wp // s, s).sum(axis=(1, 3))

    cut = step > 0
    blended = blocks((cut & (res <= prm.frac_blend_max * step)).astype(np.float32))
    ok = (blended >= prm.frac_blend_min) & (blended >= prm.frac_blend_share * blocks(cut.astype(np.float32)))
    return bool(ok.any())
