"""Mosaics rescaled with blurring filters (Pillow's bicubic and Lanczos) after pixelation:
the block model of ``deepcream/mosaic/resampled.py``."""

from __future__ import annotations

import eval_mosaic_art as ea
import numpy as np
import pytest

from deepcream.mosaic import MosaicParams, detect_mosaic
from deepcream.mosaic.resampled import FILTERS, cell_matrices, cell_matrix, fit_cells


def test_block_model_reproduces_a_bicubic_rescale() -> None:
    """The model (step responses of the filter at the block edges) explains a mosaic that
    Pillow rescaled with its bicubic filter to within a few levels, and only at the true
    grid: the same blocks fitted on a grid 0.4 px off leave steps of tens of levels."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(30, 220, (12, 12)).astype(np.uint8)
    src = np.repeat(np.repeat(blocks, 10, axis=0), 10, axis=1)  # 120 x 120, 10 px blocks
    from PIL import Image
    out = np.asarray(Image.fromarray(src).resize((90, 90), Image.BICUBIC)).astype(np.float64)
    box = (8, 8, 82, 82)
    planes = out[8:82, 8:82, None]
    _values, res, _ky, _kx = fit_cells(planes, box, (7.5, 7.5), (0.0, 0.0), "bicubic")
    # Pillow samples its kernel where the model integrates it: a few % of a step (here up
    # to 190 levels), about a level for the median pixel.
    assert np.percentile(np.abs(res), 95) <= 6.0 and np.median(np.abs(res)) <= 1.0
    _values, off, _ky, _kx = fit_cells(planes, box, (7.5, 7.5), (0.4, 0.4), "bicubic")
    assert np.percentile(np.abs(off), 95) >= 5 * np.percentile(np.abs(res), 95)
    a, k0 = cell_matrix(0, 30, 7.5, 0.0, "lanczos")
    assert np.allclose(a.sum(axis=1), 1.0, atol=1e-3)  # each pixel: weights of its cells


@pytest.mark.parametrize("block,seed,condition,floor", [
    (10, 3, "scale75-lanczos", 0.75),   # 7.5 px: 0.808 (0.068 without the block model)
    (14, 4, "scale75-lanczos", 0.8),    # 10.5 px: 0.872 (0)
    (7, 7, "scale75-bicubic", 0.8),     # 5.25 px: 0.882 (0.135)
    (13, 5, "scale50-bicubic", 0.75),   # 6.5 px: 0.814 (0)
])
def test_blurred_rescaled_mosaic_is_found(block, seed, condition, floor) -> None:
    img, truth = ea.photo_with_mosaic(block, seed, condition)
    pred = detect_mosaic(img)
    assert ea.iou(pred, truth) >= floor
    assert np.count_nonzero(pred & ~truth) <= 0.06 * np.count_nonzero(pred)
    off = detect_mosaic(img, params=MosaicParams(resampled=False))
    assert ea.iou(off, truth) <= 0.15


def test_block_model_adds_nothing_after_jpeg() -> None:
    """The model is for lossless input: after JPEG no cell fits within its tolerance, and
    the detection is that of the other searches."""
    img, _truth = ea.photo_with_mosaic(14, 4, "scale75-lanczos")
    jpeg, _t, _s = ea.apply_condition(img, np.zeros(img.shape[:2], bool), "jpeg90")
    on = detect_mosaic(jpeg)
    off = detect_mosaic(jpeg, params=MosaicParams(resampled=False))
    assert np.array_equal(on, off)


def test_band_cell_matrices_equal_the_dense_ones() -> None:
    """``cell_matrices`` interpolates the step responses only near each pixel; its matrices
    are exactly those of ``cell_matrix`` (zero-padded) for every filter."""
    rng = np.random.default_rng(0)
    for trial in range(40):
        n, period = int(rng.integers(20, 200)), float(rng.uniform(3.5, 24))
        grids = [(period * (1 + d), float(rng.uniform(0, 40)) % (period * (1 + d)))
                 for d in np.linspace(-0.05, 0.05, 5)]
        name = FILTERS[trial % len(FILTERS)]
        start = int(rng.integers(0, 3000))
        stacked = cell_matrices(start, n, grids, name)
        for k, (p, f) in enumerate(grids):
            a, _k0 = cell_matrix(start, n, p, f, name)
            assert np.array_equal(stacked[k, :, :a.shape[1]], a)
            assert not stacked[k, :, a.shape[1]:].any()


def test_parallel_searches_give_the_serial_mask() -> None:
    """The blurred-grid and island searches run in a second thread by default; the mask is
    the one of running every search in turn (here a Lanczos-rescaled mosaic, which the
    blurred-grid search finds, and a page with screentone)."""
    img, truth = ea.photo_with_mosaic(10, 3, "scale75-lanczos")
    mosaic, _clean = ea.make_art_set(3, illustrations=0, pages=1, clean_pages=0)
    for image in (img, mosaic[0].image):
        serial = detect_mosaic(image, params=MosaicParams(parallel=False))
        assert serial.any()
        assert np.array_equal(detect_mosaic(image), serial)
    assert ea.iou(detect_mosaic(img), truth) >= 0.75
