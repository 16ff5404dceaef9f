"""Grid and period estimation: where in the image are steps on a periodic grid, and which
grids (period, phase) are worth testing cell by cell.

A mosaic's horizontal luma gradient is zero except on the columns x = phase (mod p), and
likewise vertically. Steps that are local maxima across and persist along a straight line
(*grid-like* steps) are counted per column (row) of overlapping tiles and folded modulo
every period with one matrix product; the share of steps on the best phase, corrected for
chance, scores the period. Images enlarged by repeating pixels are recognised first (their
texture is itself "constant k x k blocks") and judged at their source resolution.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from deepcream.mosaic.params import DEFAULT_PARAMS, MosaicParams


@dataclass(frozen=True)
class CandidateGrid:
    """A grid to test: period ``p``, phases ``fx``, ``fy`` (image coordinates mod p), the
    tiles (ty, tx) that found it, and whether it is only some tile's runner-up phase."""
    p: int
    fx: int
    fy: int
    tiles: list[tuple[int, int]]
    runner: bool
    #: only ever a smaller period than its tiles picked (``MosaicParams.divisor_option``);
    #: not tested on lossless input, where beside a region found on its true grid it adds
    #: partial blocks and flat cells
    fallback: bool = False
    #: the real period of a non-integer grid (``fractional.py``; ``p`` is it rounded), or None
    period: float | None = None
    #: proposed only by tiles folded on their long steps (``MosaicParams.long_step_pixels``)
    long_step: bool = False

    @property
    def size(self) -> float:
        """The block size in pixels: the real period, or ``p`` (0 where no grid was seen)."""
        return float(self.p) if self.period is None else self.period


def step_persistence(along: int = 1) -> int:
    """How many px along its edge a ``grid_steps`` step persists, for the pixel-repetition
    factor ``along``: two source pixels and more."""
    return along + 2


def grid_steps(g: np.ndarray, axis: int, across: int = 1, along: int = 1,
               prm: MosaicParams = DEFAULT_PARAMS) -> np.ndarray:
    """Binary map of isolated steps across ``axis`` (1: x) that persist 3 px along the edge.

    ``across``/``along``: pixel-repetition factors of the image across and along the steps
    (1: none). On an image upscaled k x by repeating pixels every step is trivially isolated
    from its 1 px neighbours (the repeated pixels' differences are 0) and persists k px: there
    a step must exceed every step within ``across`` px (its neighbours on the original image)
    and persist ``along`` + 2 px (two source pixels and more; 2 ``along`` + 1, three source
    pixels, lost more of the weak block edges that JPEG leaves)."""
    r, n = across, step_persistence(along)
    # nb: the largest step within r px either side across the steps (0 on the first and
    # last r lines); persist: the smallest of iso = g - nb over n px along them.
    across_x = axis == 1
    if r == 1:
        # (OpenCV's dilation by the two neighbours: the same floats, twice as fast)
        nb = cv2.dilate(g, np.array([[1, 0, 1]] if across_x else [[1], [0], [1]], np.uint8))
        if across_x:
            nb[:, :1] = nb[:, -1:] = 0
        else:
            nb[:1] = nb[-1:] = 0
    else:
        nb = np.zeros_like(g)
        for d in range(1, r + 1):
            if across_x:
                nb[:, d:-d] = np.maximum(nb[:, d:-d], np.maximum(g[:, :-2 * d], g[:, 2 * d:]))
            else:
                nb[d:-d, :] = np.maximum(nb[d:-d, :], np.maximum(g[:-2 * d, :], g[2 * d:, :]))
    # (The smallest of iso over n px exceeds step_min where each of them does: a binary
    # erosion, a quarter of the float one's memory.)
    iso = np.subtract(g, nb, out=nb) > prm.step_min
    return cv2.erode(iso.view(np.uint8), np.ones((n, 1) if across_x else (1, n), np.uint8)).view(bool)


def long_steps(steps: np.ndarray, axis: int, along: int = 1,
               prm: MosaicParams = DEFAULT_PARAMS) -> np.ndarray:
    """The steps of ``grid_steps`` output ``steps`` (across ``axis``) that persist
    ``long_step_length`` px along the edge (times ``along``, the pixel-repetition factor
    along it): a block's side runs its whole length along the grid line, a screen dot's
    edge a few pixels."""
    # (An erosion by n px on top of grid_steps' own persistence.)
    n = max(1, prm.long_step_length * along - step_persistence(along) + 1)
    kernel = np.ones((n, 1) if axis == 1 else (1, n), np.uint8)
    return cv2.erode(steps.view(np.uint8), kernel).view(bool)


def repetition(g: np.ndarray, axis: int, prm: MosaicParams = DEFAULT_PARAMS) -> int:
    """Pixel-repetition factor k (1: none) of an image along ``axis`` from its gradient across
    it (``gx`` for axis 1): upscaled k x by repeating pixels, only one column (row) phase mod
    k has steps, exactly 0 elsewhere on lossless input and small after JPEG. Differences up
    to ``rep_noise`` levels are discounted (JPEG noise), and the off phases must be that flat
    over the image and in most textured tiles, with steps on most on-phase columns there: a
    mosaic, whose grid lines are also on one phase when its period is a multiple of k, covers
    a part of the image only and leaves the on-phase columns between its lines empty."""
    t = prm.rep_tile
    d = cv2.subtract(g, prm.rep_noise)
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
    for k in prm.rep_factors:
        tw = t // k  # tile width in groups of k columns (rows)
        nk = n // k
        if nk < tw:
            continue
        tot = total[:nk * k].reshape(nk, k).sum(axis=0)
        on = int(tot.argmax())
        off = np.delete(tot, on).max()
        if tot[on] <= 0 or off > prm.rep_ratio * tot[on]:
            continue
        nx = nk // tw
        groups = bands[:, :nx * tw * k].reshape(nb, nx, tw, k)
        tiles = groups.sum(axis=2)  # [nb, nx, k]
        t_on = tiles[..., on]
        t_off = np.delete(tiles, on, axis=2).max(axis=2)
        textured = t_on >= prm.rep_texture * t * tw
        # Texture has steps on (nearly) every on-phase column; a mosaic's grid lines on one
        # phase mod k (its period a multiple of k) leave most of them empty.
        cols = groups[..., on]
        spread = (cols >= prm.rep_column * (t_on / tw)[..., None]).mean(axis=2)
        rep = textured & (t_off <= prm.rep_ratio * t_on) & (spread >= prm.rep_spread)
        n_tex = np.count_nonzero(textured)
        if n_tex and np.count_nonzero(rep) >= prm.rep_tiles * n_tex:
            best = k
    return best


def fold_matrix(min_block: int, max_block: int, prm: MosaicParams = DEFAULT_PARAMS
                ) -> tuple[np.ndarray, list[int], list[int]]:
    """One-hot [TILE, sum(p)] matrix: column offset k -> (p, k mod p) for every period p."""
    periods = list(range(min_block, max_block + 1))
    starts = []
    cols = 0
    for p in periods:
        starts.append(cols)
        cols += p
    m = np.zeros((prm.tile, cols), np.float32)
    k = np.arange(prm.tile)
    for p, s in zip(periods, starts, strict=True):
        m[k, s + k % p] = 1.0
    return m, periods, starts


def tile_profiles(steps: np.ndarray, axis: int, prm: MosaicParams = DEFAULT_PARAMS) -> np.ndarray:
    """Step counts per tile along ``axis``: [nty, ntx, TILE] (tiles of TILE, stride STRIDE).

    axis=1: column profiles (counts of x-steps per column over the tile's rows);
    axis=0: row profiles.
    """
    h, w = steps.shape
    s = prm.stride
    hp = max(prm.tile, -(-h // s) * s)
    wp = max(prm.tile, -(-w // s) * s)
    # Counts per band of STRIDE rows (columns), summed from the map's bytes (bool steps or
    # uint8 weights): no padded float copy of the whole map.
    u = steps.view(np.uint8) if steps.dtype == bool else steps
    if axis == 1:
        full = h // s
        bands = np.zeros((hp // s, wp), np.float32)  # [nby, wp]
        bands[:full, :w] = u[:full * s].reshape(full, s, w).sum(axis=1, dtype=np.float32)
        if h > full * s:
            bands[full, :w] = u[full * s:].sum(axis=0, dtype=np.float32)
        rows = bands[:-1] + bands[1:]  # [nty, wp]
        return np.lib.stride_tricks.sliding_window_view(rows, prm.tile, axis=1)[:, ::s]
    full = w // s
    bands = np.zeros((hp, wp // s), np.float32)  # [hp, nbx]
    bands[:h, :full] = u[:, :full * s].reshape(h, full, s).sum(axis=2, dtype=np.float32)
    if w > full * s:
        bands[:h, full] = u[:, full * s:].sum(axis=1, dtype=np.float32)
    cols = bands[:, :-1] + bands[:, 1:]  # [hp, ntx]
    return np.lib.stride_tricks.sliding_window_view(cols, prm.tile, axis=0)[::s]


def periodicity(profiles: np.ndarray, fold: np.ndarray, periods: list[int],
                starts: list[int], rep: int = 1, prm: MosaicParams = DEFAULT_PARAMS,
                runners: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per tile and period: chance-corrected score [n, P], best local phase [n, P], the
    step count on that phase [n, P], and the runner-up phase [n, P] (-1 unless it has at
    least ``runner_up`` of the best phase's steps). ``rep``: the image's pixel-repetition factor
    k across the steps: texture steps then fall on one phase mod k only, i.e. on
    p / gcd(p, k) of the p phases by chance (none to tell apart when p divides k: score 0).
    ``runners``: False leaves every runner-up at -1 (not needed)."""
    flat = profiles.reshape(-1, prm.tile)
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
        if runners and p >= prm.runner_up_min_p:
            rest = block.copy()
            rest[np.arange(n), ph] = -1.0
            ph2 = rest.argmax(axis=1)
            second[:, i] = np.where(rest[np.arange(n), ph2] >= prm.runner_up * best, ph2, -1)
    return score, phase, onp, second


def jpeg_period(p: int) -> bool:
    """Whether a grid of period ``p`` could be JPEG's own 8 x 8 blocks (or lie on their
    lines): a multiple or a divisor of 8."""
    return p % 8 == 0 or 8 % p == 0


def on_jpeg_lines(p: int, fx: int, fy: int) -> bool:
    """Whether the grid (p, fx, fy) lies on JPEG's own block lines: a ``jpeg_period`` with
    both phases on them."""
    return near_jpeg_lines(p, fx, fy, 0)


def near_jpeg_lines(p: int, fx: int, fy: int, reach: int) -> bool:
    """Whether the grid (p, fx, fy) is a ``jpeg_period`` with both phases within ``reach``
    px of JPEG's block lines (0: on them). The steps of JPEG's flattened blocks can lie a
    pixel off its lines (a clean hatched gradient at q70: grids at phases 1 and 7)."""
    q = min(p, 8)
    return (jpeg_period(p) and min(fx % q, q - fx % q) <= reach
            and min(fy % q, q - fy % q) <= reach)


def gradients(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|step| as float32: gx[:, x] between x-1 and x, gy[y] between y-1 and y (0 on the
    first column/row). ``gray``: uint8 [H, W] or [H, W, 1]."""
    img = gray[:, :, 0] if gray.ndim == 3 else gray
    gx = np.zeros(img.shape, np.float32)
    gy = np.zeros(img.shape, np.float32)
    gx[:, 1:] = cv2.absdiff(img[:, 1:], img[:, :-1])
    gy[1:, :] = cv2.absdiff(img[1:, :], img[:-1, :])
    return gx, gy



def candidate_grids(luma: np.ndarray, min_block: int, max_block: int,
                    prm: MosaicParams = DEFAULT_PARAMS) -> tuple[list[CandidateGrid], int]:
    """The grids (period p, phase fx, fy) worth testing cell by cell, each with the tiles
    that found it, and the image's pixel-repetition factor (1: none; see ``repetition``)."""
    gx, gy = gradients(luma)
    # Pixel repetition (an image upscaled by repeating pixels, e.g. skimage's moon): its
    # texture is itself "constant k x k blocks", every step isolated and on one phase mod k,
    # so that tiles folded as period k and drowned a mosaic's own period. Steps are then
    # judged at the source resolution and the folding's chance level counts the phases such
    # steps can fall on; a grid needs 1/k of the step pixels (the stricter step tests leave
    # fewer of JPEG's weak block edges). Both axes must show it (a mosaic whose grid lines
    # dominate one axis is not an upscale); without repetition (k = 1) nothing changes.
    kx, ky = repetition(gx, 1, prm), repetition(gy, 0, prm)
    if kx == 1 or ky == 1:
        kx = ky = 1
    sx = grid_steps(gx, 1, kx, ky, prm)
    sy = grid_steps(gy, 0, ky, kx, prm)
    # Period 2 is folded too: an image upscaled 2x by pixel repetition that is not recognised
    # as one (too flat, or too lossy) is "periodic" at every even p, and must be recognised as
    # period 2 (below any mosaic block size), not as a mosaic.
    fold, periods, starts = fold_matrix(2, max_block, prm)
    px = tile_profiles(sx, 1, prm)
    py = tile_profiles(sy, 0, prm)
    nty, ntx = px.shape[:2]
    score_x, phase_x, on_x, second_x = periodicity(px, fold, periods, starts, kx, prm)
    score_y, phase_y, on_y, second_y = periodicity(py, fold, periods, starts, ky, prm)
    score = np.minimum(score_x, score_y)
    period_arr = np.asarray(periods)
    idx = np.arange(len(score))

    def near_multiples(tile_scores: np.ndarray, share: float = prm.near_best
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(best, near, pick) per tile: the best score, the multiples of the best period
        scoring ``share`` of it [n, P], and the index of the largest of them."""
        best = tile_scores.max(axis=1)
        best_p = period_arr[tile_scores.argmax(axis=1)]
        near = ((tile_scores >= share * best[:, None])
                & (period_arr[None, :] % best_p[:, None] == 0))
        return best, near, len(periods) - 1 - np.argmax(near[:, ::-1], axis=1)

    def periodic(tile_scores: np.ndarray, floor: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ok, ok_few, pick, near) per tile for per-period scores ``tile_scores`` [n, P],
        periodic from ``floor``. Divisors of the true period score the same as it after
        chance correction (noise may even favour them), so the best period may be a divisor:
        the largest multiple of it that scores near the best is picked (``near``: those
        multiples). Unrelated periods are not considered: with only 2-3 grid lines in a tile
        any large period puts them on distinct phases and scores ~1/3. ``ok_few``: the same
        with an axis whose own score is strong needing only ``strong_grid_pixels`` on-grid
        step pixels."""
        best, near, pick = near_multiples(tile_scores)
        scored = ((best >= floor) & (period_arr[pick] >= min_block)
                  & (tile_scores[idx, pick] >= floor))
        ok, ok_few = scored.copy(), scored.copy()
        for axis_score, on, k in ((score_x, on_x, kx), (score_y, on_y, ky)):
            on_pick = on[idx, pick]
            ok &= on_pick >= prm.min_grid_pixels // k
            ok_few &= on_pick >= np.where(axis_score[idx, pick] >= prm.strong_axis_score,
                                          prm.strong_grid_pixels, prm.min_grid_pixels) // k
        return ok, ok_few, pick, near

    def divisor(near_row: np.ndarray, j: int) -> int:
        """With ``divisor_option``, the index of the largest period below periods[j] (from
        ``min_block``) that ``near_row`` marks as scoring near the tile's best; else -1."""
        if not prm.divisor_option:
            return -1
        below = np.nonzero(near_row[:j] & (period_arr[:j] >= min_block))[0]
        return int(below[-1]) if len(below) else -1

    ok, ok_few, pick, near = periodic(score, prm.periodic_score)
    # Grids only tiles under the lower bars propose (a small patch among textures): their
    # picked period on its best phases, and the next smaller period that scores near the
    # best (a fallback, as below), tested after every other grid. Not JPEG's own
    # block lines: their steps are on every tile of a lossy image, where the lower bars
    # take them from tiles with no mosaic (a mosaic on them has tiles that pass the others).
    late: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    late_primary: set[tuple[int, int, int]] = set()

    def propose_late(t: int, j: int, near_row: np.ndarray, flat_x: np.ndarray,
                     flat_y: np.ndarray, ph_x: np.ndarray, ph_y: np.ndarray,
                     one_line: int = 0) -> None:
        """Tile ``t``'s late grids: period index ``j`` and its divisor, on the phases
        ``ph_x``/``ph_y`` [n, P] of the step profiles ``flat_x``/``flat_y`` [n, TILE];
        ``one_line``: one grid line on an axis suffices when the other has this many (0:
        two on each)."""
        ty, tx = divmod(t, ntx)
        options = [j]
        # (with two grid lines per axis, twice the period scores as well)
        div_j = divisor(near_row, j)
        if div_j >= 0:
            options.append(div_j)
        for jj in options:
            p = periods[jj]
            # ... with steps on two grid lines per axis at least: one straight edge (a
            # box's corner) is "periodic" at every period
            lines = sorted(np.count_nonzero(f[t, ph[t, jj]::p] >= prm.late_line_pixels)
                           for f, ph in ((flat_x, ph_x), (flat_y, ph_y)))
            if lines[0] < 2 and not (one_line and lines[0] == 1 and lines[1] >= one_line):
                continue
            key = (p, int(ph_x[t, jj] + tx * prm.stride) % p,
                   int(ph_y[t, jj] + ty * prm.stride) % p)
            if not on_jpeg_lines(*key):
                late.setdefault(key, []).append((ty, tx))
                if jj == j:
                    late_primary.add(key)

    if (prm.strong_grid_pixels < prm.min_grid_pixels
            or prm.other_axis_score < prm.periodic_score):
        # one strong axis lowers the other's bar
        one_axis = np.where(np.maximum(score_x, score_y) >= prm.one_axis_score, score, -1.0)
        _, ok_one, pick_one, near_one = periodic(one_axis, prm.other_axis_score)
        flat_x, flat_y = px.reshape(-1, prm.tile), py.reshape(-1, prm.tile)
        for t in np.nonzero((ok_few | ok_one) & ~ok)[0]:
            j = int(pick[t] if ok_few[t] else pick_one[t])
            propose_late(int(t), j, near[t] if ok_few[t] else near_one[t], flat_x, flat_y,
                         phase_x, phase_y)
    if prm.long_step_pixels:
        # Tiles folded on their long steps only: over a dot screen the screen vanishes and
        # a small patch's grid scores as if alone.
        lpx = tile_profiles(long_steps(sx, 1, ky, prm), 1, prm)
        lpy = tile_profiles(long_steps(sy, 0, kx, prm), 0, prm)
        lsc_x, lph_x, lon_x, _ = periodicity(lpx, fold, periods, starts, kx, prm, runners=False)
        lsc_y, lph_y, lon_y, _ = periodicity(lpy, fold, periods, starts, ky, prm, runners=False)
        lscore = np.minimum(lsc_x, lsc_y)
        _, lnear, lpick = near_multiples(lscore, prm.long_step_near_best)
        # (A best period under ``long_step_min_p`` is a divisor of the grid's, which scores
        # as well after chance correction: there the usual share picks its multiple.)
        min_p = max(prm.long_step_min_p, min_block)
        small = period_arr[lpick] < min_p
        if small.any() and prm.long_step_near_best != prm.near_best:
            _, unear, upick = near_multiples(lscore, prm.near_best)
            lnear = np.where(small[:, None], unear, lnear)
            lpick = np.where(small, upick, lpick)
        good = ((period_arr[lpick] >= min_p)
                & (lsc_x[idx, lpick] >= prm.long_step_score)
                & (lsc_y[idx, lpick] >= prm.long_step_score)
                & (lon_x[idx, lpick] >= prm.long_step_pixels // kx)
                & (lon_y[idx, lpick] >= prm.long_step_pixels // ky))
        lflat_x, lflat_y = lpx.reshape(-1, prm.tile), lpy.reshape(-1, prm.tile)
        usual_late = set(late)
        for t in np.nonzero(good)[0]:
            propose_late(int(t), int(lpick[t]), lnear[t], lflat_x, lflat_y, lph_x, lph_y,
                         prm.long_step_one_line)
        long_only = set(late) - usual_late
    else:
        long_only = set()
    grids: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    runners: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    primary: set[tuple[int, int, int]] = set()
    for t in np.nonzero(ok)[0]:
        ty, tx = divmod(int(t), ntx)
        # With 2-3 (JPEG-blurred) grid lines per tile a period one off scores about as well;
        # let the cell tests choose between neighbouring periods.
        options = [int(pick[t])]
        # The largest multiple may be a coincidence of two grid lines per tile (after JPEG
        # few lines survive): the next smaller period that scores near the best is tested
        # too (on lossy input only, see ``CandidateGrid.fallback``).
        div_j = divisor(near[t], int(pick[t]))
        if div_j >= 0:
            options.append(div_j)
        for j in (int(pick[t]) - 1, int(pick[t]) + 1):
            if (0 <= j < len(periods) and periods[j] >= min_block
                    and score[t, j] >= prm.neighbour_score * score[t, pick[t]]):
                options.append(j)
        for j in options:
            p = periods[j]
            # A straight patch border (as long as the tile) can outvote a grid line of big
            # blocks: the runner-up phase is a candidate too.
            for ph_x in (int(phase_x[t, j]), int(second_x[t, j])):
                for ph_y in (int(phase_y[t, j]), int(second_y[t, j])):
                    if ph_x < 0 or ph_y < 0:
                        continue
                    fx = (ph_x + tx * prm.stride) % p
                    fy = (ph_y + ty * prm.stride) % p
                    runner = ph_x != int(phase_x[t, j]) or ph_y != int(phase_y[t, j])
                    (runners if runner else grids).setdefault((p, fx, fy), []).append((ty, tx))
                    if j != div_j:
                        primary.add((p, fx, fy))
    # Grids that are only some tile's runner-up (not also another tile's best) are tested
    # after the others and are not completed over flat cells: next to a patch found on its
    # true grid, the one its border suggests took the flat fills beside it.
    order = [CandidateGrid(*key, tiles, False, key not in primary) for key, tiles in grids.items()]
    order += [CandidateGrid(*key, tiles, True, key not in primary) for key, tiles in runners.items()
              if key not in grids]
    # (A late divisor whose multiple on the same lines is a grid above is not tested: the
    # region is that grid's, and the divisor's cells took the flat fills around it.)
    order += [CandidateGrid(*key, tiles, False, key not in late_primary,
                            long_step=key in long_only)
              for key, tiles in late.items() if key not in grids and key not in runners
              and (key in late_primary or not _divides_any(key, grids))]
    return order, kx


def _divides_any(key: tuple[int, int, int], grids: Iterable[tuple[int, int, int]]) -> bool:
    """Whether some grid of ``grids`` (period, phases) has a multiple of ``key``'s period
    and lies on its lines."""
    p, fx, fy = key
    return any(q % p == 0 and gx % p == fx and gy % p == fy for q, gx, gy in grids)
