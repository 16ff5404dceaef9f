"""Engines: DCP's exact model-input/output arithmetic, ONNX batching, the classical engine's
hole-only changes, and engine selection."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from deepcream import engines
from deepcream.errors import InputError, ModelError


def random_crops(n: int, size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    holes = np.zeros((n, size, size), bool)
    for i in range(n):
        y, x = rng.integers(0, size // 2, 2)
        holes[i, y:y + size // 4, x:x + size // 3] = True
    return crops, holes


def test_model_inputs_follow_dcp() -> None:
    crops, holes = random_crops(2, 16)
    x, m = engines.dcp_model_inputs(crops, holes, "bar")
    assert x.dtype == np.float32 and m.shape == (2, 16, 16, 1)
    assert np.all(x[holes] == -1.0)
    keep = ~holes
    assert np.array_equal(x[keep], (crops[keep].astype(np.float32) / np.float32(255)) * 2 - 1)
    assert np.array_equal(m[..., 0], keep.astype(np.float32))
    xm, _ = engines.dcp_model_inputs(crops, holes, "mosaic")
    assert np.array_equal(xm[holes], crops[holes].astype(np.float32) / np.float32(255) * 2 - 1)


def test_output_conversion_truncates() -> None:
    p = np.array([-1.0, 1.0, 0.0, 0.999, -0.999], np.float32)
    assert engines.dcp_output_to_uint8(p).tolist() == [0, 255, 127, 254, 0]


@pytest.fixture(scope="module")
def bar_engine(converted_models) -> engines.OnnxEngine:
    return engines.OnnxEngine(converted_models / "bar.onnx", "bar")


def test_onnx_engine_matches_session_and_batches(bar_engine) -> None:
    crops, holes = random_crops(3, seed=1)
    done = []
    out = bar_engine.inpaint(crops, holes,
                             on_filled=lambda start, filled: done.append((start, filled.copy())))
    assert out.shape == crops.shape and out.dtype == np.uint8
    # every crop reported once, as it finished, with its result
    assert sorted(start for start, _ in done) == [0, 1, 2]
    for start, filled in done:
        assert np.array_equal(filled, out[start:start + len(filled)])
    x, m = engines.dcp_model_inputs(crops, holes, "bar")
    want = engines.dcp_output_to_uint8(bar_engine.session.run(x, m))
    # One crop per worker call vs one batch of 3: same math, summation order may differ by
    # float ulps.
    assert np.abs(out.astype(int) - want).max() <= 1
    # Kept pixels come back as DCP's truncated round trip of the input: at most 1 lower.
    keep = ~holes
    diff = crops[keep].astype(int) - out[keep].astype(int)
    assert diff.min() >= 0 and diff.max() <= 1
    assert bar_engine.describe().startswith("onnx bar.onnx")


def test_onnx_engine_rejects_wrong_shapes(bar_engine) -> None:
    crops, holes = random_crops(1, size=64)
    with pytest.raises(ValueError):
        bar_engine.inpaint(crops, holes)


def test_classical_bar_changes_only_holes_at_native_size() -> None:
    eng = engines.ClassicalEngine("bar")
    assert eng.input_size is None
    rng = np.random.default_rng(2)
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(300, 280), (50, 90)]]
    holes = [np.zeros(c.shape[:2], bool) for c in crops]
    holes[0][100:120, 30:200] = True
    holes[1][10:20, 10:20] = True
    out = eng.inpaint(crops, holes)
    for c, h, o in zip(crops, holes, out, strict=True):
        assert o.shape == c.shape
        assert np.array_equal(o[~h], c[~h])
    batch, bholes = random_crops(2, 64, seed=3)
    bout = eng.inpaint(batch, bholes)
    assert bout.shape == batch.shape and np.array_equal(bout[~bholes], batch[~bholes])


def test_classical_bar_fills_smoothly() -> None:
    yy, xx = np.mgrid[0:128, 0:128]
    img = np.dstack([xx * 2, yy * 2, (xx + yy)]).astype(np.uint8)
    holes = np.zeros((128, 128), bool)
    holes[60:68, 10:118] = True
    damaged = img.copy()
    damaged[holes] = (0, 255, 0)
    out = engines.ClassicalEngine("bar").inpaint(damaged[None], holes[None])[0]
    err = np.abs(out[holes].astype(int) - img[holes]).mean()
    assert err < 4  # a linear gradient is recovered almost exactly


def test_block_size_estimate_and_mosaic_smoothing() -> None:
    yy, xx = np.mgrid[0:96, 0:96]
    clean = np.dstack([xx * 2.5, yy * 2.5, 128 + 0 * xx]).astype(np.uint8)
    small = cv2.resize(clean, (16, 16), interpolation=cv2.INTER_AREA)
    mosaic = cv2.resize(small, (96, 96), interpolation=cv2.INTER_NEAREST)
    holes = np.ones((96, 96), bool)
    assert 5.0 <= engines.estimate_block_size(mosaic, holes) <= 6.5
    assert engines.find_block_grid(mosaic, holes, 1) == (6, 0)
    shifted = mosaic[2:, 4:]  # blocks now start at x = 2 (mod 6) and y = 4 (mod 6)
    assert engines.find_block_grid(shifted, holes[2:, 4:], 1) == (6, 2)
    assert engines.find_block_grid(shifted, holes[2:, 4:], 0) == (6, 4)
    assert engines.find_block_grid(clean, holes, 1) is None  # a gradient has no grid
    out = engines.ClassicalEngine("mosaic").inpaint(mosaic[None], holes[None])[0]
    assert np.abs(out.astype(int) - clean).mean() < np.abs(mosaic.astype(int) - clean).mean()


def test_get_engine_selection(tmp_path, converted_models) -> None:
    assert isinstance(engines.get_engine("bar", "classical"), engines.ClassicalEngine)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert isinstance(engines.get_engine("mosaic", "auto", empty), engines.ClassicalEngine)
    with pytest.raises(ModelError, match="no bar model"):
        engines.get_engine("bar", "onnx", empty)
    eng = engines.get_engine("mosaic", "auto", converted_models)
    assert isinstance(eng, engines.OnnxEngine) and eng.mode == "mosaic"
    assert engines.get_engine("mosaic", "onnx", converted_models) is eng  # cached session
    with pytest.raises(InputError):
        engines.get_engine("bar", "magic")
    with pytest.raises(InputError):
        engines.get_engine("blur", "classical")


_MALLOC_PROBE = """
import numpy as np
from deepcream.malloc import tune_malloc

def rss_mb():
    with open("/proc/self/status") as fh:
        return int(next(r for r in fh if r.startswith("VmRSS")).split()[1]) / 1024

tuned = tune_malloc()
assert tune_malloc() is tuned  # idempotent
big = np.ones(20 << 20, np.uint8)
del big  # untuned, this raises glibc's mmap threshold to 20 MB
before = rss_mb()
buf = np.ones(8 << 20, np.uint8)
grown = rss_mb() - before
del buf
print(tuned, grown, rss_mb() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_tune_malloc_returns_large_freed_buffers_to_the_os() -> None:
    """After tune_malloc, a freed buffer of a few MB leaves RSS even after a larger block was
    freed (glibc's dynamic threshold would otherwise keep such buffers in the heap). In a
    fresh process: in this one, free heap space left by earlier tests would be reused."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", _MALLOC_PROBE], check=True, text=True,
                         capture_output=True).stdout.split()
    if out[0] != "True":
        pytest.skip("not glibc")
    grown, left = float(out[1]), float(out[2])
    assert grown > 6  # the buffer was really resident
    assert left < 2  # and went back to the OS when freed


@pytest.mark.parametrize("side", [40, 120, 600])
def test_mosaic_fill_of_a_flat_hole_is_bounded_and_exact(side: int) -> None:
    """Issue 11 item 2: a flat hole has no color change, so the run-length estimate used to be
    its pair count (sigma 7,140 for 120x120, minutes of blur). It is bounded by the hole's
    extent and the largest block looked for, and the flat color comes back unchanged."""
    crop = np.full((side + 80, side + 80, 3), (250, 240, 230), np.uint8)
    holes = np.zeros(crop.shape[:2], bool)
    holes[40:40 + side, 40:40 + side] = True
    size = engines.estimate_block_size(crop, holes)
    assert 1.0 <= size <= min(side, engines._MAX_BLOCK)
    small = np.zeros_like(holes)
    small[5:8, 5:7] = True  # a 3x2 hole: the estimate cannot exceed its extent
    assert engines.estimate_block_size(crop, small) <= 3
    out = engines.ClassicalEngine("mosaic").inpaint([crop], [holes])[0]
    assert np.array_equal(out, crop)


def test_exemplar_bar_fill_continues_a_line_and_changes_only_holes() -> None:
    """A dark line crossing a bar over a flat background: Telea leaves a grey smudge, the
    exemplar fill (PatchMatch completions averaged with Telea) continues the line dark."""
    from deepcream import classical

    if not classical.patchmatch_available():
        pytest.skip("pypatchmatch's native library is not available")
    img = np.full((96, 128, 3), (230, 200, 170), np.uint8)
    cv2.line(img, (0, 48), (127, 48), (20, 20, 30), 3)
    holes = np.zeros((96, 128), bool)
    holes[:, 56:68] = True
    damaged = img.copy()
    damaged[holes] = (0, 255, 0)
    eng = engines.ClassicalEngine("bar", method="exemplar")
    out = eng.inpaint([damaged], [holes])[0]
    telea = engines.ClassicalEngine("bar", method="telea").inpaint([damaged], [holes])[0]
    assert np.array_equal(out[~holes], damaged[~holes])
    line = holes & (np.abs(np.arange(96) - 48) <= 1)[:, None]
    err = np.abs(out[holes].astype(int) - img[holes]).mean()
    err_telea = np.abs(telea[holes].astype(int) - img[holes]).mean()
    assert out[line].mean() < telea[line].mean()  # darker where the line runs
    assert err < err_telea
    assert eng.bar_method_for(engines.STRUCTURE_MAX_PIXELS + 1) == "exemplar"


def test_backprojected_mosaic_keeps_block_means_and_the_outside() -> None:
    """The mosaic fill reproduces the mosaic's block colors on average (back-projection),
    is closer to the clean picture than the mosaic, and leaves pixels outside untouched."""
    from deepcream.examples.drawn_art import draw_cel
    from deepcream.examples.make_example import pixelate

    clean = draw_cel(256, 192, 3)
    box = (64, 48, 64 + 12 * 10, 48 + 12 * 8)
    mosaic = pixelate(clean, box, 12)
    holes = np.zeros(clean.shape[:2], bool)
    holes[box[1]:box[3], box[0]:box[2]] = True
    out = engines.ClassicalEngine("mosaic").inpaint([mosaic], [holes])[0]
    assert np.array_equal(out[~holes], mosaic[~holes])
    region = (slice(box[1], box[3]), slice(box[0], box[2]))
    means = out[region].astype(float).reshape(8, 12, 10, 12, 3).mean(axis=(1, 3))
    want = mosaic[region][::12, ::12].astype(float)
    assert np.abs(means - want).mean() < 4.0
    err = np.abs(out[holes].astype(float) - clean[holes]) ** 2
    err_mosaic = np.abs(mosaic[holes].astype(float) - clean[holes]) ** 2
    assert err.mean() < err_mosaic.mean()


def test_classical_method_is_chosen_once_per_job() -> None:
    """A chunked (streamed) job and a one-call job get the same fill: the auto method is fixed
    per image by ``for_job``, not per engine call."""
    engine = engines.ClassicalEngine("bar")
    assert engine.method == "auto"
    small = np.zeros((1, 64, 64), bool)
    small[0, 20:30, 20:30] = True
    streamed = engine.for_job(500, None)
    assert streamed.method == "telea" and streamed.describe().startswith("classical opencv-telea")
    picked = engine.for_job(1, small)
    assert picked.method == engine.bar_method_for(100, 1, picked_window(small))
    assert picked.for_job(1, small) is picked  # a fixed method stays fixed
    assert engines.ClassicalEngine("mosaic").for_job(1, small).mode == "mosaic"


def picked_window(holes: np.ndarray) -> int:
    from deepcream.classical import STRUCTURE_WINDOW_MARGIN
    from deepcream.regions import hole_window

    ys, xs = hole_window(holes[0], STRUCTURE_WINDOW_MARGIN)
    return (ys.stop - ys.start) * (xs.stop - xs.start)



def _olive_cyan_bar() -> tuple[np.ndarray, np.ndarray]:
    crop = np.zeros((96, 96, 3), np.uint8)
    crop[:, :48] = (96, 112, 0)
    crop[:, 48:] = (48, 208, 208)
    holes = np.zeros((96, 96), bool)
    holes[20:76, 28:68] = True
    crop[holes] = (0, 255, 0)
    return crop, holes


def _lean(img: np.ndarray) -> np.ndarray:
    return img[..., 1].astype(int) - np.maximum(img[..., 0], img[..., 2]).astype(int)


def test_classical_bar_fill_does_not_mix_the_paint_color() -> None:
    """Olive (R > B) and cyan (B > R) are not green (lean <= 16), but their average is: a
    green bar over their boundary must not come back green where Telea mixes them (without
    the limit: ~400 hole px lean > 30, up to 71) (issue 12)."""
    crop, holes = _olive_cyan_bar()
    out = engines.ClassicalEngine("bar", method="telea").inpaint([crop], [holes])[0]
    assert int((_lean(out)[holes] > 30).sum()) == 0
    assert np.array_equal(out[~holes], crop[~holes])


def test_paint_lean_limit_lowers_only_mixed_hole_pixels() -> None:
    from deepcream.classical import limit_paint_lean

    crop, holes = _olive_cyan_bar()
    filled = crop.copy()
    filled[holes] = (72, 160, 104)  # olive + cyan / 2: lean 56
    filled[holes & (np.arange(96) < 40)[None, :]] = (96, 112, 0)  # a plain olive part
    out = limit_paint_lean(crop, holes, filled)
    assert np.array_equal(out[~holes], crop[~holes])
    assert np.array_equal(out[holes & (np.arange(96) < 40)[None, :]],
                          filled[holes & (np.arange(96) < 40)[None, :]])
    assert int(_lean(out)[holes].max()) <= 16 + 8 + 2
    # only the paint's strong channel (G) is lowered
    assert np.array_equal(out[holes][:, [0, 2]], filled[holes][:, [0, 2]])


@pytest.mark.parametrize("pattern", ["corner", "stripes"])
def test_structure_fill_does_not_mix_the_paint_color(pattern: str) -> None:
    """The structure fill averages directions: over an olive corner or olive/cyan stripes it
    made green (without the limit: 83 / 541 hole px lean > 30, up to 67 / 52)."""
    from deepcream.classical import structure_fill

    crop = np.zeros((96, 96, 3), np.uint8)
    crop[:] = (48, 208, 208)
    if pattern == "corner":
        crop[:48, :48] = (96, 112, 0)
    else:
        crop[:, (np.arange(96) // 6) % 2 == 0] = (96, 112, 0)
    holes = np.zeros((96, 96), bool)
    holes[28:68, 28:68] = True
    crop[holes] = (0, 255, 0)
    out = structure_fill(crop, holes)
    assert int((_lean(out)[holes] > 30).sum()) == 0
    assert np.array_equal(out[~holes], crop[~holes])
