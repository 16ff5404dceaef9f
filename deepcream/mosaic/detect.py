"""The detector: candidate grids, cell tests, regions and borders, per grid."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache, partial

import cv2
import numpy as np
from scipy import ndimage
from threadpoolctl import threadpool_limits

from deepcream.mosaic.border import exact_block_pixels, lossy_block_pixels, partial_blocks
from deepcream.mosaic.cells import Grid, cell_pixels
from deepcream.mosaic.erased import FlatAreas, erased_texture, flat_areas, flat_areas_in_texture
from deepcream.mosaic.fractional import (
    FractionalGrid,
    blend_residuals,
    blurred_grids,
    cell_columns,
    cut_pixels,
    cut_share,
    edge_steps,
    fractional_grids,
    is_divisor,
)
from deepcream.mosaic.islands import one_color_whole_cells, smooth_islands
from deepcream.mosaic.params import DEFAULT_PARAMS, MosaicParams
from deepcream.mosaic.period import CandidateGrid, candidate_grids, jpeg_period, on_jpeg_lines
from deepcream.mosaic.regions import (
    clean_cells,
    clip_to_evidence,
    complete_cells,
    join_block_groups,
)
from deepcream.mosaic.resampled import FloatLuma, explained_cells, refine_grid


def check_input(rgb: np.ndarray, prm: MosaicParams) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim not in (2, 3):
        raise ValueError("detect_mosaic expects a uint8 [H, W, 3] or [H, W] array")
    if rgb.ndim == 3 and rgb.shape[2] != 3:
        raise ValueError(f"detect_mosaic expects 3 channels, got {rgb.shape[2]}")
    if not 2 <= prm.min_block <= prm.max_block <= prm.tile // 2:
        raise ValueError(f"block sizes must satisfy 2 <= min <= max <= {prm.tile // 2}")


def image_luma(rgb: np.ndarray) -> np.ndarray:
    """The luma the grids are found on: JPEG subsamples chroma 2x, whose blur puts color
    steps on even columns everywhere; luma keeps full resolution."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def grid_detections(rgb: np.ndarray, luma: np.ndarray, prm: MosaicParams = DEFAULT_PARAMS,
                    lossless: Callable[[], bool] | None = None
                    ) -> Iterator[tuple[CandidateGrid, Grid, np.ndarray]]:
    """Per candidate grid that holds a region: (the candidate, its cells, the pixel mask of
    its regions over the grid's crop; ``Grid.paste`` puts it into an image-sized mask).
    ``luma``: ``image_luma(rgb)``; ``lossless``: the caller's ``lossless_once`` of the
    image, if it has one."""
    # Over 80 lines on purpose: one pass per candidate grid whose steps (cells, growth,
    # borders, completion) read and narrow the same per-grid arrays; the comments mark them.
    h, w = rgb.shape[:2]
    if h < 4 * prm.min_block or w < 4 * prm.min_block:
        return
    # (Both non-integer searches weigh the same pixel differences.)
    steps = edge_steps(luma) if prm.fractional else None
    # The non-integer and island searches do not depend on what the integer search finds
    # (the resampled regions are compared with what the others found only at the end):
    # with ``parallel`` they run in two more threads beside it. (They need a grid that is
    # not a pixel-repeated upscale, kx == 1, which only the integer search tells: they
    # start on the likely case and are dropped otherwise.)
    # (Whether the image looks lossless: asked by a grid whose box cannot tell and by the
    # island search, computed once for both.)
    lossless_image = lossless or lossless_once(rgb, luma, prm)
    searches = [fractional_detections] if prm.fractional else []
    searches += [resampled_detections] if prm.fractional and prm.resampled else []
    searches += [partial(island_detections, lossless=lossless_image)] if prm.islands else []
    with ThreadPoolExecutor(max_workers=2) if prm.parallel else nullcontext() as pool:
        side = [pool.submit(f, rgb, luma, prm, steps) for f in searches] if pool is not None else None
        order, kx = candidate_grids(luma, prm.min_block, prm.max_block, prm)
        so_far = np.zeros((h, w), bool)  # what the grids before the resampled ones found
        # (Each candidate's cells are tested on their own: in the workers too, after the
        # other searches, so that neither thread idles.)
        def test(cand: CandidateGrid) -> tuple[Grid, np.ndarray] | None:
            return detect_on_grid(rgb, cand.p, cand.fx, cand.fy, candidate_box(cand, h, w, prm),
                                  runner=cand.runner, fallback=cand.fallback, repeated=kx != 1,
                                  lossless_image=lossless_image, prm=prm)

        # (Executor.map submits every candidate at once and yields the results in order.)
        results = pool.map(test, order) if pool is not None else map(test, order)
        for cand, found in zip(order, results, strict=True):
            if found is not None:
                yield (cand, *found)
                # (Not a long-step grid's: its region may be a blurred rescale's, found on
                # the nearest integer multiple of its period.)
                if prm.fractional and prm.resampled and not (cand.long_step and prm.long_step_defer):
                    found[0].paste(so_far, found[1])
        if kx != 1:
            return
        for i, search in enumerate(searches):
            placed = side[i].result() if side is not None else search(rgb, luma, prm, steps)
            if search is resampled_detections:
                yield from not_found_before(placed, so_far, prm)
                continue
            yield from placed
            if search is fractional_detections:
                for _cand, place, mask in placed:
                    place.paste(so_far, mask)


def candidate_box(cand: CandidateGrid, h: int, w: int, prm: MosaicParams) -> tuple[int, int, int, int]:
    """The box whose cells are tested for a candidate grid: well beyond the tiles that found
    it, since neighbouring tiles of the same mosaic may have settled on another phase (a
    straight patch edge can outvote a grid line there), and the cell tests decide anyway."""
    tys = [t[0] for t in cand.tiles]
    txs = [t[1] for t in cand.tiles]
    grow = prm.box_margin + cand.p
    return (max(0, min(txs) * prm.stride - grow), max(0, min(tys) * prm.stride - grow),
            min(w, max(txs) * prm.stride + prm.tile + grow), min(h, max(tys) * prm.stride + prm.tile + grow))


def fractional_detections(rgb: np.ndarray, luma: np.ndarray, prm: MosaicParams,
                          steps: tuple[np.ndarray, ...] | None
                          ) -> list[tuple[CandidateGrid, BoxPlacement, np.ndarray]]:
    """The regions of the non-integer grids of area-filtered rescales (``fractional.py``).
    ``steps``: ``fractional.edge_steps(luma)`` if already computed."""
    grids = fractional_grids(luma, prm, steps)
    # A grid at a 2 or 3 x smaller period than another is left to that one, whose blocks it
    # also cuts, unless that one finds nothing (``frac_divisor_tested``): the beat of 7 px
    # blocks averaging a dot screen combs at 3 x their 5.25 px period after 0.75 x.
    coarser = [[j for j, other in enumerate(grids) if is_divisor(g, other)] for g in grids]
    results = {i: detect_fractional(rgb, luma, g, prm) for i, g in enumerate(grids) if not coarser[i]}
    for i, g in enumerate(grids):
        if (prm.frac_divisor_tested and coarser[i]
                and all(results.get(j) is None for j in coarser[i])):
            results[i] = detect_fractional(rgb, luma, g, prm)
    return [results[i] for i in sorted(results) if results[i] is not None]


def island_detections(rgb: np.ndarray, luma: np.ndarray, prm: MosaicParams,
                      steps: object = None, *, lossless: Callable[[], bool] | None = None
                      ) -> list[tuple[CandidateGrid, BoxPlacement, np.ndarray]]:
    """The smooth islands that are mosaics (``islands.py``), as ``grid_detections`` yields
    regions. (``steps``: unused; the searches share a signature.) ``lossless``: the
    caller's ``lossless_once`` of the image, if it has one."""
    out = []
    lossless = lossless or lossless_once(rgb, luma, prm)
    for p, fx, fy, box, mask, period in smooth_islands(rgb, luma, prm, lossless):
        if period == p and prm.exclusive_rings > 0:
            box, mask = grow_island(rgb, p, fx, fy, box, mask, prm)
        out.append((CandidateGrid(p, fx, fy, [], False, period=round(period, 2) if period != p else None),
                    BoxPlacement(box), mask))
    return out


def grow_island(rgb: np.ndarray, p: int, fx: int, fy: int, box: tuple[int, int, int, int],
                mask: np.ndarray, prm: MosaicParams = DEFAULT_PARAMS
                ) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """(box, mask over it) of a smooth island on the integer grid (p, fx, fy) grown over the
    cells around it that are exactly constant in exclusive colors (``Grid.grow_exclusive``):
    the island is the part of a patch over the flattened texture, and its blocks over an
    outline or another fill beside it are blocks of their own colors."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    r = (prm.exclusive_rings + 1) * p
    big = (max(0, x0 - r), max(0, y0 - r), min(w, x1 + r), min(h, y1 + r))
    grid = Grid(rgb, p, fx, fy, big, prm=prm)
    full = np.zeros((h, w), bool)
    full[y0:y1, x0:x1] = mask
    win = grid.window(np.zeros((grid.ncy * p, grid.ncx * p), bool))
    if win is None:
        return box, mask
    pix = np.zeros((grid.ncy * p, grid.ncx * p), bool)
    pix[win[1]] = full[win[0]]
    # The island's cells: those it covers for the most part (its border cells are partial).
    cells = pix.reshape(grid.ncy, p, grid.ncx, p).mean(axis=(1, 3)) >= 0.5
    # Lossless input only (most of the island's cells exactly constant blocks).
    if np.count_nonzero(grid.constant_cells(cells)) < prm.exact_share * np.count_nonzero(cells):
        return box, mask
    grown = grid.grow_exclusive(cells, prm.exclusive_rings)
    if not (grown & ~cells).any():
        return box, mask
    pix |= cell_pixels(grown & ~cells, p)
    full[win[0]] |= pix[win[1]]
    bx0, by0, bx1, by1 = big
    sub = full[by0:by1, bx0:bx1]
    return big, sub


def not_found_before(placed: list[tuple[CandidateGrid, BoxPlacement, np.ndarray]], found: np.ndarray,
                     prm: MosaicParams) -> Iterator[tuple[CandidateGrid, BoxPlacement, np.ndarray]]:
    """The resampled regions that do not overlap what the other grids ``found`` (a bool
    mask) by resampled_overlap of their area: those are left to the other grids, whose tests
    are made for sharp steps and area blends."""
    for cand, place, mask in placed:
        x0, y0, x1, y1 = place.box
        labels, n = ndimage.label(mask)
        area = np.bincount(labels.ravel(), minlength=n + 1)
        known = np.bincount(labels.ravel(), weights=found[y0:y1, x0:x1].ravel(), minlength=n + 1)
        keep = known < prm.resampled_overlap * area
        keep[0] = False
        kept = keep[labels]
        if kept.any():
            yield cand, place, kept


def resampled_detections(rgb: np.ndarray, luma: np.ndarray, prm: MosaicParams,
                         steps: tuple[np.ndarray, ...] | None
                         ) -> list[tuple[CandidateGrid, BoxPlacement, np.ndarray]]:
    """The regions of non-integer grids whose steps a bicubic or Lanczos rescale blurred
    (``resampled.py``), tested best comb first, at most ``resampled_max_grids``.
    ``steps``: ``fractional.edge_steps(luma)`` if already computed."""
    lumaf = FloatLuma(rgb)
    out = []
    tested = 0
    # (Thousands of least-squares fits of a few dozen unknowns: BLAS threads only add
    # their start-up and, on a busy machine, their waits.)
    with threadpool_limits(limits=1, user_api="blas"):
        for fg in blurred_grids(luma, prm, steps):
            # Integer periods are the integer search's (a blur of a pixel or two leaves
            # their cells flat enough); JPEG's own 8 x 8 blocks comb at about 8 px (the
            # model is for lossless input).
            if all(abs(v - round(v)) <= prm.resampled_integer or abs(v - 8) <= prm.resampled_jpeg_period
                   for v in (fg.period_x, fg.period_y)):
                continue
            if tested >= prm.resampled_max_grids:
                break
            tested += 1
            placed = detect_resampled(rgb, lumaf, fg, prm)
            if placed is not None:
                out.append(placed)
    return out


class BoxPlacement:
    """Where a pixel mask over a box of the image goes (the ``Grid.window`` / ``paste`` of a
    fractional grid, whose cells live on a resampled image)."""

    def __init__(self, box: tuple[int, int, int, int]) -> None:
        self.box = box

    def window(self, pixels: np.ndarray) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
        x0, y0, x1, y1 = self.box
        return (slice(y0, y1), slice(x0, x1)), (slice(0, y1 - y0), slice(0, x1 - x0))

    def paste(self, result: np.ndarray, pixels: np.ndarray) -> None:
        img_sl, pix_sl = self.window(pixels)
        result[img_sl] |= pixels[pix_sl]


def detect_fractional(rgb: np.ndarray, luma: np.ndarray, fg: FractionalGrid,
                      prm: MosaicParams = DEFAULT_PARAMS
                      ) -> tuple[CandidateGrid, BoxPlacement, np.ndarray] | None:
    """The regions of a non-integer grid over its box: the pixels wholly inside each cell
    (the same count q per cell) make an image with a q-px grid, tested as any integer grid;
    its mask comes back to every pixel of the box (see ``fractional.cell_columns``).
    ``luma``: the image's luma, which the blend test reads."""
    x0, y0, x1, y1 = fg.box
    tol = prm.frac_edge_tol
    _, qx, _ = cell_columns(x0, x1, fg.period_x, fg.phase_x, tol)
    _, qy, _ = cell_columns(y0, y1, fg.period_y, fg.phase_y, tol)
    q = min(qx, qy)
    if q < prm.min_block:
        return None
    cols, _, col_of = cell_columns(x0, x1, fg.period_x, fg.phase_x, tol, q)
    rows, _, row_of = cell_columns(y0, y1, fg.period_y, fg.phase_y, tol, q)
    h, w = rgb.shape[:2]
    sub = rgb[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)]
    # Lossless input only: after JPEG the blend test (below) passed smooth areas and textures
    # of clean pages.
    found = detect_on_grid(np.ascontiguousarray(sub), q, 0, 0, (0, 0, len(cols), len(rows)),
                           exact_only=prm.frac_lossless_only, prm=prm)
    if found is None:
        return None
    grid, pixels = found
    mask = np.zeros((len(rows), len(cols)), bool)
    grid.paste(mask, pixels)
    if not mask.any():
        return None
    mask = mask[row_of][:, col_of]
    # Each region must show the blends that the grid's cut pixels predict.
    res, step = blend_residuals(luma, fg, prm)
    period = min(fg.period_x, fg.period_y)
    # (Cut pixels per period of area, counted per edge that can blend one.)
    per_cut = period / max(prm.frac_cut_floor, cut_share(fg, prm)) if prm.frac_per_cut else period
    kept = _regions_that_blend(mask, res, step, per_cut, prm)
    if prm.frac_rescue_cells > 0 and (mask & ~kept).any():
        # A region that fails as a whole may be a mosaic grown over art the grid merely
        # combs: its part where the blends fit locally is judged again on its own.
        failed = mask & ~kept
        counted = step > 0
        failed &= ~_blends_misfit(failed & counted, res, step, period, prm)
        # (with the usual density even where the blends are exact: what a misfit cut
        # leaves of a spill over flat art is exact and sparse; and with frac_rescue_min cut
        # pixels: a few cells of a texture can fit by chance)
        rescued = _regions_that_blend(failed, res, step, per_cut, prm, sparse_if_exact=False,
                                      min_cut=prm.frac_rescue_min)
        kept |= rescued & _blend_on_both_axes(rescued, counted, fg, prm)
    mask = kept
    if not mask.any():
        return None
    p = max(1, round(fg.period_x))
    cand = CandidateGrid(p, int(round(fg.phase_x)) % p, int(round(fg.phase_y)) % p, [], False,
                         period=round(fg.period_x, 2))
    return cand, BoxPlacement(fg.box), mask


def _regions_that_blend(mask: np.ndarray, res: np.ndarray, step: np.ndarray, period: float,
                        prm: MosaicParams, sparse_if_exact: bool = True, min_cut: int = 0
                        ) -> np.ndarray:
    """The regions of ``mask`` (bool over a non-integer grid's box) whose cut pixels fit the
    blends the grid predicts (``res`` / ``step``: ``fractional.blend_residuals``), with at
    least frac_blend_min (and ``min_cut``) of them; ``sparse_if_exact``: exact blends need
    only ``frac_exact_density``."""
    labels, n = ndimage.label(mask)
    counted = step > 0
    tot_res = np.bincount(labels[counted], weights=res[counted], minlength=n + 1)
    tot_step = np.bincount(labels[counted], weights=step[counted], minlength=n + 1)
    cnt = np.bincount(labels[counted], minlength=n + 1)
    # ... and enough of them: about one cut pixel with a step per period of a row or column
    # across a mosaic; a smooth area completed over a few blending outlines has far fewer.
    area = np.bincount(labels.ravel(), minlength=n + 1)
    # (Fewer are enough where the blends are nearly exact: a rescaled mosaic over flat art.)
    exact = (tot_res <= prm.frac_exact_blend * tot_step) & sparse_if_exact
    density = np.where(exact, prm.frac_exact_density, prm.frac_region_density)
    keep = ((cnt >= max(prm.frac_blend_min, min_cut))
            & (tot_res <= prm.frac_region_blend * tot_step) & (cnt * period >= density * area))
    keep[0] = False
    return keep[labels]


def _blend_on_both_axes(mask: np.ndarray, counted: np.ndarray, fg: FractionalGrid,
                        prm: MosaicParams) -> np.ndarray:
    """The regions of ``mask`` whose ``counted`` cut pixels lie on the grid's columns and on
    its rows, at least frac_rescue_axis_share of them on each: a rescaled block grid steps
    across both, an outline along one axis blends on that axis's cuts alone."""
    x0, y0, x1, y1 = fg.box
    on_col = np.zeros(x1 - x0, bool)
    on_col[cut_pixels(x0, x1 - x0, fg.period_x, fg.phase_x, prm)[0]] = True
    on_row = np.zeros(y1 - y0, bool)
    on_row[cut_pixels(y0, y1 - y0, fg.period_y, fg.phase_y, prm)[0]] = True
    labels, n = ndimage.label(mask)
    pick = labels[counted]
    cols = np.bincount(pick, weights=np.broadcast_to(on_col[None, :], mask.shape)[counted],
                       minlength=n + 1)
    rows = np.bincount(pick, weights=np.broadcast_to(on_row[:, None], mask.shape)[counted],
                       minlength=n + 1)
    share = prm.frac_rescue_axis_share * (cols + rows)
    keep = (cols >= share) & (rows >= share)
    keep[0] = False
    return keep[labels]


def _blends_misfit(cut: np.ndarray, res: np.ndarray, step: np.ndarray, period: float,
                   prm: MosaicParams) -> np.ndarray:
    """bool over the box: where the cut pixels ``cut`` within frac_rescue_cells periods
    around misfit their predicted blends (residuals over frac_region_blend of their steps)."""
    k = max(3, int(round(prm.frac_rescue_cells * period)) | 1)
    total_res = cv2.boxFilter(np.where(cut, res, 0).astype(np.float32), -1, (k, k),
                              normalize=False, borderType=cv2.BORDER_CONSTANT)
    total_step = cv2.boxFilter(np.where(cut, step, 0).astype(np.float32), -1, (k, k),
                               normalize=False, borderType=cv2.BORDER_CONSTANT)
    return (total_step > 0) & (total_res > prm.frac_region_blend * total_step)


def detect_resampled(rgb: np.ndarray, luma: np.ndarray | FloatLuma, fg: FractionalGrid,
                     prm: MosaicParams = DEFAULT_PARAMS
                     ) -> tuple[CandidateGrid, BoxPlacement, np.ndarray] | None:
    """The regions of a grid found near ``fg`` whose blocks a resampling filter blurred
    (``resampled.py``): period and phase refined by the block model over the core box, then
    an image of q x q px per cell in which each cell the model explains is its fitted block
    color (exactly constant) and every other cell its own pixels, tested as an integer
    grid; its mask comes back to every pixel of the box. ``luma``: float luma of ``rgb``
    (``FloatLuma``)."""
    core = fg.core or fg.box
    fitted = refine_grid(luma, fg.tiles, core, (fg.period_x, fg.period_y),
                         (fg.phase_x, fg.phase_y), prm)
    if fitted is None or fitted[3] < prm.resampled_score:
        return None
    period, phase, name, _score = fitted
    # (The box is cut to resampled_box px around the core's centre: a grid combed over a
    # large photo spans it.)
    cx, cy = (core[0] + core[2]) // 2, (core[1] + core[3]) // 2
    r = prm.resampled_box // 2
    x0, y0, x1, y1 = fg.box
    box = (max(x0, cx - r), max(y0, cy - r), min(x1, cx + r), min(y1, cy + r))
    x0, y0, x1, y1 = box
    colors, ok, contrast, ky, kx = explained_cells(rgb, box, period, phase, name, prm)
    q = max(prm.min_block, min(prm.resampled_q, int(min(period))))
    cols, _, col_of = cell_columns(x0, x1, period[0], phase[0], -0.5, q)
    rows, _, row_of = cell_columns(y0, y1, period[1], phase[1], -0.5, q)
    h, w = rgb.shape[:2]
    rgb3 = rgb if rgb.ndim == 3 else np.repeat(rgb[:, :, None], 3, axis=2)
    sub = rgb3[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)].copy()
    # cells of the sub image -> cells of the fit
    ncy, ncx = len(rows) // q, len(cols) // q
    iy = math.floor((y0 + 0.5 - phase[1]) / period[1]) - ky + np.arange(ncy)
    ix = math.floor((x0 + 0.5 - phase[0]) / period[0]) - kx + np.arange(ncx)
    iy = np.clip(iy, 0, colors.shape[0] - 1)
    ix = np.clip(ix, 0, colors.shape[1] - 1)
    cell_ok = ok[np.ix_(iy, ix)]
    # A smooth gradient fits as blocks a few levels apart: cells that step by less than
    # resampled_min_step keep their own pixels unless flat.
    steps = contrast[:, iy][:, :, ix]  # [2 (across x, across y), ncy, ncx]
    near = steps.max(axis=0)
    filled = cell_ok & ((near >= prm.resampled_min_step) | (near <= prm.resampled_flat))
    blocks = cell_pixels(colors[np.ix_(iy, ix)], q)
    keep = cell_pixels(filled, q)
    sub[keep] = blocks[keep]
    found = detect_on_grid(np.ascontiguousarray(sub), q, 0, 0, (0, 0, len(cols), len(rows)),
                           exact_only=True, prm=prm)
    if found is None:
        return None
    grid, pixels = found
    mask = np.zeros((len(rows), len(cols)), bool)
    grid.paste(mask, pixels)
    # Each region must be carried by cells the model explains where blocks step: flat
    # cells fit any grid, and a smooth gradient fits as blocks a level or two apart.
    cells = mask[:ncy * q, :ncx * q].reshape(ncy, q, ncx, q).any(axis=(1, 3))
    labels, n = ndimage.label(cells, structure=np.ones((3, 3), bool))
    # ... along both axes: cells along a straight outline of the art step across it only.
    stepped = near >= prm.resampled_min_step
    n_step = np.bincount(labels[stepped], minlength=n + 1)
    n_fit = np.bincount(labels[stepped & cell_ok], minlength=n + 1)
    keep = (n_fit >= prm.resampled_min_cells) & (n_fit >= prm.resampled_share * n_step)
    for axis_steps in steps:
        keep &= np.bincount(labels[(axis_steps >= prm.resampled_min_step) & cell_ok],
                            minlength=n + 1) >= prm.resampled_min_cells / 2
    keep[0] = False
    good = cell_pixels(keep[labels], q)
    mask[:ncy * q, :ncx * q] &= good
    mask[ncy * q:] = False
    mask[:, ncx * q:] = False
    if not mask.any():
        return None
    mask = mask[row_of][:, col_of]
    p = max(1, round(period[0]))
    cand = CandidateGrid(p, int(round(phase[0])) % p, int(round(phase[1])) % p, [], False,
                         period=round(period[0], 2))
    return cand, BoxPlacement(box), mask


def detect_on_grid(rgb: np.ndarray, p: int, fx: int, fy: int, box: tuple[int, int, int, int], *,
                   runner: bool = False, fallback: bool = False, repeated: bool = False,
                   exact_only: bool = False, lossless_image: Callable[[], bool] | None = None,
                   prm: MosaicParams = DEFAULT_PARAMS) -> tuple[Grid, np.ndarray] | None:
    """The regions of one grid (period p, phase fx, fy) over ``box``: (its cells, their pixel
    mask over the grid's crop), or None. ``runner``: only some tile's runner-up phase (not
    completed over flat cells); ``fallback``: see ``CandidateGrid.fallback``; ``repeated``:
    the image is a pixel-repetition upscale; ``exact_only``: only when most strong cells are
    exactly constant blocks in all channels (lossless input); ``lossless_image``: whether the
    image looks lossless (``looks_lossless``), asked when the box's strong cells cannot tell."""
    # Over 80 lines on purpose: the steps (cells, growth, borders, completion) read and
    # narrow the same per-grid arrays; the comments mark them.
    def lossless_whole() -> bool:  # the whole image looks lossless (asked lazily, cached)
        return lossless_image is not None and lossless_image()

    def lossy() -> bool:  # the whole image looks lossy (JPEG)
        return lossless_image is not None and not lossless_image()

    grid = Grid(rgb, p, fx, fy, box, prm=prm)
    jpeg_aligned = p % 8 == 0 and fx % 8 == 0 and fy % 8 == 0
    # On JPEG's own 8 x 8 blocks, a flat JPEG block (paper, which JPEG keeps exact) steps to
    # its neighbour wherever that one holds a line, whose ringing fills its whole JPEG
    # block: there a side counts only when it steps over the flatness of both its cells.
    # (Exact sides: on an image that looks lossless, not on the cell image of a non-integer
    # grid, whose cells are exactly constant wherever the art is flat.)
    exact_sides = prm.exact_sides and not exact_only and lossless_whole()
    strong, weak = grid.cell_tests(pair=prm.jpeg_pair_sides and jpeg_aligned,
                                   exact_sides=exact_sides)
    # (Not on a pixel-repetition upscale: its texture steps fall on grid lines of every
    # even period and none between.)
    faint = grid.faint_cells() if p <= prm.small_block and not repeated else None
    if faint is not None:
        strong = strong | faint
    if not strong.any():
        return None
    noise = float(np.median(grid.inner[strong]))
    # A few exactly flat strong cells do not prove lossless input (JPEG keeps uniform
    # dark blocks exact): with few strong cells, assume lossy and try the median pass.
    lossless = noise <= prm.clean_noise and np.count_nonzero(strong) >= prm.lossless_min_cells
    if noise <= prm.clean_noise and not lossless and lossless_whole():
        # ... unless the image as a whole is lossless (``looks_lossless``): big blocks over
        # flat or screened areas leave a box too few strong cells to tell (held-out s200
        # ``illust0``: 8, and its 14 px patch went through the lossy tests, which dropped it).
        lossless = True
    if (fallback and lossless) or (exact_only and not lossless):
        return None
    exact_rgb = False
    raw_inner = grid.inner
    raw_grid = grid
    raw_strong = strong
    if not lossless and p >= prm.median_min_p:
        grid = Grid(rgb, p, fx, fy, box, denoise=5 if p >= prm.median5_min_p else 3, prm=prm)
        strong, weak = grid.cell_tests()
        if faint is not None:
            strong = strong | faint
        if not strong.any():
            return None
    elif lossless:
        # Truly lossless input (most strong cells exactly constant in all channels; JPEG
        # q95 keeps luma flat but not chroma): a weak cell must be an exactly constant
        # block too (smooth surroundings and anti-aliased edges of flat art pass the
        # luma tests). Strong cells stay: a border cell holds the patch border.
        const = grid.constant_cells(strong | weak)
        exact_rgb = np.count_nonzero(const & strong) >= prm.exact_share * np.count_nonzero(strong)
        if exact_rgb:
            weak = weak & const
            # ... and a strong cell that is not constant must touch a constant one (a
            # partial block on the patch border): small cells whose few interior pixels
            # fall between the lines of a fine hatching pass the luma tests too.
            kept = const
            if prm.jpeg_luma_strong and jpeg_aligned and lossy():
                # On JPEG's own blocks grey blocks stay exact in every channel, colored ones
                # in their luma only (the grid reads as lossless from the grey ones).
                kept = const | (raw_inner <= prm.clean_noise)
            strong = strong & (kept | ndimage.binary_dilation(
                kept & strong, structure=np.ones((3, 3), bool)))
        elif np.count_nonzero(const & strong) >= prm.weak_exact_share * np.count_nonzero(strong):
            # Fewer constant strong cells (the others over hatching or dots of the box) still
            # make a weak cell prove itself: a row of cells over a smooth gradient, each
            # holding one of its 1-level steps, passes the luma tests and carried a region
            # across the picture.
            weak = weak & const
    if (prm.jpeg_weak_flat_sides and jpeg_aligned and raw_strong.any()
            and grid.weak_side_steps is not None and lossy()):
        # On JPEG's own blocks the flat JPEG blocks between the lines of a hatching step to
        # the blocks that hold a line (which JPEG does not keep flat, and the median filter
        # of lossy input flattens): a weak cell's steps count only toward cells flat on the
        # unfiltered image too.
        level = float(np.median(raw_inner[raw_strong]))
        rf = np.pad(raw_inner <= prm.weak_ratio * level + prm.weak_min, 1)
        w_l, w_r, w_t, w_b = grid.weak_side_steps
        facing = ((w_l & rf[1:-1, :-2]).astype(np.int8) + (w_r & rf[1:-1, 2:])
                  + (w_t & rf[:-2, 1:-1]) + (w_b & rf[2:, 1:-1]))
        weak = weak & (facing >= prm.jpeg_weak_flat_sides)
    # Lossy input: a strong cell must have block edges to seed or carry a region (fine
    # hatching crossing the grid lines steps on a few pixels of a side, enough for its
    # mean); the others still let a region's completion box grow to them.
    stepped = strong
    if prm.edged_only and not exact_rgb:
        strong = strong & (grid.edged | (faint if faint is not None else False))
        if not strong.any():
            return None
    # Long bands one cell thick over a smooth gradient do not join (``band_min_cells``).
    weak = weak & ~grid.long_bands(weak, strong)
    # Hysteresis: weak cells join when connected to strong ones (blocks over smooth
    # areas differ from some neighbours by very little).
    grown = ndimage.binary_propagation(strong, structure=np.ones((3, 3), bool),
                                       mask=weak | strong)
    # Big blocks: few cells already make a large area.
    min_cells = int(np.clip(np.ceil(prm.min_area / (p * p)), 3, prm.min_cells))
    # JPEG's own 8x8 blocks look like a weak mosaic in smooth areas: a grid that lines
    # up with them must be carried by strong cells.
    # Small blocks: after JPEG few cells pass the strong test (the step smears into the
    # 1-3 interior pixels), while the weak test stays specific.
    share = (prm.jpeg_grid_seed_share if jpeg_aligned
             else prm.small_seed_share if p <= prm.small_block else prm.seed_share)
    # No closing of one-cell gaps: completion along the grid fills cells lost to JPEG
    # noise inside a region, while closing bridged regions to clusters of smooth
    # surroundings (sky, dark clothes) whose bounding box completion then filled.
    # Thickness: 3 x 3 cells for blocks up to ``small_block`` px (their staircases along
    # aliased outlines are 2 cells thick), 2 x 2 from 7 px (3 x 3 lost whole 7-12 px
    # patches over line art after JPEG, seen only as 2-cell-wide bands along edges).
    seeds = strong
    if prm.jpeg_wide_flat_seeds and jpeg_aligned and p > 8 and lossy():
        # A block of 16 px or more on JPEG's lines spans several JPEG blocks: exactly flat
        # luma over all of them is a block (JPEG flattens a smooth area into 8 x 8 blocks
        # that step from each other), though its colored sides may not pass the strong test.
        seeds = strong | (weak & grown & (raw_inner == 0))
    if prm.two_sided_min_p and not lossless and p >= prm.two_sided_min_p and not jpeg_period(p):
        # (``MosaicParams.two_sided_min_p``)
        seeds = seeds | (grid.two_sided & grown)
    cells = clean_cells(grown, seeds, min_cells, thick=prm.thick_small if p <= prm.small_block else prm.thick,
                         share=share,
                         close=False, near_min_seeds=0 if lossless else prm.near_min_seeds,
                         near_reach=prm.near_reach)
    # A regular texture aligned with the grid (1-bit screentone, whose dots and paper
    # fill some cells exactly; checks) gives strong cells of two or three colors only, or
    # cells that repeat every 2-3 cells; blocks average what they cover into many levels
    # that follow the picture.
    # (Exactly constant cells in many levels are blocks, except on the cell image of a
    # non-integer grid, ``exact_only``, whose cells take the blends of a rescale.)
    cells = grid.drop_texture_regions(
        cells, strong, exact=lossless,
        constant=grid.constant_cells(strong) if exact_rgb and not exact_only else None)
    if prm.stepped_inside:
        cells = grid.drop_unstepped_regions(cells)
    # Lossless line art: a staircase of exclusive blocks along an edge is a mosaic even
    # when it is one cell thin (its cells' mixed colors exist nowhere else).
    certain = None
    if np.count_nonzero(strong) >= prm.cert_min:
        excl = grid.exclusive_blocks(strong)
        if np.count_nonzero(excl) >= prm.cert_min:
            comp, _ = ndimage.label(grown | excl, structure=np.ones((3, 3), bool))
            n_excl = np.bincount(comp.ravel(), weights=excl.ravel())
            ok_comp = n_excl >= prm.cert_min
            ok_comp[0] = False
            certain = ok_comp[comp] & excl
            cells = cells | ok_comp[comp]
    if not cells.any():
        return None
    if exact_rgb and not exact_only and prm.exclusive_rings > 0:
        # Lossless: blocks the cell tests missed beside a region (a block over sparse lines
        # or a texture steps on one side only), followed by their exclusive colors. (Not on
        # the cell images of non-integer grids, ``exact_only``: their regions must pass a
        # blend test over their whole area, which cells grown over a fill's constant cells
        # made them fail.)
        cells = grid.grow_exclusive(cells, prm.exclusive_rings)
    # "As flat as the region's cells": most of them, not the median strong cell (after
    # JPEG the flattest strong cells are a few exact dark blocks).
    level = float(np.percentile(grid.inner[cells], 80))
    if not runner:  # see ``candidate_grids``
        # Lossy flat art (the region's cells not exactly flat, and many cells of the grid
        # an exactly flat fill): completion boxes leave out strong cells with no block edge.
        fill_share = float(np.mean(raw_inner[grid.inside] == 0)) if grid.inside.any() else 0.0
        flat_art = (not lossless and fill_share >= prm.fill_share
                    and float(np.percentile(raw_inner[cells], 75)) > prm.clean_noise)
        flat = (grid.inner <= prm.complete_ratio * level + prm.complete_min) & grid.inside
        if not lossless and prm.complete_spread_ratio > 0:
            # Lossy: the median filter that the cell tests read removes thin lines, so a
            # hatched cell looks as flat as a block; on the unfiltered luma a block keeps
            # only JPEG's ringing, a cell crossed by a line its full contrast.
            spread = raw_grid.spread()
            flat &= spread <= (prm.complete_spread_ratio * float(np.percentile(spread[cells], 80))
                               + prm.complete_spread_min)
        if not lossless and prm.complete_ramp_max > 0 and p >= prm.complete_ramp_min_p:
            # Lossy: a block is constant inside, while a smooth gradient (a background, soft
            # shading) ramps across every cell; after JPEG both pass the flatness test, and
            # completion took the gradient in the corners of a blob-shaped patch's box and
            # beyond. The bound follows how much JPEG's ringing ramps the region's own cells.
            ramp = grid.ramp()
            flat &= ramp <= max(prm.complete_ramp_max,
                                prm.complete_ramp_ratio * float(np.percentile(ramp[cells], 80)))
        if exact_rgb and prm.exact_pixels:
            # Lossless: every whole block is exactly constant (its partial blocks are added
            # pixel by pixel, ``exact_block_pixels``); cells of a smooth gradient or crossed
            # by thin lines are not blocks however flat they look.
            flat = grid.constant_cells(flat)
        cells = complete_cells(cells, flat,
                                stepped, slack=0 if lossless else 1, certain=certain,
                                edged=grid.edged if flat_art else None,
                                hull_margin=(prm.complete_hull_margin if lossless
                                             else prm.lossy_hull_margin
                                             if p >= prm.lossy_hull_min_p else -1),
                                prm=prm)
    jpeg_lines = on_jpeg_lines(p, fx, fy)
    if (jpeg_lines and (prm.jpeg_smooth_min_cells > 0 or prm.jpeg_smooth_plane_cells > 0)
            and lossy()):
        # A soft shading that JPEG flattened into its own blocks (on the unfiltered luma).
        cells = raw_grid.drop_smooth_regions(cells)
        if not cells.any():
            return None
    # Partial blocks are exact runs when the region's cells are exactly flat on the
    # unfiltered image (lossless input, even with few strong cells, e.g. big blocks);
    # JPEG keeps only some blocks exact (dark ones, q95). Judged on the cells inside the
    # region, as border cells hold the patch border (a step) when the block is partial.
    pad = np.pad(cells, 1)
    interior = cells & pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    judged = interior if np.count_nonzero(interior) >= 3 else cells
    exact = float(np.percentile(raw_inner[judged], 75)) <= prm.clean_noise
    if exact and not exact_rgb and lossy():
        if prm.jpeg_lossy_partials and jpeg_lines:
            # (``MosaicParams.jpeg_lossy_partials``: the inner blocks' constancy says
            # nothing there, JPEG keeps them flat)
            exact = False
        elif prm.exact_runs_rgb:
            # JPEG q95 (and JPEG's own 8 x 8 blocks at any quality) keeps a block's luma flat
            # but not its chroma: exact runs over its colors end at the first pixel, which
            # cut away the border cells of the region (a ring of a block around it). Grey
            # blocks stay exact in every channel (and so do a PNG's that ``looks_lossless``
            # misses).
            constant = raw_grid.constant_cells(judged)
            exact = np.count_nonzero(constant) >= prm.exact_share * np.count_nonzero(judged)
    # Truly lossless: cut each region to the box of its block edges; completion and box
    # growth took flat cells and cells that thin lines clip on every side of it.
    if exact and exact_rgb:
        pairs, across_v, across_h = grid.block_pairs()
        cells = clip_to_evidence(cells, pairs)
        cells = join_block_groups(cells, pairs, across_v, across_h,
                                   grid.constant_cells(grid.inside))
        # ... and grown over the blocks of smooth areas, which are exactly constant where the
        # art beside them is not. (Not on a grid whose lines hold JPEG's 8 x 8 lines unless
        # the image looks lossless: JPEG decodes a smooth area as constant 8 x 8 blocks that
        # step on them.)
        if prm.stepped_rings and (not jpeg_lines or lossless_whole()):
            cells = grid.grow_stepped_constant(cells, prm.stepped_rings, across_v, across_h)
    pixels = partial_blocks(grid, cells, noise, exact)
    if exact and exact_rgb and prm.exact_pixels:
        pixels = exact_block_pixels(grid, cells, pixels)
        if prm.beside_blocks and jpeg_lines and lossy():
            # JPEG keeps grey blocks on its own 8 x 8 lines exact, but not the partial blocks
            # beside them: only their tolerant test (``grid.beside``) finds those.
            lossy_block_pixels(grid, cells, pixels, noise)
    elif not exact and prm.lossy_pixels:
        pixels = lossy_block_pixels(grid, cells, pixels, noise)
    return grid, pixels


def lossless_once(rgb: np.ndarray, luma: np.ndarray, prm: MosaicParams) -> Callable[[], bool]:
    """``looks_lossless`` of the image (False with ``lossless_flat_share`` 0), computed on
    the first call only: most images never need it."""

    @cache
    def lossless() -> bool:
        return prm.lossless_flat_share > 0 and looks_lossless(rgb, luma, prm)

    return lossless


def looks_lossless(rgb: np.ndarray, luma: np.ndarray, prm: MosaicParams) -> bool:
    """Whether the image was saved losslessly, from its edges: in lossless flat art, a step
    of the luma has a pixel within 2 px whose 3 x 3 neighbourhood is exactly one color (the
    flat fill it borders; anti-aliasing adds a pixel or two), while JPEG rings around every
    step, so nothing near one stays exactly flat, except where a channel is clipped at 0 or
    255 (white paper, black ink: the ringing's overshoot is cut off), so such colors do not
    count. Black-and-white manga is then not judged lossless (its strong cells decide alone,
    as before). (A photo or a soft gradient has few exactly flat pixels anywhere; its blocks
    are never exactly flat either, so a box's strong cells decide before this is asked.)"""
    # Steps along every 4th row and column: a sample is enough, and the whole image's would
    # cost ~0.05 s on a 2604 x 2513 image.
    step, k = prm.lossless_step, 4
    rows = np.ascontiguousarray(luma[::k])
    cols = np.ascontiguousarray(luma[:, ::k])
    ry, rx = np.nonzero(cv2.absdiff(rows[:, 1:], rows[:, :-1]) >= step)
    cy, cx = np.nonzero(cv2.absdiff(cols[1:], cols[:-1]) >= step)
    ys = np.concatenate([ry * k, cy + 1])
    xs = np.concatenate([rx + 1, cx * k])
    if len(ys) < prm.lossless_min_steps:
        return False
    every = max(1, len(ys) // prm.lossless_sample)
    # (Windows of 7 x 7 px around each: steps within 3 px of the border are left out.)
    h, w = luma.shape
    ys, xs = ys[::every], xs[::every]
    inside = (ys >= 3) & (ys < h - 3) & (xs >= 3) & (xs < w - 3)
    ys, xs = ys[inside], xs[inside]
    if len(ys) == 0:
        return False
    pixels = rgb if rgb.ndim == 3 else rgb[:, :, None]
    r = np.arange(-3, 4)
    win = pixels[ys[:, None, None] + r[None, :, None], xs[:, None, None] + r[None, None, :]]
    flat_near = np.zeros(len(ys), bool)
    for dy in range(5):
        for dx in range(5):
            patch = win[:, dy:dy + 3, dx:dx + 3]
            color = patch[:, 1:2, 1:2]
            flat_near |= ((patch == color).all(axis=(1, 2, 3))
                          & ((color > 0) & (color < 255)).all(axis=(1, 2, 3)))
    return float(flat_near.mean()) >= prm.lossless_flat_share


@dataclass(frozen=True)
class MosaicRegion:
    """One connected mosaic region: its block size and grid phase (the grid lines are at
    x = phase_x + k * block, y = phase_y + k * block), its box (x0, y0, x1, y1; x1, y1
    exclusive) and its pixel count. ``period``: the block size in px, not an integer for a
    mosaic rescaled after pixelation (``block`` and the phases are then rounded). ``block``
    0: no grid was seen (a flat area inside a texture, ``erased.flat_areas_in_texture``)."""

    block: int
    phase_x: int
    phase_y: int
    box: tuple[int, int, int, int]
    pixels: int
    period: float = 0.0


def held_parts(mine: np.ndarray, theirs: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels, held) of the 4-connected parts of the bool mask ``mine``: ``held`` [n] marks
    the parts that have ``share`` of their pixels in ``theirs`` (same shape; 0, the
    background, never)."""
    n, labels = cv2.connectedComponents(mine.view(np.uint8), connectivity=4)
    area = np.bincount(labels.ravel(), minlength=n)
    shared = np.bincount(labels[theirs], minlength=n)
    held = shared >= share * area
    held[0] = False
    return labels, held


def cut_divisor_grids(found: list[tuple[CandidateGrid, Grid, np.ndarray]], shape: tuple[int, int],
                      prm: MosaicParams) -> list[tuple[CandidateGrid, Grid, np.ndarray]]:
    """``found`` (``grid_detections``), each region of an integer grid whose lines are all
    lines of a coarser grid that was found too (period a multiple, phases alike) cut to that
    grid's regions grown by one of its blocks, when those cover divisor_overlap of it: blocks
    of 8 px are also blocks of 4, whose smaller constant cells complete over fills and between
    hatching lines around the patch; the coarser grid holds the patch. (Per region: a patch
    of 4 px blocks elsewhere in the image is the finer grid's own.)"""
    if prm.divisor_overlap <= 0:
        return found
    integer = [i for i, (cand, _grid, _pixels) in enumerate(found) if cand.period is None]
    out = list(found)
    for i in integer:
        fine, grid, pixels = found[i]
        coarser = [j for j in integer if found[j][0].p > fine.p and found[j][0].p % fine.p == 0
                   and found[j][0].fx % fine.p == fine.fx and found[j][0].fy % fine.p == fine.fy]
        win = grid.window(pixels) if coarser else None
        if win is None:
            continue
        img_sl, pix_sl = win
        # The coarser grids' regions over this one's window, grown by q px beyond it (only
        # the window: a whole-image mask and dilation per grid cost ~50 ms on a big image).
        q = max(found[j][0].p for j in coarser)
        y0, x0 = max(0, img_sl[0].start - q), max(0, img_sl[1].start - q)
        y1, x1 = min(shape[0], img_sl[0].stop + q), min(shape[1], img_sl[1].stop + q)
        theirs = np.zeros((y1 - y0, x1 - x0), bool)
        for j in coarser:
            paste_within(theirs, (y0, x0), found[j][1], found[j][2])
        inner = (slice(img_sl[0].start - y0, img_sl[0].stop - y0),
                 slice(img_sl[1].start - x0, img_sl[1].stop - x0))
        labels, held = held_parts(pixels[pix_sl], theirs[inner], prm.divisor_overlap)
        if not held.any():
            continue
        near = cv2.dilate(theirs.view(np.uint8), np.ones((2 * q + 1, 2 * q + 1), np.uint8))
        cut = pixels.copy()
        cut[pix_sl] &= ~held[labels] | near[inner].astype(bool)
        out[i] = (fine, grid, cut)
    return out


def yield_long_step_regions(found: list[tuple[CandidateGrid, Grid, np.ndarray]],
                            prm: MosaicParams
                            ) -> list[tuple[CandidateGrid, Grid, np.ndarray]]:
    """``found`` (``grid_detections``), each region of a long-step-only integer grid that
    shares ``long_step_yield`` of its pixels with the regions of non-integer grids of a
    period within ``long_step_frac_gap`` px dropped: the rescaled patch is theirs, and the
    integer cells beside it took the fills around it (see ``MosaicParams.long_step_yield``)."""
    if prm.long_step_yield <= 0:
        return found
    out = list(found)
    for i, (cand, grid, pixels) in enumerate(found):
        if not cand.long_step or cand.period is not None:
            continue
        near = [j for j, (other, _g, _px) in enumerate(found) if other.period is not None
                and abs(other.period - cand.p) <= prm.long_step_frac_gap]
        win = grid.window(pixels) if near else None
        if win is None:
            continue
        img_sl, pix_sl = win
        theirs = np.zeros((img_sl[0].stop - img_sl[0].start, img_sl[1].stop - img_sl[1].start), bool)
        for j in near:
            paste_within(theirs, (img_sl[0].start, img_sl[1].start), found[j][1], found[j][2])
        labels, held = held_parts(pixels[pix_sl], theirs, prm.long_step_yield)
        if held.any():
            cut = pixels.copy()
            cut[pix_sl] &= ~held[labels]
            out[i] = (cand, grid, cut)
    return out


def paste_within(target: np.ndarray, origin: tuple[int, int], grid: Grid | BoxPlacement,
                 pixels: np.ndarray) -> None:
    """``grid.paste`` into ``target``, a part of the image whose top-left pixel is ``origin``
    (y, x): only what lands inside it."""
    win = grid.window(pixels)
    if win is None:
        return
    (ys, xs), (pys, pxs) = win
    y0, x0 = origin
    a, b = max(ys.start, y0), min(ys.stop, y0 + target.shape[0])
    c, d = max(xs.start, x0), min(xs.stop, x0 + target.shape[1])
    if a >= b or c >= d:
        return
    target[a - y0:b - y0, c - x0:d - x0] |= pixels[pys, pxs][a - ys.start:b - ys.start,
                                                              c - xs.start:d - xs.start]


def _runs(occupied: np.ndarray) -> list[tuple[int, int]]:
    """[(start, stop)] of the runs of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], occupied, [False])).view(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def _separate_boxes(mask: np.ndarray, min_area: int = 1 << 16) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) boxes that hold every pixel of ``mask``, cut apart along rows and
    columns with none (no 4-connected region crosses such a cut): labelling them costs their
    area, not the area of the box around all regions. Boxes under ``min_area`` px are not cut
    further (a labelling call costs more than the pixels it would skip)."""
    out: list[tuple[int, int, int, int]] = []
    todo = [(0, mask.shape[0], 0, mask.shape[1])]
    while todo:
        y0, y1, x0, x1 = todo.pop()
        part = mask[y0:y1, x0:x1]
        rows = _runs(part.any(axis=1))
        if not rows:
            continue
        cols = _runs(part.any(axis=0))
        # (the box tight around this part's pixels)
        ty0, ty1, tx0, tx1 = y0 + rows[0][0], y0 + rows[-1][1], x0 + cols[0][0], x0 + cols[-1][1]
        if (len(rows) == 1 and len(cols) == 1) or (ty1 - ty0) * (tx1 - tx0) < min_area:
            out.append((ty0, ty1, tx0, tx1))
        elif len(rows) > 1:
            todo += [(y0 + a, y0 + b, tx0, tx1) for a, b in rows]
        else:
            todo += [(ty0, ty1, x0 + a, x0 + b) for a, b in cols]
    return out


def mask_regions(mask: np.ndarray) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """Per 4-connected region of ``mask``: (its bounding box's slices, its pixels over that
    box), in raster order of their first pixel. (Labels are taken first: the caller may
    change ``mask`` meanwhile.)"""
    found: list[tuple[tuple[slice, slice], np.ndarray]] = []
    # (Labelled within boxes around the regions: the whole image would cost ~20-60 ms.
    # OpenCV numbers a box's regions in raster order; those of several boxes are sorted by
    # their first pixel: the top row's leftmost.)
    boxes = _separate_boxes(mask)
    for y0, y1, x0, x1 in boxes:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask[y0:y1, x0:x1].view(np.uint8),
                                                               connectivity=4)
        for k in range(1, n):
            x, y, w, h = (int(v) for v in stats[k, :4])
            found.append(((slice(y0 + y, y0 + y + h), slice(x0 + x, x0 + x + w)),
                          labels[y:y + h, x:x + w] == k))
    if len(boxes) > 1:
        found.sort(key=lambda f: (f[0][0].start, f[0][1].start + int(np.argmax(f[1][0]))))
    yield from found


def fill_enclosed_holes(mask: np.ndarray, prm: MosaicParams) -> None:
    """Fill, in place, the holes of each region of ``mask`` (4-connected; a hole: pixels
    not in the mask that no 8-connected path links to the outside) that are together at most
    hole_fill_share of its area."""
    if prm.hole_fill_share <= 0:
        return
    for sl, mine in mask_regions(mask):
        h, w = mine.shape
        if w < 3 or h < 3:
            continue
        # The region's box, padded by a pixel: what is not the region and not 8-connected to
        # the padding is a hole.
        rest = np.ones((h + 2, w + 2), np.uint8)
        rest[1:-1, 1:-1] = ~mine
        _, parts = cv2.connectedComponents(rest, connectivity=8)
        holes = (parts[1:-1, 1:-1] != parts[0, 0]) & (rest[1:-1, 1:-1] > 0)
        count = np.count_nonzero(holes)
        if count and count <= prm.hole_fill_share * np.count_nonzero(mine):
            mask[sl] |= holes


def final_detections(rgb: np.ndarray, luma: np.ndarray, prm: MosaicParams,
                     lossless: Callable[[], bool] | None = None
                     ) -> list[tuple[CandidateGrid, Grid, np.ndarray]]:
    """Every grid's regions (``grid_detections``), those on a divisor of another found grid
    cut to it (``cut_divisor_grids``). ``luma``: ``image_luma(rgb)``."""
    found = cut_divisor_grids(list(grid_detections(rgb, luma, prm, lossless)), rgb.shape[:2], prm)
    return yield_long_step_regions(found, prm)


def found_mask(rgb: np.ndarray, prm: MosaicParams
               ) -> tuple[np.ndarray, np.ndarray, list[CandidateGrid]]:
    """(mask bool [H, W], owner int16 [H, W]: index into the grids, -1 where none or a
    filled hole, the grids) of every grid's regions (``final_detections``), grown over
    textures they erased (``erased.py``), their enclosed holes filled."""
    h, w = rgb.shape[:2]
    result = np.zeros((h, w), bool)
    owner = np.full((h, w), -1, np.int16)
    grids: list[CandidateGrid] = []
    luma = image_luma(rgb)  # (the grids' and the erased texture's)
    # (The smooth, rough and flat-area maps of ``erased.py`` read the luma alone: made in a thread
    # while the grids are searched, as OpenCV releases the GIL.)
    side = ThreadPoolExecutor(max_workers=1) if prm.erased and prm.parallel else None
    flat_future = side.submit(flat_areas, luma, prm) if side is not None else None
    flat: FlatAreas | None = None
    beside: list[tuple[int, Grid]] = []
    lossless = lossless_once(rgb, luma, prm)
    for cand, grid, pixels in final_detections(rgb, luma, prm, lossless):
        win = grid.window(pixels)
        if win is None:
            continue
        img_sl, pix_sl = win
        new = pixels[pix_sl] & ~result[img_sl]
        if not new.any():
            continue
        owner[img_sl][new] = len(grids)
        result[img_sl] |= new
        if isinstance(grid, Grid) and grid.beside is not None:
            beside.append((len(grids), grid))
        grids.append(cand)
    if side is not None and flat_future is not None:
        flat = flat_future.result()
        side.shutdown()
    elif prm.erased and (grids or prm.erased_alone):
        flat = flat_areas(luma, prm)
    if grids and flat is not None:
        def grow(region: tuple[tuple[slice, slice], np.ndarray, int]
                 ) -> tuple[tuple[tuple[int, int, int, int], np.ndarray] | None, int]:
            sl, mine, g = region
            cand = grids[g]
            p = max(prm.min_block, round(cand.size))
            # (On JPEG input the trim lost more than it found: ``MosaicParams.erased_trim``.)
            trim = prm.erased_trim if (not prm.erased_trim_lossless or lossless() or exact_block_share(
                rgb, sl, mine, cand) >= prm.exact_share) else 0
            return erased_texture(rgb, luma, result, mine, (sl[0].start, sl[1].start), p, flat, prm,
                                  trim), g

        # (Every region reads the regions as found; OpenCV releases the GIL, so two threads
        # halve the wall time where two regions are large.)
        regions = list(labelled_regions(result, owner))
        with ThreadPoolExecutor(max_workers=2) if prm.parallel else nullcontext() as pool:
            grown = list(pool.map(grow, regions) if pool is not None else map(grow, regions))
        for extra, g in grown:
            if extra is not None:
                (x0, y0, x1, y1), added = extra
                result[y0:y1, x0:x1] |= added
                owner[y0:y1, x0:x1][added] = g
    for g, grid in beside:
        # Partial blocks beside a region, within a block of what is left of it (a divisor
        # grid's region may have been cut), added last: they are no evidence for the steps
        # above, which judge the regions' own cells.
        win = grid.window(grid.beside)
        if win is None:
            continue
        img_sl, pix_sl = win
        p = grid.p
        near = cv2.dilate((owner[img_sl] == g).view(np.uint8), np.ones((2 * p + 1, 2 * p + 1), np.uint8))
        add = grid.beside[pix_sl] & ~result[img_sl] & near.view(bool)
        owner[img_sl][add] = g
        result[img_sl] |= add
    if flat is not None and prm.erased_alone:
        # (Their regions report block 0: no grid was seen.)
        for (x0, y0, x1, y1), added in flat_areas_in_texture(rgb, luma, result, flat, prm):
            result[y0:y1, x0:x1] |= added
            owner[y0:y1, x0:x1][added] = len(grids)
            grids.append(CandidateGrid(0, 0, 0, [], False))
    if grids:
        fill_enclosed_holes(result, prm)
        drop_specks(result, owner, grids, prm)
    return result, owner, grids


def exact_block_share(rgb: np.ndarray, sl: tuple[slice, slice], mine: np.ndarray,
                      cand: CandidateGrid) -> float:
    """The share of the integer grid ``cand``'s cells wholly inside a region (``mine``, over
    the image's slices ``sl``) that are exactly one color in every channel, as a lossless
    save keeps a mosaic's blocks (0.0 for a non-integer grid or no whole cell). A page that
    ``looks_lossless`` cannot tell, black-and-white manga, still shows it here."""
    if cand.period is not None:
        return 0.0
    box = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    found = one_color_whole_cells(rgb, mine, box, cand.p, cand.fx, cand.fy)
    if found is None:
        return 0.0
    _gx0, _gy0, whole, one_color = found
    return float(np.count_nonzero(one_color & whole)) / float(np.count_nonzero(whole))


def drop_specks(mask: np.ndarray, owner: np.ndarray, grids: list[CandidateGrid],
                prm: MosaicParams) -> None:
    """Remove, in place, the regions of ``mask`` smaller than ``min_region_blocks`` blocks of
    their grid (``erased_alone_block`` px where none was seen): a few cells of a texture and
    the bits the borders' steps leave apart are a few pixels each (over the art set, 5-20%
    of such regions' pixels lie on a mosaic), and every region costs the mosaic model a
    crop of its own. (Half a block, not one: a gap can cut off a piece of a patch's border.)"""
    if prm.min_region_blocks <= 0:
        return
    for sl, mine, g in labelled_regions(mask, owner):
        cand = grids[g]
        p = cand.size or prm.erased_alone_block
        if np.count_nonzero(mine) < prm.min_region_blocks * p * p:
            mask[sl] &= ~mine
            owner[sl][mine] = -1


def labelled_regions(mask: np.ndarray, owner: np.ndarray
                     ) -> Iterator[tuple[tuple[slice, slice], np.ndarray, int]]:
    """``mask_regions``, each with the grid that found most of its pixels (``owner``: see
    ``found_mask``)."""
    for sl, mine in mask_regions(mask):
        found = owner[sl][mine]  # (-1: a filled hole)
        yield sl, mine, int(np.bincount(found[found >= 0], minlength=1).argmax())


def find_mosaic_regions(rgb: np.ndarray, *, params: MosaicParams | None = None
                        ) -> tuple[np.ndarray, list[MosaicRegion]]:
    """(mask bool [H, W], regions largest first) of the pixelated areas of an RGB (or grey)
    uint8 image. Regions are the mask's 4-connected components, as the decensor pipeline's
    (``deepcream.regions.find_regions``); each reports the grid that found most of its pixels."""
    prm = DEFAULT_PARAMS if params is None else params
    check_input(rgb, prm)
    result, owner, grids = found_mask(rgb, prm)
    regions: list[MosaicRegion] = []
    for sl, mine, g in labelled_regions(result, owner):
        cand = grids[g]
        regions.append(MosaicRegion(cand.p, cand.fx, cand.fy,
                                    (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop),
                                    int(np.count_nonzero(mine)),
                                    cand.size))
    regions.sort(key=lambda r: -r.pixels)
    return result, regions


def detect_mosaic(rgb: np.ndarray, *, params: MosaicParams | None = None) -> np.ndarray:
    """Mask (bool [H, W]) of the pixelated regions of an RGB (or grey) uint8 image."""
    prm = DEFAULT_PARAMS if params is None else params
    check_input(rgb, prm)
    return found_mask(rgb, prm)[0]
