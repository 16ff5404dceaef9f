"""Mosaics rescaled after pixelation, modelled: a linear resampling filter turns the block
image into a sum of its step responses.

A downscale by a factor f (Pillow's bilinear, bicubic and Lanczos filters, OpenCV's area
filter) is linear and separable, and its kernel, measured in output pixels, does not depend
on f. A row of blocks with values v_j and edges at e_j = phase + j * period therefore
becomes, at pixel x,

    row[x] = sum_j v_j * (S(x + 0.5 - e_j) - S(x + 0.5 - e_{j+1}))

with S the filter's step response (the integral of its kernel): a matrix A [pixels, cells]
per axis, and the image over a mosaic is ``A_y V A_x^T`` for the block values V. Given a
grid, V is a least-squares fit (a separable pseudo-inverse) and what the fit leaves is the
test: over a mosaic the residual is rounding (plus the small difference between Pillow's
sampled kernel and its integral), over texture, shading and the art's own edges it is not;
the grid's period and phase are refined by the same residual. The pixels between cells, blurred
over 1-6 px, need no rule of their own, and blocks smaller than the filter's reach (4.5 px
after Lanczos) are modelled like large ones.
"""

from __future__ import annotations

import math

import numpy as np

from deepcream.mosaic.params import DEFAULT_PARAMS, MosaicParams


def _kernel(name: str, x: np.ndarray) -> np.ndarray:
    """Pillow's resampling kernels (in output pixels for a downscale), and the area filter's
    box."""
    x = np.abs(x)
    if name == "area":
        return (x < 0.5).astype(np.float64)
    if name == "bilinear":
        return np.maximum(0.0, 1.0 - x)
    if name == "bicubic":  # Pillow's a = -0.5
        a = -0.5
        return np.where(x < 1, (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1,
                        np.where(x < 2, a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a, 0.0))
    if name == "lanczos":
        return np.where(x < 3, np.sinc(x) * np.sinc(x / 3), 0.0)
    raise ValueError(name)


FILTERS = ("area", "bilinear", "bicubic", "lanczos")
_REACH = {"area": 0.5, "bilinear": 1.0, "bicubic": 2.0, "lanczos": 3.0}
_T_SPAN = 3.5  # the step responses are tabulated over +-_T_SPAN px (0 and 1 beyond)
_T = np.arange(-_T_SPAN, _T_SPAN, 1 / 256) + 1 / 512


def _response(name: str) -> np.ndarray:
    s = np.cumsum(_kernel(name, _T))
    return s / s[-1]


_S = {name: _response(name) for name in FILTERS}


def step_response(name: str, t: np.ndarray) -> np.ndarray:
    """Share of the way from the left block's value to the right one's at offset t (pixel
    centre minus edge, output pixels)."""
    if name == "area":  # (the box's integral, in closed form: the search fits it most)
        return np.clip(t + 0.5, 0.0, 1.0)
    return np.interp(t, _T, _S[name], left=0.0, right=1.0)


def cell_matrix(start: int, n: int, period: float, phase: float, name: str
                ) -> tuple[np.ndarray, int]:
    """(A [n, m], k0): the weight of cell k0 + j (edges phase + k * period) in pixel
    start + i, for the cells that reach pixels start..start+n-1 through the filter."""
    reach = _REACH[name] + 0.5
    k0 = math.floor((start - reach - phase) / period)
    k1 = math.floor((start + n + reach - phase) / period)
    edges = phase + np.arange(k0, k1 + 2) * period
    centres = start + np.arange(n) + 0.5
    s = step_response(name, centres[:, None] - edges[None, :])  # [n, m + 1]
    return s[:, :-1] - s[:, 1:], k0


def _pinv(a: np.ndarray) -> np.ndarray:
    """Least-squares solver of a [n, m] (n >= m): (a^T a + eps)^-1 a^T; cells that barely
    reach the pixels are held near 0 by the small ridge rather than left free."""
    g = a.T @ a
    g[np.diag_indices_from(g)] += 1e-4
    return np.linalg.solve(g, a.T)


def fit_cells(planes: np.ndarray, box: tuple[int, int, int, int], period: tuple[float, float],
              phase: tuple[float, float], name: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Least-squares block values of ``planes`` [h, w, C] (float, the box's pixels) and the
    model's residual [h, w, C], for the grid (period, phase per axis x, y) and filter."""
    x0, y0, x1, y1 = box
    ax, kx = cell_matrix(x0, x1 - x0, period[0], phase[0], name)
    ay, ky = cell_matrix(y0, y1 - y0, period[1], phase[1], name)
    px, py = _pinv(ax), _pinv(ay)
    values = np.einsum("ij,jkc,lk->ilc", py, planes, px, optimize=True)
    model = np.einsum("ij,jkc,lk->ilc", ay, values, ax, optimize=True)
    return values, planes - model, ky, kx


def line_score(lines: np.ndarray, start: int, period: float, phase: float, name: str,
               active: np.ndarray, tol: float) -> float:
    """Share of the ``active`` pixels (near a step) of ``lines`` [r, n] (float, pixels
    start..) that one row of blocks on this grid explains within ``tol``. A row of an image
    rescaled separably is such a row whatever the other axis did."""
    a, _ = cell_matrix(start, lines.shape[1], period, phase, name)
    res = np.abs(lines - (lines @ _pinv(a).T) @ a.T)
    return float(np.count_nonzero((res <= tol) & active)) / max(1, int(np.count_nonzero(active)))


def active_pixels(lines: np.ndarray, step: float = 3.0) -> np.ndarray:
    """Pixels within 2 px of a step of at least ``step`` along the lines (flat runs fit any
    grid)."""
    d = np.zeros(lines.shape, bool)
    big = np.abs(np.diff(lines, axis=1)) >= step
    for s in range(-1, 3):
        lo, hi = max(0, s), min(lines.shape[1], lines.shape[1] - 1 + s)
        d[:, lo:hi] |= big[:, lo - s:hi - s]
    return d


def cell_matrices(start: int, n: int, grids: list[tuple[float, float]], name: str) -> np.ndarray:
    """``cell_matrix`` of each (period, phase) of ``grids`` at once, zero-padded to the most
    cells: [K, n, m]. The step response is 0 or 1 beyond +-3.5 px of an edge, so it is
    interpolated only over a band of edges around each pixel (the same values as over all
    of them)."""
    reach = _REACH[name] + 0.5
    periods = np.array([p for p, _ in grids], np.float64)[:, None, None]
    phases = np.array([f for _, f in grids], np.float64)[:, None, None]
    k0 = np.floor((start - reach - phases) / periods)
    k1 = np.floor((start + n + reach - phases) / periods)
    m = int((k1 - k0).max()) + 1
    centres = (start + np.arange(n) + 0.5)[None, :, None]
    # Edges j (phase + (k0 + j) * period) from one period left of the band on, through one
    # period right of it: every edge left of them is over 3.5 px left of the pixel (s = 1),
    # every one right of them over 3.5 px right (s = 0); a[j] = s[j] - s[j + 1] is 0 but
    # from edge lo - 1 to the band's end.
    lo = np.floor((centres - _T_SPAN - phases) / periods) - k0 - 1  # [K, n, 1]
    band = lo + np.arange(int(2 * _T_SPAN / periods.min()) + 4)  # [K, n, B]
    s = np.zeros(band.shape[:2] + (band.shape[2] + 2,))
    s[:, :, 0] = 1.0
    s[:, :, 1:-1] = step_response(name, centres - (phases + (k0 + band) * periods))
    cols = np.concatenate([lo - 1, band], axis=2)  # the columns of a those differences are
    a = np.zeros((len(grids), n, m))
    valid = (cols >= 0) & (cols < m)
    kk, ii, _ = np.nonzero(valid)
    a[kk, ii, cols[valid].astype(np.int64)] = (s[:, :, :-1] - s[:, :, 1:])[valid]
    return a


def line_scores(lines: np.ndarray, start: int, grids: list[tuple[float, float]], name: str,
                active: np.ndarray, tol: float) -> np.ndarray:
    """``line_score`` for each (period, phase) of ``grids`` at once (one batched solve: the
    fits are small, their count is what costs)."""
    a = cell_matrices(start, lines.shape[1], grids, name)
    m = a.shape[2]
    at = np.ascontiguousarray(np.transpose(a, (0, 2, 1)))
    g = at @ a  # [K, m, m]
    g[:, np.arange(m), np.arange(m)] += 1e-4
    lt = np.ascontiguousarray(lines.T)
    fit = a @ np.linalg.solve(g, at @ lt)  # [K, n, r]
    ok = (np.abs(lt[None] - fit) <= tol) & active.T[None]
    return np.count_nonzero(ok, axis=(1, 2)) / max(1, int(np.count_nonzero(active)))


def refine_axis(lines: np.ndarray, start: int, period: float, phase: float, name: str,
                passes: tuple[tuple[float, float, int, float, int], ...], active: np.ndarray
                ) -> tuple[float, float, float]:
    """(period, phase, score) maximising ``line_score`` around the given grid, in passes of
    (tolerance, relative period span, steps, phase span in px, steps) of shrinking steps and
    tolerance (a loose tolerance first: a tight one's score falls off within 0.2% of the
    period over a few hundred pixels). ``active``: ``active_pixels(lines)``."""
    # (The period is varied about the edge nearest the lines' middle, which stays put.)
    centre = start + lines.shape[1] / 2
    anchor = phase + round((centre - phase) / period) * period
    score = 0.0
    for tol, span_p, n_p, span_a, n_a in passes:
        cands = [(period * (1 + dp), anchor + da) for dp in np.linspace(-span_p, span_p, n_p)
                 for da in np.linspace(-span_a, span_a, n_a)]
        scores = line_scores(lines, start, [(p, a % p) for p, a in cands], name, active, tol)
        best = int(np.argmax(scores))
        score = float(scores[best])
        period, anchor = cands[best]
    return period, anchor % period, score


class FloatLuma:
    """The float luma (0.299 R + 0.587 G + 0.114 B) of an image, computed for the pixels
    read (``luma[rows, x0:x1]``): the block model fits a few dozen rows and columns, not
    the image."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.shape = rgb.shape[:2]

    def __getitem__(self, index: object) -> np.ndarray:
        px = self.rgb[index].astype(np.float32)
        if px.ndim == self.rgb.ndim == 3:
            return px[..., 0] * np.float32(0.299) + px[..., 1] * np.float32(0.587) + px[..., 2] * np.float32(0.114)
        return px


def refine_grid(luma: np.ndarray | FloatLuma, tiles: tuple[tuple[int, int], ...], core: tuple[int, int, int, int],
                period: tuple[float, float], phase: tuple[float, float],
                prm: MosaicParams = DEFAULT_PARAMS, filters: tuple[str, ...] = FILTERS[1:],
                seek: bool = False) -> tuple[tuple[float, float], tuple[float, float], str, float] | None:
    """(periods, phases, filter, score: the smaller axis' share of explained step pixels)
    of a grid found near (period, phase), or None when the model explains too little on its
    seed tile (one of ``tiles``, x0, y0 each, best comb first): there in coarse passes
    with a bicubic model, then the blurring filter that explains the most, then fine passes
    over up to ``resampled_reach`` px of ``core`` around the seed (a period 0.1% off drifts
    0.3 px over 300 px). Lines: rows (columns) spread evenly over a box; ``luma`` float.
    ``filters``: the models to choose from (the first for the seed and coarse passes when
    bicubic is not among them); with the area filter alone, the grid of step 7's blends,
    refined where its seed tile is rather than over every tile that combed alike.
    ``seek``: the coarse passes (a wider one first) run on each seed tile before its test,
    for a grid only roughly known."""
    tol = prm.resampled_tol
    first = "bicubic" if "bicubic" in filters else filters[0]
    h, w = luma.shape[:2]

    def lines_of(box: tuple[int, int, int, int], n: int = prm.resampled_lines
                 ) -> tuple[list[np.ndarray], tuple[int, int], list[np.ndarray]]:
        """(rows and columns of the box, their starts, their ``active_pixels``)"""
        x0, y0, x1, y1 = box
        rows = np.unique(np.linspace(y0, y1 - 1, n).astype(np.int64))
        cols = np.unique(np.linspace(x0, x1 - 1, n).astype(np.int64))
        lines = [luma[rows, x0:x1], luma[y0:y1, cols].T]
        return lines, (x0, y0), [active_pixels(line) for line in lines]

    def gain(lines: list[np.ndarray], starts: tuple[int, int], active: list[np.ndarray],
             per: list[float], ph: list[float], name: str, tol: float) -> float:
        """How much better the grid explains the lines than itself shifted by half a
        period: smooth content fits any grid about as well."""
        return min(line_score(lines[ax], starts[ax], per[ax], ph[ax], name, active[ax], tol)
                   - line_score(lines[ax], starts[ax], per[ax], (ph[ax] + per[ax] / 2) % per[ax], name,
                                active[ax], tol) for ax in (0, 1))

    coarse = ((4 * tol, prm.frac_agree / 5, 11, 0.5, 7), (1.5 * tol, prm.frac_agree / 25, 5, 0.1, 5))
    if seek:
        # (Wider: a small mosaic's period from combs summed with the art around it.)
        coarse = ((4 * tol, prm.frac_agree / 2.5, 11, 1.0, 7), *coarse)
    per, ph = list(period), list(phase)
    scores = [0.0, 0.0]
    # The seed: the first of the best-combing tiles where the grid as combed already
    # explains the steps (the art beside a small mosaic combs too); with ``seek``, where
    # the grid after the coarse passes on that tile does.
    for x, y in tiles[:prm.resampled_seeds]:
        lines, starts, active = lines_of((x, y, min(w, x + prm.tile), min(h, y + prm.tile)),
                                         prm.frac_local_lines if seek else prm.resampled_lines)
        if seek:
            per, ph = list(period), list(phase)
            for ax in (0, 1):
                per[ax], ph[ax], scores[ax] = refine_axis(lines[ax], starts[ax], per[ax], ph[ax], first,
                                                          coarse, active[ax])
            if gain(lines, starts, active, per, ph, first, 1.5 * tol) >= prm.resampled_seed_gain:
                break
        elif (gain(lines, starts, active, list(period), list(phase), first, 1.5 * tol)
              >= prm.resampled_seed_gain):
            for ax in (0, 1):
                per[ax], ph[ax], scores[ax] = refine_axis(lines[ax], starts[ax], per[ax], ph[ax], first,
                                                          coarse, active[ax])
            break
    else:
        return None
    if gain(lines, starts, active, per, ph, first, 1.5 * tol) < prm.resampled_seed_score:
        return None

    def both(name: str) -> float:
        return min(line_score(lines[ax], starts[ax], per[ax], ph[ax], name, active[ax], tol)
                   for ax in (0, 1))

    # (Blurring filters only: steps an area filter blended are ``detect_fractional``'s, and
    # when the area model explains more the grid is left to it.)
    name = max(filters, key=both)
    if "area" not in filters and both("area") > both(name) + prm.resampled_area_margin:
        return None
    cx, cy = min(w, x + prm.tile // 2), min(h, y + prm.tile // 2)
    r = prm.resampled_reach // 2
    wide = (max(core[0], cx - r), max(core[1], cy - r), min(core[2], cx + r), min(core[3], cy + r))
    lines, starts, active = lines_of(wide)
    fine = ((1.5 * tol, prm.frac_agree / 10, 9, 0.15, 3), (tol, prm.frac_agree / 100, 3, 0.05, 3))
    for ax in (0, 1):
        per[ax], ph[ax], scores[ax] = refine_axis(lines[ax], starts[ax], per[ax], ph[ax], name, fine,
                                                  active[ax])
    return (per[0], per[1]), (ph[0], ph[1]), name, min(scores)


def explained_cells(rgb: np.ndarray, box: tuple[int, int, int, int], period: tuple[float, float],
                    phase: tuple[float, float], name: str, prm: MosaicParams = DEFAULT_PARAMS
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """(block colors uint8 [m_y, m_x, 3], explained bool [m_y, m_x], the largest luma step
    to a left or right and to an upper or lower neighbour [2, m_y, m_x], k0_y, k0_x) of the
    grid's cells over ``box`` of ``rgb``: a cell is explained when the model leaves at most
    ``resampled_tol`` levels plus ``resampled_rel`` of the step to its neighbours on every
    pixel whose centre it holds (luma)."""
    x0, y0, x1, y1 = box
    planes = rgb[y0:y1, x0:x1].astype(np.float64)
    if planes.ndim == 2:
        planes = planes[:, :, None]
    values, res, ky, kx = fit_cells(planes, box, period, phase, name)
    wts = np.array([0.299, 0.587, 0.114]) if planes.shape[2] == 3 else np.ones(1)
    res_l = np.abs(res @ wts)
    val_l = values @ wts
    my, mx = val_l.shape
    cy = np.floor((y0 + np.arange(y1 - y0) + 0.5 - phase[1]) / period[1]).astype(np.int64) - ky
    cx = np.floor((x0 + np.arange(x1 - x0) + 0.5 - phase[0]) / period[0]).astype(np.int64) - kx
    worst = np.zeros((my, mx))
    np.maximum.at(worst, (cy[:, None], cx[None, :]), res_l)
    pad = np.pad(val_l, 1, mode="edge")
    across_y = np.maximum(np.abs(pad[:-2, 1:-1] - val_l), np.abs(pad[2:, 1:-1] - val_l))
    across_x = np.maximum(np.abs(pad[1:-1, :-2] - val_l), np.abs(pad[1:-1, 2:] - val_l))
    contrast = np.maximum(across_x, across_y)
    covered = np.zeros((my, mx), bool)
    covered[np.ix_(np.unique(cy), np.unique(cx))] = True
    ok = covered & (worst <= prm.resampled_tol + prm.resampled_rel * contrast)
    colors = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    if colors.shape[2] == 1:
        colors = np.repeat(colors, 3, axis=2)
    return colors, ok, np.stack([across_x, across_y]), ky, kx
