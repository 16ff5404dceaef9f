"""Censored regions: connected components, DeepCreamPy's box rule, crops and paste-back.

Everything here works on array views and on the (small) boxes, never per pixel in Python and
never on a float copy of the whole image.

Coordinates: ``x`` is the column, ``y`` the row. Boxes are PIL crop boxes
``(x1, y1, x2, y2)``, right/bottom exclusive, and may reach outside the image (DCP's corner
rule can produce ``x1 = -1``); crops pad such pixels with black, and the mask pads them as
holes, exactly as PIL's ``crop`` of DCP's 0/255 mask image does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from deepcream.options import MODEL_SIZE

Box = tuple[int, int, int, int]

# DCP: boxes are 1.5x the region's extent, at least 256 px (the model's input size).
EXPAND_FACTOR = 1.5
MIN_BOX = MODEL_SIZE


@dataclass(frozen=True)
class Region:
    """One 4-connected component of hole pixels.

    ``min_x..max_x``/``min_y..max_y`` are inclusive pixel bounds; ``own`` is a bool array over
    that bounding rectangle marking the component's own pixels (not other regions' pixels
    that happen to fall inside the rectangle).
    """

    pixels: int
    min_x: int
    min_y: int
    max_x: int
    max_y: int
    own: np.ndarray

    @property
    def bounds(self) -> Box:
        """Inclusive ``(min_x, min_y, max_x, max_y)``."""
        return (self.min_x, self.min_y, self.max_x, self.max_y)

    def flipped(self, width: int, height: int, flip_x: bool, flip_y: bool) -> Region:
        """The same region in a left-right and/or top-bottom mirrored image."""
        min_x, max_x, min_y, max_y = self.min_x, self.max_x, self.min_y, self.max_y
        own = self.own
        if flip_x:
            min_x, max_x = width - 1 - max_x, width - 1 - min_x
            own = own[:, ::-1]
        if flip_y:
            min_y, max_y = height - 1 - max_y, height - 1 - min_y
            own = own[::-1, :]
        return Region(self.pixels, min_x, min_y, max_x, max_y, own)


@dataclass(frozen=True)
class Labels:
    """4-connected components of a hole mask: ``labels`` (int32, 0 = no hole, k = component
    k, numbered in raster order of their first pixel) over the bounding rectangle of all
    holes, whose top-left pixel is ``(ox, oy)``; ``stats`` is OpenCV's per-label
    ``[x, y, w, h, area]`` in that rectangle (row 0: the background)."""

    labels: np.ndarray
    count: int
    stats: np.ndarray
    ox: int = 0
    oy: int = 0


class TooManyRegions(ValueError):
    """``label_holes`` found more components than its ``max_count``."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count:,} separate regions to fill, more than the limit of "
                         f"{limit:,} per image")
        self.count, self.limit = count, limit


def hole_window(holes: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of ``holes`` (bool [H, W], not empty) grown by ``margin`` on each
    side, clipped to the array, as (rows, cols) slices."""
    rows = np.flatnonzero(holes.any(axis=1))
    cols = np.flatnonzero(holes.any(axis=0))
    h, w = holes.shape
    return (slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, h)),
            slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, w)))


def _holes_rect(mask: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """The bounding rectangle of all holes (uint8 view) and its top-left ``(ox, oy)``."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    # Label only the bounding rectangle of all holes: on large images with small regions
    # that is a fraction of the pixels.
    oy, ox = int(rows[0]), int(cols[0])
    sub = mask[oy:rows[-1] + 1, ox:cols[-1] + 1]
    return np.ascontiguousarray(sub).view(np.uint8), ox, oy


def count_regions(mask: np.ndarray) -> int:
    """The number of 4-connected components of ``mask`` (labels only, no per-region stats:
    cheap even for millions of components)."""
    rect = _holes_rect(mask)
    if rect is None:
        return 0
    count, _ = cv2.connectedComponents(rect[0], connectivity=4, ltype=cv2.CV_32S)
    return int(count) - 1


def label_holes(mask: np.ndarray, max_count: int | None = None) -> Labels:
    """Label the 4-connected components of ``mask`` (bool [H, W]). More than ``max_count``
    components raises ``TooManyRegions``, found without computing per-region stats (which
    cost ~300 bytes and ~1 us per component in OpenCV: 1.9 GB for a 4000x3000
    checkerboard)."""
    rect = _holes_rect(mask)
    if rect is None:
        return Labels(np.zeros((0, 0), np.int32), 0, np.zeros((1, 5), np.int32))
    sub, ox, oy = rect
    if max_count is not None and np.count_nonzero(sub) > max_count:
        # more hole pixels than allowed regions: count first, cheaply
        count, _ = cv2.connectedComponents(sub, connectivity=4, ltype=cv2.CV_32S)
        if count - 1 > max_count:
            raise TooManyRegions(int(count) - 1, max_count)
    # cv2 labels 4-connected components in raster order of their first pixel, as
    # scipy.ndimage.label does, without importing scipy (a third of the CLI's start-up).
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        sub, connectivity=4, ltype=cv2.CV_32S)
    return Labels(labels, int(count) - 1, stats, ox, oy)


def find_regions(mask: np.ndarray | Labels) -> list[Region]:
    """4-connected components of ``mask`` (bool [H, W], or its ``label_holes``), largest
    first (ties: scan order)."""
    lab = mask if isinstance(mask, Labels) else label_holes(mask)
    if lab.count == 0:
        return []
    labels, stats, ox, oy = lab.labels, lab.stats, lab.ox, lab.oy
    sizes = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(-sizes, kind="stable")
    regions = []
    for index in order:
        x, y, w, h = (int(v) for v in stats[index + 1, :4])
        own = labels[y:y + h, x:x + w] == index + 1
        regions.append(Region(int(sizes[index]), ox + x, oy + y, ox + x + w - 1, oy + y + h - 1,
                              own))
    return regions


def dcp_size(region: Region, width: int, height: int) -> int:
    """Step 1 of DCP's box rule: the square's side."""
    return _dcp_side(region.max_x - region.min_x, region.max_y - region.min_y, width, height)


def _dcp_side(span_x: int, span_y: int, width: int, height: int) -> int:
    size = int(max(span_x, span_y) * EXPAND_FACTOR)
    if size > min(width, height):
        size = min(width, height)
    elif size < MIN_BOX:
        size = MIN_BOX
    return size


def dcp_box(region: Region, width: int, height: int) -> Box:
    """DeepCreamPy's crop box for ``region``, quirks included (see docs/decensor.md)."""
    return dcp_box_for_bounds(*region.bounds, width, height)


def dcp_box_for_bounds(min_x: int, min_y: int, max_x: int, max_y: int,
                       width: int, height: int) -> Box:
    """DeepCreamPy's crop box for a region with these inclusive pixel bounds."""
    s = _dcp_side(max_x - min_x, max_y - min_y, width, height)
    cx, cy = (min_x + max_x) // 2, (min_y + max_y) // 2
    x1, x2 = cx - s // 2, cx + s // 2
    y1, y2 = cy - s // 2, cy + s // 2
    out_y = y1 < 0 or y2 > height - 1
    out_x = x1 < 0 or x2 > width - 1
    if out_y and out_x:
        # The first matching corner wins; a box ending at W-1/H-1 is DCP's own off-by-one.
        if x1 < 0 and y1 < 0:
            x1, y1, x2, y2 = 0, 0, s, s
        elif x2 > width - 1 and y1 < 0:
            x1, y1, x2, y2 = width - s - 1, 0, width - 1, s
        elif x1 < 0 and y2 > height - 1:
            x1, y1, x2, y2 = 0, height - s - 1, s, height - 1
        elif x2 > width - 1 and y2 > height - 1:
            x1, y1, x2, y2 = width - s - 1, height - s - 1, width - 1, height - 1
    else:
        if x1 < 0:
            x1, x2 = 0, x2 - x1
        if x2 > width - 1:
            x1, x2 = x1 - (x2 - (width - 1)), width - 1
        if y1 < 0:
            y1, y2 = 0, y2 - y1
        if y2 > height - 1:
            y1, y2 = y1 - (y2 - (height - 1)), height - 1
    if x2 > width or y2 > height:
        # Tight fallback (images smaller than the square): excludes the last row/column.
        x1, y1, x2, y2 = min_x, min_y, max_x, max_y
    return (x1, y1, x2, y2)


def _own_in_box(region: Region, box: Box) -> np.ndarray:
    """bool [box_h, box_w]: the region's own pixels that lie inside ``box``."""
    x1, y1, x2, y2 = box
    sel = np.zeros((max(y2 - y1, 0), max(x2 - x1, 0)), bool)
    ix1, iy1 = max(x1, region.min_x), max(y1, region.min_y)
    ix2, iy2 = min(x2, region.max_x + 1), min(y2, region.max_y + 1)
    if ix1 < ix2 and iy1 < iy2:
        sel[iy1 - y1:iy2 - y1, ix1 - x1:ix2 - x1] = region.own[
            iy1 - region.min_y:iy2 - region.min_y, ix1 - region.min_x:ix2 - region.min_x]
    return sel


def _cover_box(ux1: int, uy1: int, ux2: int, uy2: int, size: int, width: int, height: int) -> Box:
    """A box (DCP's side where the image allows) holding the inclusive rectangle ``u``."""
    def axis(lo: int, hi: int, limit: int) -> tuple[int, int]:
        side = min(max(size, hi - lo + 1), limit)
        start = (lo + hi + 1) // 2 - side // 2
        # Keep [lo, hi] inside (side >= hi - lo + 1), then keep the box inside the image.
        start = min(max(start, hi + 1 - side), lo)
        start = min(max(start, 0), limit - side)
        return start, start + side

    x1, x2 = axis(ux1, ux2, width)
    y1, y2 = axis(uy1, uy2, height)
    return (x1, y1, x2, y2)


def region_boxes(region: Region, width: int, height: int) -> list[tuple[Box, np.ndarray]]:
    """The boxes whose model output fills ``region``, each with the pixels it pastes.

    The first is DCP's box (so what DCP fills is filled identically) whenever it holds any of
    the region's pixels. DCP's box can miss region pixels (a box ending at W-1/H-1, the tight
    fallback box); those get one more box: DCP's side, centred on the missed pixels and
    clamped inside the image (narrower than the side only where the image is). Every region
    pixel is pasted exactly once, and every box returned pastes at least one pixel: a DCP box
    that holds none of them is dropped. That happens with the tight fallback on images
    smaller than 256 px, which is empty (zero height or width) for a 1-pixel-high or -wide
    region; the extra box then covers the whole region.
    """
    box = dcp_box(region, width, height)
    sel = _own_in_box(region, box)
    kept = int(np.count_nonzero(sel))
    result = [(box, sel)] if kept else []
    missed = region.pixels - kept
    if missed:
        covered = np.zeros_like(region.own)
        x1, y1, x2, y2 = box
        covered[max(y1 - region.min_y, 0):max(y2 - region.min_y, 0),
                max(x1 - region.min_x, 0):max(x2 - region.min_x, 0)] = True
        rest = region.own & ~covered
        rows = np.flatnonzero(rest.any(axis=1))
        cols = np.flatnonzero(rest.any(axis=0))
        ux1, ux2 = region.min_x + cols[0], region.min_x + cols[-1]
        uy1, uy2 = region.min_y + rows[0], region.min_y + rows[-1]
        extra = _cover_box(int(ux1), int(uy1), int(ux2), int(uy2),
                           dcp_size(region, width, height), width, height)
        rest_region = Region(missed, region.min_x, region.min_y, region.max_x, region.max_y, rest)
        result.append((extra, _own_in_box(rest_region, extra)))
    return result


def crop(array: np.ndarray, box: Box, fill: int | bool = 0) -> np.ndarray:
    """``array[y1:y2, x1:x2]`` as a new array; parts outside the image get ``fill``."""
    x1, y1, x2, y2 = box
    h, w = array.shape[:2]
    if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
        return array[y1:y2, x1:x2].copy()
    out = np.full((y2 - y1, x2 - x1) + array.shape[2:], fill, dtype=array.dtype)
    ix1, iy1, ix2, iy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if ix1 < ix2 and iy1 < iy2:
        out[iy1 - y1:iy2 - y1, ix1 - x1:ix2 - x1] = array[iy1:iy2, ix1:ix2]
    return out


def resize_nearest(crop_rgb: np.ndarray, crop_holes: np.ndarray, size: int = MODEL_SIZE
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Resize a crop and its hole mask to ``size`` x ``size`` with PIL's NEAREST, as DCP did
    (Pillow 6's default filter; named explicitly because Pillow >= 7 defaults to bicubic)."""
    rgb = np.asarray(Image.fromarray(crop_rgb).resize((size, size), Image.Resampling.NEAREST))
    holes = np.asarray(Image.fromarray(crop_holes.view(np.uint8) * np.uint8(255))
                       .resize((size, size), Image.Resampling.NEAREST)) > 0
    return rgb, holes


def resize_bicubic(pred: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a uint8 prediction back to box size with PIL's BICUBIC, as DCP does."""
    if pred.shape[1] == width and pred.shape[0] == height:
        return pred
    return np.asarray(Image.fromarray(pred).resize((width, height), Image.Resampling.BICUBIC))


def paste(target: np.ndarray, box: Box, patch: np.ndarray, select: np.ndarray) -> None:
    """Copy ``patch`` pixels where ``select`` into ``target`` at ``box`` (in place). Parts of
    the box outside the image are skipped (``select`` is False there for real regions)."""
    x1, y1, x2, y2 = box
    h, w = target.shape[:2]
    ix1, iy1, ix2, iy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if ix1 >= ix2 or iy1 >= iy2:
        return
    sub_sel = select[iy1 - y1:iy2 - y1, ix1 - x1:ix2 - x1]
    target[iy1:iy2, ix1:ix2][sub_sel] = patch[iy1 - y1:iy2 - y1, ix1 - x1:ix2 - x1][sub_sel]


def flip_box(box: Box, width: int, height: int, flip_x: bool, flip_y: bool) -> Box:
    """Map a box between an image and its mirrored copy (the map is its own inverse)."""
    x1, y1, x2, y2 = box
    if flip_x:
        x1, x2 = width - x2, width - x1
    if flip_y:
        y1, y2 = height - y2, height - y1
    return (x1, y1, x2, y2)


# --- Images with many regions (docs/decensor.md, "Many regions: grouped crops") -------------
#: Up to this many regions, every region gets DCP's own box(es), exactly as DCP does.
EXACT_REGIONS = 200
#: Tile grids for grouped crops: margins in px. A tile's box is ``side`` px square
#: (``MODEL_SIZE`` at native scale), its grid stride ``side - 2 * margin``. A region whose extent
#: (DCP's ``max(max_x - min_x, max_y - min_y)``) is at most ``2 * margin`` goes to the tile
#: holding its centre and lies wholly inside that tile's box, its centre at least ``margin``
#: px inside. Bigger regions keep their own DCP boxes.
TILE_MARGINS = (32, 64)
#: Native-scale tile crops allowed before tiles grow (2x, then 4x, downscaled to the model's
#: input): bounds the crops of huge images with scattered dots.
TILE_BUDGET = 128
TILE_SCALES = (1, 2, 4)


@dataclass(frozen=True)
class Grouping:
    """How an image with many regions is filled.

    ``boxes[g]`` is the crop box of tile group ``g`` and ``group_of[label]`` the group that
    pastes component ``label`` (-1: none, i.e. background or a region in ``single``);
    ``single`` are the regions too big for a tile, each filled with its own DCP box(es)."""

    boxes: list[Box]
    group_of: np.ndarray
    single: list[Region]


def _tile_box(start: int, side: int, limit: int) -> tuple[int, int]:
    side = min(side, limit)
    start = min(max(start, 0), limit - side)
    return start, start + side


def group_regions(lab: Labels, width: int, height: int, side: int = MODEL_SIZE) -> Grouping:
    """Group the small regions of ``lab`` into shared tile crops of ``side`` px (see
    ``TILE_MARGINS``); regions too big for a tile stay single. The number of tile crops is
    at most the number of tiles of the grids, so it grows with the image area, not the
    region count."""
    x, y, w, h = (lab.stats[1:, k].astype(np.int64) for k in range(4))
    min_x, min_y = x + lab.ox, y + lab.oy
    max_x, max_y = min_x + w - 1, min_y + h - 1
    extent = np.maximum(max_x - min_x, max_y - min_y)
    cx, cy = (min_x + max_x) // 2, (min_y + max_y) // 2
    group_of = np.full(lab.count + 1, -1, np.int32)
    box_ids: dict[Box, int] = {}
    placed = np.zeros(lab.count, bool)
    for margin in TILE_MARGINS:
        stride = side - 2 * margin
        take = ~placed & (extent <= 2 * margin)
        if not take.any():
            continue
        placed |= take
        index = np.flatnonzero(take)
        cols = width // stride + 1
        tile = (cy[index] // stride) * cols + cx[index] // stride
        tiles, inverse = np.unique(tile, return_inverse=True)
        ids = np.empty(len(tiles), np.int32)
        for k, t in enumerate(tiles.tolist()):
            ty, tx = divmod(t, cols)
            x1, x2 = _tile_box(tx * stride - margin, side, width)
            y1, y2 = _tile_box(ty * stride - margin, side, height)
            ids[k] = box_ids.setdefault((x1, y1, x2, y2), len(box_ids))
        group_of[index + 1] = ids[inverse]
    single = []
    for index in np.flatnonzero(~placed).tolist():
        bx, by, bw, bh = (int(v) for v in lab.stats[index + 1, :4])
        own = lab.labels[by:by + bh, bx:bx + bw] == index + 1
        single.append(Region(int(lab.stats[index + 1, cv2.CC_STAT_AREA]), lab.ox + bx,
                             lab.oy + by, lab.ox + bx + bw - 1, lab.oy + by + bh - 1, own))
    single.sort(key=lambda r: -r.pixels)
    return Grouping(list(box_ids), group_of, single)


def plan_groups(lab: Labels, width: int, height: int) -> Grouping:
    """``group_regions`` at native scale, or with 2x/4x larger tiles when native ones would
    be more than ``TILE_BUDGET`` crops."""
    for scale in TILE_SCALES:
        grouping = group_regions(lab, width, height, MODEL_SIZE * scale)
        if len(grouping.boxes) <= TILE_BUDGET:
            break
    return grouping


def resize_holes_any(crop_holes: np.ndarray, size: int = MODEL_SIZE) -> np.ndarray:
    """Resize a hole mask so that every output pixel covering any hole is a hole (NEAREST
    would drop most 1-px holes when shrinking)."""
    # (np.where, not a uint8 view: a bool array from OpenCV may hold 255 for True)
    scaled = np.where(crop_holes, np.uint8(255), np.uint8(0))
    area = cv2.resize(scaled, (size, size), interpolation=cv2.INTER_AREA)
    return area > 0


def group_select(lab: Labels, grouping: Grouping, group: int, box: Box) -> np.ndarray:
    """bool [box_h, box_w]: the pixels tile group ``group`` pastes (its regions' own)."""
    x1, y1, x2, y2 = box
    labels = crop(lab.labels, (x1 - lab.ox, y1 - lab.oy, x2 - lab.ox, y2 - lab.oy), 0)
    return grouping.group_of[labels] == group
