"""Regions: components, DCP's box rule (against a literal re-implementation), coverage of every
region pixel, crops with DCP's out-of-image padding, paste-back."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from PIL import Image

from deepcream import regions as rg


def reference_box(xs: list[int], ys: list[int], width: int, height: int) -> tuple:
    """DCP's box rule written literally from the shared description (docs: steps 1-4)."""
    min_x, max_x, min_y, max_y = min(xs), max(xs), min(ys), max(ys)
    s = int(max(max_x - min_x, max_y - min_y) * 1.5)
    if s > min(width, height):
        s = min(width, height)
    elif s < 256:
        s = 256
    cx = (min_x + max_x) // 2
    cy = (min_y + max_y) // 2
    x1, x2 = cx - s // 2, cx + s // 2
    y1, y2 = cy - s // 2, cy + s // 2
    if (y1 < 0 or y2 > height - 1) and (x1 < 0 or x2 > width - 1):
        if x1 < 0 and y1 < 0:
            box = (0, 0, s, s)
        elif x2 > width - 1 and y1 < 0:
            box = (width - s - 1, 0, width - 1, s)
        elif x1 < 0 and y2 > height - 1:
            box = (0, height - s - 1, s, height - 1)
        elif x2 > width - 1 and y2 > height - 1:
            box = (width - s - 1, height - s - 1, width - 1, height - 1)
        else:
            box = (x1, y1, x2, y2)
    else:
        if x1 < 0:
            x2 += -x1
            x1 = 0
        if x2 > width - 1:
            x1 -= x2 - (width - 1)
            x2 = width - 1
        if y1 < 0:
            y2 += -y1
            y1 = 0
        if y2 > height - 1:
            y1 -= y2 - (height - 1)
            y2 = height - 1
        box = (x1, y1, x2, y2)
    if box[2] > width or box[3] > height:
        box = (min_x, min_y, max_x, max_y)
    return box


def flood_regions(mask: np.ndarray) -> list[set[tuple[int, int]]]:
    """Plain BFS 4-connected components as (x, y) sets, for comparison."""
    seen = np.zeros_like(mask)
    out = []
    h, w = mask.shape
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not seen[y, x]:
                comp, queue = set(), deque([(x, y)])
                seen[y, x] = True
                while queue:
                    cx, cy = queue.popleft()
                    comp.add((cx, cy))
                    for nx, ny in ((cx + 1, cy), (cx - 1, cy), (cx, cy + 1), (cx, cy - 1)):
                        if 0 <= nx < w and 0 <= ny < h and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            queue.append((nx, ny))
                out.append(comp)
    return out


def region_pixels(region: rg.Region) -> set[tuple[int, int]]:
    ys, xs = np.nonzero(region.own)
    return {(int(x) + region.min_x, int(y) + region.min_y) for x, y in zip(xs, ys, strict=True)}


def random_shape(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A mask with one random blob or stroke anchored anywhere, edges and corners included."""
    mask = np.zeros((height, width), bool)
    kind = rng.integers(4)
    # Anchor: a quarter of the cases at an edge or a corner.
    ax = int(rng.choice([0, width - 1, rng.integers(width)]))
    ay = int(rng.choice([0, height - 1, rng.integers(height)]))
    if kind == 0:  # rectangle
        w, h = rng.integers(1, max(2, width // 2) + 1), rng.integers(1, max(2, height // 2) + 1)
        x0, y0 = min(ax, width - w), min(ay, height - h)
        mask[y0:y0 + h, x0:x0 + w] = True
    elif kind == 1:  # random walk stroke
        x, y = ax, ay
        for _ in range(int(rng.integers(1, 400))):
            mask[y, x] = True
            x = int(np.clip(x + rng.integers(-1, 2), 0, width - 1))
            y = int(np.clip(y + rng.integers(-1, 2), 0, height - 1))
    elif kind == 2:  # single pixel
        mask[ay, ax] = True
    else:  # whole row or column at the anchor
        if rng.integers(2):
            mask[ay, :] = True
        else:
            mask[:, ax] = True
    return mask


def test_find_regions_matches_flood_fill() -> None:
    rng = np.random.default_rng(1)
    for _ in range(40):
        mask = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < 0.45
        got = rg.find_regions(mask)
        want = flood_regions(mask)
        assert sorted(len(r) for r in want) == sorted(r.pixels for r in got)
        assert [r.pixels for r in got] == sorted((r.pixels for r in got), reverse=True)
        got_sets = [region_pixels(r) for r in got]
        assert sorted(map(sorted, got_sets)) == sorted(map(sorted, want))
        for r in got:
            xs = [x for x, _ in region_pixels(r)]
            ys = [y for _, y in region_pixels(r)]
            assert r.bounds == (min(xs), min(ys), max(xs), max(ys))


def test_diagonal_pixels_are_separate_regions() -> None:
    mask = np.eye(5, dtype=bool)
    assert len(rg.find_regions(mask)) == 5
    assert rg.find_regions(np.zeros((3, 3), bool)) == []


SIZES = [(2604, 2513), (1000, 700), (300, 900), (256, 256), (257, 300), (255, 255),
         (200, 120), (100, 400), (50, 50), (1, 1), (1, 300), (300, 1), (3, 2)]


@pytest.mark.parametrize("width,height", SIZES)
def test_dcp_box_matches_literal_rule(width: int, height: int) -> None:
    rng = np.random.default_rng(width * 7919 + height)
    for _ in range(40):
        mask = random_shape(rng, width, height)
        for region in rg.find_regions(mask):
            pixels = region_pixels(region)
            xs = [x for x, _ in pixels]
            ys = [y for _, y in pixels]
            assert rg.dcp_box(region, width, height) == reference_box(xs, ys, width, height)


@pytest.mark.parametrize("width,height", SIZES)
def test_region_boxes_fill_every_pixel_once(width: int, height: int) -> None:
    rng = np.random.default_rng(width + height * 31)
    for _ in range(40):
        mask = random_shape(rng, width, height)
        for region in rg.find_regions(mask):
            boxes = rg.region_boxes(region, width, height)
            dcp = rg.dcp_box(region, width, height)
            dcp_sel = rg._own_in_box(region, dcp)
            # DCP's box comes first whenever it holds region pixels, and only then.
            assert (boxes[0][0] == dcp) == bool(dcp_sel.any())
            if dcp_sel.any():
                assert np.array_equal(boxes[0][1], dcp_sel)
            assert 1 <= len(boxes) <= 2
            assert all(select.any() for _, select in boxes)
            count = np.zeros((height, width), np.int32)
            for box, select in boxes:
                x1, y1, x2, y2 = box
                assert select.shape == (y2 - y1, x2 - x1)
                hits = np.zeros((height, width), np.int32)
                rg.paste(hits, box, np.ones(select.shape, np.int32), select)
                count += hits
            own = np.zeros((height, width), bool)
            own[region.min_y:region.max_y + 1, region.min_x:region.max_x + 1] = region.own
            assert np.array_equal(count, own.astype(np.int32))
            if len(boxes) == 2:  # the extra box lies inside the image
                x1, y1, x2, y2 = boxes[1][0]
                assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def test_dcp_box_defects_are_the_documented_ones() -> None:
    # Bottom-right corner region on a large image: DCP's box ends at W-1/H-1.
    mask = np.zeros((600, 800), bool)
    mask[590:600, 780:800] = True
    region = rg.find_regions(mask)[0]
    assert rg.dcp_box(region, 800, 600) == (800 - 256 - 1, 600 - 256 - 1, 799, 599)
    boxes = rg.region_boxes(region, 800, 600)
    assert len(boxes) == 2 and boxes[1][1].sum() == 10 + 20 - 1  # last row + last column
    # Small image: tight fallback box.
    mask = np.zeros((100, 120), bool)
    mask[10:20, 30:50] = True
    region = rg.find_regions(mask)[0]
    assert rg.dcp_box(region, 120, 100) == (30, 10, 49, 19)


@pytest.mark.parametrize("width,height", [(100, 80), (300, 80), (80, 300), (255, 255)])
def test_empty_tight_fallback_box_is_replaced_by_a_cover_box(width: int, height: int) -> None:
    """On images < 256 px on a side, a 1-px-high or -wide region (or a single pixel) gets
    DCP's tight fallback box, which is empty: one cover box inside the image fills it all."""
    shapes = [(0, 0, 30, 1), (10, height - 1, 40, 1), (5, height // 2, 50, 1),
              (0, 5, 1, 40), (width - 1, 10, 1, 50), (width // 2, 3, 1, 60),
              (0, 0, 1, 1), (width - 1, height - 1, 1, 1), (width // 2, height // 2, 1, 1)]
    empty = 0
    for x, y, w, h in shapes:
        mask = np.zeros((height, width), bool)
        mask[y:y + h, x:x + w] = True
        region = rg.find_regions(mask)[0]
        x1, y1, x2, y2 = rg.dcp_box(region, width, height)
        if (x2 - x1) * (y2 - y1) != 0:
            continue  # the corner/shift rule gave a real box (covered by the tests above)
        empty += 1
        boxes = rg.region_boxes(region, width, height)
        assert len(boxes) == 1
        (bx1, by1, bx2, by2), select = boxes[0]
        assert 0 <= bx1 < bx2 <= width and 0 <= by1 < by2 <= height
        assert (bx2 - bx1, by2 - by1) == (min(width, 256), min(height, 256))
        filled = np.zeros((height, width), bool)
        filled[by1:by2, bx1:bx2] = select
        assert np.array_equal(filled, mask)
    assert empty >= 5
    # A 2-px-high region keeps DCP's 1-px-high tight box first, plus a box for its last row
    # and column.
    mask = np.zeros((height, width), bool)
    mask[20:22, 10:30] = True
    region = rg.find_regions(mask)[0]
    boxes = rg.region_boxes(region, width, height)
    assert boxes[0][0] == rg.dcp_box(region, width, height) == (10, 20, 29, 21)
    assert boxes[0][1].sum() == 19 and boxes[1][1].sum() == 21


def test_crop_pads_outside_with_fill() -> None:
    a = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    c = rg.crop(a, (-1, 0, 3, 2), 0)
    assert c.shape == (2, 4, 3)
    assert (c[:, 0] == 0).all() and np.array_equal(c[:, 1:], a[0:2, 0:3])
    h = rg.crop(np.zeros((5, 6), bool), (4, 3, 8, 6), True)
    assert h.shape == (3, 4) and h[:2, :2].sum() == 0 and h[2:].all() and h[:, 2:].all()
    inside = rg.crop(a, (1, 1, 3, 3))
    inside[...] = 0
    assert a[1, 1, 0] != 0  # a copy, never a view into the input


def test_resize_nearest_matches_pillow_nearest() -> None:
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 256, (300, 411, 3), dtype=np.uint8)
    holes = rng.random((300, 411)) < 0.3
    rgb, h = rg.resize_nearest(crop, holes)
    want = np.asarray(Image.fromarray(crop).resize((256, 256), Image.Resampling.NEAREST))
    assert np.array_equal(rgb, want)
    want_h = np.asarray(Image.fromarray(holes.astype(np.uint8) * 255).resize(
        (256, 256), Image.Resampling.NEAREST)) > 0
    assert np.array_equal(h, want_h)
    # Same sampling for image and mask: a hole pixel maps to where its color maps.
    marked = crop.copy()
    marked[holes] = (0, 255, 0)
    m_rgb, _ = rg.resize_nearest(marked, holes)
    assert np.array_equal(np.all(m_rgb == (0, 255, 0), axis=2) & h, h)


def test_flip_box_is_an_involution_and_mirrors() -> None:
    box = (-1, 3, 255, 259)
    assert rg.flip_box(rg.flip_box(box, 300, 400, True, True), 300, 400, True, True) == box
    assert rg.flip_box((0, 0, 10, 20), 100, 50, True, False) == (90, 0, 100, 20)
    assert rg.flip_box((0, 0, 10, 20), 100, 50, False, True) == (0, 30, 10, 50)


@pytest.mark.parametrize("width,height", [(800, 600), (300, 300), (260, 1000), (200, 150),
                                          (40, 300)])
def test_dcp_box_at_every_edge_and_corner(width: int, height: int) -> None:
    """Rectangles touching each corner and each edge's middle, small to image-filling."""
    for rw, rh in [(1, 1), (5, 30), (60, 8), (width // 2, height // 3), (width, 3), (2, height)]:
        rw, rh = min(rw, width), min(rh, height)
        for ax in (0, (width - rw) // 2, width - rw):
            for ay in (0, (height - rh) // 2, height - rh):
                mask = np.zeros((height, width), bool)
                mask[ay:ay + rh, ax:ax + rw] = True
                region = rg.find_regions(mask)[0]
                want = reference_box([ax, ax + rw - 1], [ay, ay + rh - 1], width, height)
                assert rg.dcp_box(region, width, height) == want
                covered = sum(int(sel.sum()) for _, sel in rg.region_boxes(region, width, height))
                assert covered == rw * rh
