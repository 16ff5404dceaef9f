"""The detector's fast paths give exactly what the plain numpy they replace gives: cell sums
in another order (exact on the integer luma), counts in uint8, all periods folded at once,
every cell's constancy at once, combs computed only where there are weights. A fast path
that drifted would move masks by a pixel here and there, which no accuracy floor sees."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deepcream.mosaic import detect, islands
from deepcream.mosaic.cells import Grid, _share, block_sums, sum_last
from deepcream.mosaic.fractional import comb
from deepcream.mosaic.params import DEFAULT_PARAMS
from deepcream.mosaic.period import gradients, grid_steps


@pytest.mark.parametrize("p", [3, 4, 7, 8, 9, 12, 13, 16, 24, 48])
def test_cell_sums_equal_numpys_means_on_integer_luma(p: int) -> None:
    rng = np.random.default_rng(p)
    ncy, ncx = 9, 7
    a = rng.integers(0, 256, (ncy * p, ncx * p)).astype(np.float32)
    cells = a.reshape(ncy, p, ncx, p)
    assert np.array_equal(block_sums(a, p) / np.float32(p * p), cells.mean(axis=(1, 3)))
    assert np.array_equal(block_sums(a, p, 1) / np.float32(p * (p - 1)),
                          cells[:, :, :, 1:].mean(axis=(1, 3)))
    sides = rng.integers(0, 256, (ncy + 1, ncx, p)).astype(np.float32)
    assert np.array_equal(sum_last(sides) / np.float32(p), sides.mean(axis=2))
    hits = rng.random((ncy, p, ncx)) < 0.4
    assert np.array_equal(_share(hits, 1), hits.mean(axis=1))
    assert np.array_equal(_share(sides >= 128, 2), (sides >= 128).mean(axis=2))


def _fold_reference(pos: np.ndarray, min_p: int, max_p: int, near_best: float) -> tuple:
    best = []
    for p in range(min_p, max_p + 1):
        counts = np.bincount(pos % p, minlength=p)
        phase = int(counts.argmax())
        best.append((p, phase, (counts[phase] / len(pos) - 1.0 / p) / (1.0 - 1.0 / p)))
    top = max(s for _, _, s in best)
    return max((b for b in best if b[2] >= near_best * top), key=lambda b: b[0])


def test_folding_all_periods_at_once_equals_one_at_a_time() -> None:
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 300))
        base = int(rng.integers(0, 3000))
        if trial % 2:  # changes on a grid, some off it
            period = int(rng.integers(3, 40))
            pos = base + period * rng.integers(0, 30, n) + (rng.random(n) < 0.2) * rng.integers(0, period, n)
        else:
            pos = base + rng.integers(0, 1200, n)
        assert islands._fold(pos, 3, 48, 0.65) == _fold_reference(pos, 3, 48, 0.65)


def test_every_cells_constancy_at_once_equals_the_gathered_cells() -> None:
    rng = np.random.default_rng(1)
    for p in (3, 5, 9, 16):
        small = rng.integers(0, 3, (200 // p + 2, 260 // p + 2, 3)).astype(np.uint8)
        img = np.repeat(np.repeat(small, p, 0), p, 1)[:200, :260].copy()
        img[rng.random(img.shape[:2]) < 0.002] ^= 1  # a few cells not constant
        for fx, fy in ((0, 0), (1, 2)):
            few = Grid(img, p, fx, fy, (0, 0, 260, 200))
            some = rng.random((few.ncy, few.ncx)) < 0.1  # gathered, cell by cell
            gathered = few.constant_cells(some)
            every = Grid(img, p, fx, fy, (0, 0, 260, 200)).constant_cells(np.ones_like(some))
            assert np.array_equal(gathered, every & some)
            assert 0 < np.count_nonzero(every) < every.size


def _comb_reference(profile: np.ndarray, periods: np.ndarray, start: float) -> tuple:
    x = start + np.arange(profile.shape[-1], dtype=np.float64)
    ang = np.outer(x, 2 * np.pi / periods)
    w = profile.astype(np.float32)
    re = w @ np.cos(ang).astype(np.float32)
    im = w @ np.sin(ang).astype(np.float32)
    total = np.maximum(w.sum(axis=-1, keepdims=True, dtype=np.float64), 1e-9)
    return np.hypot(re, im) / total, np.mod(np.arctan2(im, re) / (2 * np.pi) * periods, periods)


def test_combs_over_sparse_profiles_and_cached_tiles_equal_the_full_sums() -> None:
    rng = np.random.default_rng(2)
    periods = 7.3 * (1 + np.arange(-10, 11) * 0.002)
    for _ in range(50):
        n = int(rng.integers(64, 900))
        line = rng.random(n) * (rng.random(n) < 0.3) * 40
        start = float(rng.integers(0, 2000)) + 0.5
        for got, want in zip(comb(line, periods, start), _comb_reference(line, periods, start), strict=True):
            assert np.array_equal(got, want)
    tiles = (rng.random((20, 128)) < 0.2) * rng.random((20, 128)).astype(np.float32)
    tile_periods = 1.0 / np.arange(1 / 40, 1 / 3, 1 / 512)
    for _ in range(2):  # (the second call reads the cached matrices)
        for got, want in zip(comb(tiles, tile_periods), _comb_reference(tiles, tile_periods, 0.0), strict=True):
            assert np.array_equal(got, want)


def test_isolated_steps_by_dilation_and_binary_erosion_equal_the_plain_minimum() -> None:
    """The neighbours' maximum by dilation, and "the smallest isolated step over n px exceeds
    step_min" as a binary erosion of "it exceeds step_min": the float erosion's pixels."""
    rng = np.random.default_rng(3)
    luma = cv2.resize(rng.integers(0, 256, (60, 70)).astype(np.uint8), (280, 240),
                      interpolation=cv2.INTER_NEAREST)
    gx, gy = gradients(luma)
    for axis, g in ((1, gx), (0, gy)):
        for r in (1, 2):
            nb = np.zeros_like(g)
            for d in range(1, r + 1):
                if axis == 1:
                    nb[:, d:-d] = np.maximum(nb[:, d:-d], np.maximum(g[:, :-2 * d], g[:, 2 * d:]))
                else:
                    nb[d:-d] = np.maximum(nb[d:-d], np.maximum(g[:-2 * d], g[2 * d:]))
            for along in (1, 2):
                n = along + 2
                want = cv2.erode(g - nb, np.ones((n, 1) if axis == 1 else (1, n), np.uint8)) > DEFAULT_PARAMS.step_min
                assert 0 < np.count_nonzero(want) < want.size
                assert np.array_equal(grid_steps(g, axis, r, along), want)


@pytest.mark.parametrize("min_area", [1, 1 << 16])
def test_regions_labelled_in_separate_boxes_equal_one_labelling(min_area: int,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``mask_regions`` labels boxes cut apart along empty rows and columns: the same regions,
    pixels and raster order as one labelling of the whole mask."""
    real = detect._separate_boxes
    monkeypatch.setattr(detect, "_separate_boxes", lambda mask: real(mask, min_area))
    rng = np.random.default_rng(7)
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(1, 300, 2))
        mask = np.zeros((h, w), bool)
        for _ in range(int(rng.integers(0, 12))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            mask[y:y + int(rng.integers(1, 60)), x:x + int(rng.integers(1, 60))] = True
        if trial % 3 == 0:
            mask |= rng.random((h, w)) < 0.05
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=4)
        firsts = [np.unravel_index(np.argmax(labels == k), labels.shape) for k in range(1, n)]
        expected = []
        for k in sorted(range(1, n), key=lambda k: firsts[k - 1]):
            x, y, bw, bh = (int(v) for v in stats[k, :4])
            expected.append(((slice(y, y + bh), slice(x, x + bw)), labels[y:y + bh, x:x + bw] == k))
        found = list(detect.mask_regions(mask))
        assert [sl for sl, _ in found] == [sl for sl, _ in expected]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(found, expected, strict=True))
