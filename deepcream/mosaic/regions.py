"""Regions in cell space: cleaning, completion along the grid, lossless cuts and joins.

A censorship patch is one contiguous area on one grid. Found cells are cleaned (holes
filled, small, thin or weakly seeded regions dropped), completed over their bounding box
with the grid's flat cells (blocks over flat fills look exactly like the fill), the box
first grown across flat cells to further blocks of the same grid; on lossless input each
region is cut to the box of its block pairs and joined with separate groups of them.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from deepcream.mosaic.params import DEFAULT_PARAMS, MosaicParams


def clean_cells(cells: np.ndarray, seeds: np.ndarray, min_cells: int, thick: int = 2,
                share: float = DEFAULT_PARAMS.seed_share, close: bool = True,
                near_min_seeds: int = 0, near_reach: int = 0) -> np.ndarray:
    """Close one-cell gaps (if ``close``), fill enclosed holes (blocks equal to their neighbours, strokes
    over the mosaic); keep regions with at least ``min_cells`` seed cells that make up a good
    share of the region (a few seeds leaking along an outline are not a mosaic), and pieces
    with at least ``near_min_seeds`` (if > 0; the same share) within ``near_reach`` cells of
    a region so kept (``MosaicParams.near_min_seeds``)."""
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
    fair = (seeded >= share * found) & (cored > 0)
    keep = (seeded >= min_cells) & fair
    keep[0] = False
    if near_min_seeds and keep.any():
        piece = fair & ~keep & (seeded >= near_min_seeds)
        piece[0] = False
        if piece.any():
            reach = 2 * near_reach + 1
            near = cv2.dilate(keep[labels].view(np.uint8), np.ones((reach, reach), np.uint8)).view(bool)
            touched = np.bincount(labels[near], minlength=n + 1) > 0
            keep |= piece & touched
    return keep[labels]


def extend_box(box: list[int], flat: np.ndarray, evidence: np.ndarray, slack: int,
                far: float = 2.0, lone: np.ndarray | None = None, lone_far: float = 0.0
                ) -> list[int]:
    """Grow a region's cell box [y0, y1, x0, x1) in each direction across bands of flat cells
    as far as the last band holding evidence (a block-like cell of the same grid). A patch
    over line art shows its blocks only where a line or a fill edge crosses it, often in
    pieces separated by blocks over a flat fill; flat cells with no evidence beyond them are
    surroundings and stop nothing but are not taken. ``lone``: evidence cells that reach
    only ``lone_far`` x the box's extent (cells with no evidence beside them)."""
    ncy, ncx = flat.shape
    if lone is None:
        lone = np.zeros_like(evidence)
    y0, y1, x0, x1 = box
    changed = True
    while changed:
        changed = False
        for direction in range(4):
            if direction < 2:  # columns right (0) / left (1) of the box, over its rows
                bands = range(x1, ncx) if direction == 0 else range(x0 - 1, -1, -1)
                seg = [(flat[y0:y1, k], evidence[y0:y1, k], lone[y0:y1, k]) for k in bands]
            else:  # rows below (2) / above (3), over its columns
                bands = range(y1, ncy) if direction == 2 else range(y0 - 1, -1, -1)
                seg = [(flat[k, x0:x1], evidence[k, x0:x1], lone[k, x0:x1]) for k in bands]
            # At most ``far`` times the box's extent that way: far-off block-like cells are more
            # likely another patch (one whose period is a multiple of this one) than a part.
            extent = (x1 - x0) if direction < 2 else (y1 - y0)
            limit, lone_limit = int(far * extent), int(lone_far * extent)
            reach = 0
            for i, (f, e, single) in enumerate(seg[:limit]):
                # The band must be flat, but for its two end cells (partial blocks where the
                # patch ends inside a cell) and ``slack`` more (JPEG noise).
                if np.count_nonzero(~f[1:-1]) > slack:
                    break
                if (e & ~single).any() or (i < lone_limit and e.any()):
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


def clip_to_evidence(cells: np.ndarray, evidence: np.ndarray) -> np.ndarray:
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


def join_block_groups(cells: np.ndarray, pairs: np.ndarray, across_v: np.ndarray,
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


def drop_texture_gaps(take: np.ndarray, region: np.ndarray, flat: np.ndarray,
                      ratio: float) -> np.ndarray:
    """``take`` without its 4-connected groups that border more rough cells (not flat, not
    in ``region``) than region cells. Inside a patch every cell is a block (flat) or a partial
    block on its border, so flat cells among rough ones are gaps of a texture beside the
    patch (paper between hatching lines), not blocks over a flat fill."""
    labels, n = ndimage.label(take)
    if n == 0:
        return take
    rough = ~flat & ~region
    near_rough = np.zeros(n + 1)
    near_region = np.zeros(n + 1)
    h, w = take.shape
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        src = labels[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        nb = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
        near_rough += np.bincount(src.ravel(), weights=rough[nb].ravel(), minlength=n + 1)
        near_region += np.bincount(src.ravel(), weights=region[nb].ravel(), minlength=n + 1)
    keep = near_rough <= ratio * near_region
    keep[0] = False
    return keep[labels]


def complete_cells(cells: np.ndarray, flat: np.ndarray, evidence: np.ndarray | None = None,
                    slack: int = 0, certain: np.ndarray | None = None,
                   edged: np.ndarray | None = None, hull_margin: int = -1,
                   prm: MosaicParams = DEFAULT_PARAMS) -> np.ndarray:
    """Complete each region along its own grid. A censorship patch is one contiguous area on
    one grid, but its blocks over flat fills (line art) look exactly like the fill, so the cell
    tests cannot see them. Flat cells (as flat as the grid's found cells, as pixelation leaves
    them) inside the bounding box of a region join it; the box first grows across flat cells
    to further block-like cells (``evidence``) of the same grid. Cells outside every region's
    (grown) box are never taken, so flat surroundings next to a mosaic are not swallowed, and
    an image with no region gets none. ``edged`` (lossy flat art): the strong cells with block
    edges; the box starts from the region's other cells (see ``Grid.cell_tests``), grows to
    edged cells (to any strong cell only when no edged one is in reach), and strong cells
    without block edges outside the grown box are dropped. ``hull_margin`` (-1: off; the
    caller picks ``prm.complete_hull_margin`` or ``prm.lossy_hull_margin``): flat cells are
    taken only within the convex hull of the found cells in the box grown by that many
    cells, unless they fill the box's corners like a rectangle's (see ``hull_cut``)."""
    if not cells.any():
        return cells
    out = cells.copy()
    labels, _ = ndimage.label(cells, structure=np.ones((3, 3), bool))
    lone = None
    if evidence is not None and prm.box_reach_lone >= 0:
        neighbours = ndimage.convolve(evidence.view(np.uint8), np.ones((3, 3), np.uint8),
                                      mode="constant")
        lone = evidence & (neighbours < 2)
    reach_far = {"far": prm.box_reach, "lone": lone, "lone_far": prm.box_reach_lone}
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
        sparse_ok = (evidence is not None and n >= prm.sparse_density * mine.size
                     and np.count_nonzero(evidence[sl][mine]) >= prm.sparse_strong * n)
        if not sure and not sparse_ok and n < prm.complete_density * mine.size:
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
            # patch). Growing to any strong cell when none is in reach (``box_reach_any``,
            # off) found rectangles over a flat fill by the partial blocks of their border,
            # but took the fill beside blob-shaped patches up to an outline of the art.
            reach = evidence & edged
            grown = extend_box(box, flat, reach, slack, **reach_far)
            if grown == box and prm.box_reach_any > 0:
                reach = evidence
                grown = extend_box(box, flat, reach, slack, **{**reach_far, "far": prm.box_reach_any})
            before, box = box, grown
        elif evidence is not None:
            reach, before = evidence, box
            box = extend_box(box, flat, evidence, slack, **reach_far)
        else:
            reach, before = None, box
        y0, y1, x0, x1 = box
        take = flat[y0:y1, x0:x1]
        seed = mine_in_box(sl, mine, box, out.shape)
        if prm.complete_connected:
            # Flat cells 4-connected to the region through flat cells: a block over a flat
            # fill continues the fill, while the flat cells of a regular texture (paper
            # between hatching lines crossing the grid) are cut apart by its lines.
            take = ndimage.binary_propagation(seed, mask=take | seed) & take
            if prm.rough_border < np.inf:
                # (Groups of the cells it adds: the region's own flat cells would join
                # every group into one.)
                region = seed | out[y0:y1, x0:x1]
                take = drop_texture_gaps(take & ~region, region, flat[y0:y1, x0:x1],
                                         prm.rough_border)
        if hull_margin >= 0:
            # (The block-like cells the box grew to count as found: a patch over line art
            # shows its blocks in pieces, with blocks over a flat fill between.)
            found = seed | cells[y0:y1, x0:x1]
            if reach is not None and before != box:
                grew = reach[y0:y1, x0:x1].copy()
                by0, by1, bx0, bx1 = before
                grew[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = False
                found = found | grew
            take &= hull_cut(found, hull_margin, prm.complete_rect_corner, prm.complete_rect_corners)
        out[y0:y1, x0:x1] |= take
        if edged is not None and evidence is not None:
            # ... and such cells left outside the (grown) box leave the region: flat fill
            # beside the patch whose only steps are the art's edges and the patch's side.
            outside = np.zeros_like(out)
            outside[sl] = mine
            outside[y0:y1, x0:x1] = False
            out &= ~outside
    return out


def mine_in_box(sl: tuple[slice, slice], mine: np.ndarray, box: list[int], shape: tuple[int, int]
                ) -> np.ndarray:
    """The region's cells (``mine`` over ``sl``) over the cells of ``box``."""
    full = np.zeros(shape, bool)
    full[sl] = mine
    y0, y1, x0, x1 = box
    return full[y0:y1, x0:x1]


def hull_cut(found: np.ndarray, margin: int, corner: float, corners: int) -> np.ndarray:
    """bool like ``found`` (a region's box, in cells): where completion may take flat cells.
    Blocks over a flat fill look exactly like the fill, so nothing in the pixels tells the
    blocks of a patch from the fill beyond its border: only the shape of the found cells
    does. A brush stroke or an ellipse leaves the corners of its box to the surroundings;
    its found cells (every piece of it, which the box growth joined) span a convex hull
    inside it, kept grown by ``margin`` cells. A rectangle fills the corners of its box:
    when found cells lie in at least ``corners`` of the four corner squares (``corner`` of
    the box's extent on a side; an ellipse reaches into them only at their inner tips, from
    0.15), the whole box is kept, as a rectangle's corner over a flat fill is part of it."""
    h, w = found.shape
    ky, kx = max(2, round(corner * h)), max(2, round(corner * w))
    seen = sum(bool(found[ys, xs].any()) for ys in (slice(0, ky), slice(h - ky, h))
               for xs in (slice(0, kx), slice(w - kx, w)))
    if seen >= corners:
        return np.ones_like(found)
    return hull_mask(found, margin)


def hull_mask(cells: np.ndarray, margin: int) -> np.ndarray:
    """bool like ``cells``: their convex hull, grown by ``margin`` cells."""
    ys, xs = np.nonzero(cells)
    out = np.zeros(cells.shape, np.uint8)
    if len(ys) == 0:
        return out.astype(bool)
    pts = np.stack([xs, ys], axis=1).astype(np.int32)
    cv2.fillConvexPoly(out, cv2.convexHull(pts), 1)
    if margin > 0:
        out = cv2.dilate(out, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    return out.astype(bool)
