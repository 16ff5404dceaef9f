"""Pipeline: pixels outside the regions untouched, no mask color left, alpha and image modes,
variations, mosaic pairing, stages, and ONNX parity with a by-hand DCP run."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from test_regions import reference_box

import deepcream
from deepcream import pipeline, pngdecode
from deepcream import regions as rg
from deepcream.engines import ClassicalEngine, OnnxEngine
from deepcream.errors import InputError
from deepcream.options import DecensorOptions

GREEN = (0, 255, 0)


def _prepare(image, engine=None, input_size=256, **options) -> pipeline.Job:
    """``pipeline.prepare`` with the crops cut for ``engine`` (else ``input_size``)."""
    size = engine.input_size if engine is not None else input_size
    return pipeline.prepare(image, DecensorOptions(**options), input_size=size)


def scene(width: int = 320, height: int = 280, seed: int = 0) -> np.ndarray:
    """A smooth, line-art-like RGB picture (no exact mask color)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(xx / 23 + seed), 128 + 90 * np.cos(yy / 17),
                    (xx + yy) * 255 / (width + height)], axis=2)
    rgb[(xx.astype(int) + yy.astype(int) * 3) % 41 < 2] = 20  # dark strokes
    return np.clip(rgb, 0, 254).astype(np.uint8)


def paint_bars(rgb: np.ndarray, color=GREEN) -> np.ndarray:
    """Bars in the middle, on the right edge and in the bottom-right corner (DCP's box misses
    the last row/column there, so the extra box is exercised)."""
    out = rgb.copy()
    h, w = out.shape[:2]
    out[h // 5:h // 5 + 15, w // 8:w // 2] = color
    out[2 * h // 5:2 * h // 3, w - 12:w] = color
    out[h - 9:h, w - 30:w] = color
    for i in range(30):  # a diagonal stroke
        out[h // 2 + i, w // 5 + i:w // 5 + 6 + i] = color
    return out


def mask_of(rgb: np.ndarray, color=GREEN) -> np.ndarray:
    return np.all(rgb == np.array(color, np.uint8), axis=2)


@pytest.fixture(scope="module")
def onnx_engines(converted_models) -> dict[str, OnnxEngine]:
    return {kind: OnnxEngine(converted_models / f"{kind}.onnx", kind) for kind in ("bar", "mosaic")}


def engine_for(name: str, kind: str, request: pytest.FixtureRequest):
    if name == "classical":
        return ClassicalEngine(kind)
    return request.getfixturevalue("onnx_engines")[kind]


@pytest.mark.parametrize("engine_name,alpha,variations", [
    ("classical", False, 1), ("classical", True, 1), ("classical", False, 4),
    ("classical", True, 4), ("onnx", False, 4), ("onnx", True, 2)])
def test_bar_outside_identical_and_no_mask_color(engine_name, alpha, variations, request) -> None:
    engine = engine_for(engine_name, "bar", request)
    colored = paint_bars(scene())
    holes = mask_of(colored)
    if alpha:
        a = np.tile(np.linspace(0, 255, colored.shape[1]).astype(np.uint8), (colored.shape[0], 1))
        img = Image.fromarray(np.dstack([colored, a]), "RGBA")
    else:
        img = Image.fromarray(colored)
    before = np.asarray(img).copy()
    result = deepcream.decensor(img, engine=engine, variations=variations)
    assert np.array_equal(np.asarray(img), before)  # input untouched
    assert len(result.images) == variations
    assert result.regions == 4
    assert result.engine.startswith(engine_name)
    for out_img in result.images:
        assert out_img.mode == ("RGBA" if alpha else "RGB")
        out = np.asarray(out_img)
        assert np.array_equal(out[~holes], before[~holes])
        if alpha:
            assert np.array_equal(out[..., 3], before[..., 3])
        assert not mask_of(out[..., :3]).any()
        # Filled, not left as is: every hole pixel changed.
        assert (out[..., :3][holes] != before[..., :3][holes]).any(axis=1).all()


@pytest.mark.parametrize("engine_name", ["classical", "onnx"])
@pytest.mark.parametrize("alpha", [False, True])
def test_mosaic_outside_identical_to_original(engine_name, alpha, request) -> None:
    engine = engine_for(engine_name, "mosaic", request)
    clean = scene(300, 260, seed=2)
    original = clean.copy()
    y0, y1, x0, x1 = 80, 160, 100, 204
    block = 8
    small = cv2.resize(clean[y0:y1, x0:x1], ((x1 - x0) // block, (y1 - y0) // block),
                       interpolation=cv2.INTER_AREA)
    original[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    colored = original.copy()
    colored[y0:y1, x0:x1] = GREEN
    holes = mask_of(colored)
    if alpha:
        a = np.full(original.shape[:2], 200, np.uint8)
        a[:10] = 0
        orig_img = Image.fromarray(np.dstack([original, a]), "RGBA")
    else:
        orig_img = Image.fromarray(original)
    result = deepcream.decensor(Image.fromarray(colored), mode="mosaic", original=orig_img,
                               engine=engine, variations=2)
    want = np.asarray(orig_img)
    for out_img in result.images:
        out = np.asarray(out_img)
        assert out.shape == want.shape
        assert np.array_equal(out[~holes], want[~holes])
    if engine_name == "classical":
        # Smoothing the blocks must get closer to the clean picture than the mosaic is.
        out = np.asarray(result.images[0])[..., :3].astype(float)
        err_out = np.abs(out[holes] - clean[holes]).mean()
        err_mosaic = np.abs(original[holes].astype(float) - clean[holes]).mean()
        assert err_out < err_mosaic


def dcp_by_hand(colored: np.ndarray, session, variation: int, color=GREEN,
                original: np.ndarray | None = None):
    """DeepCreamPy's loop written out with PIL, one region per model call (mosaic mode when
    ``original`` is given: mask from ``colored``, pixels from ``original``, holes kept).
    Returns the output and the mask of pixels DCP's own boxes fill."""
    flips = [[], [Image.Transpose.FLIP_LEFT_RIGHT], [Image.Transpose.FLIP_TOP_BOTTOM],
             [Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM]][variation]
    ori = Image.fromarray(colored if original is None else original)
    col = Image.fromarray(colored)
    for f in flips:
        ori, col = ori.transpose(f), col.transpose(f)
    arr = np.asarray(ori)
    width, height = ori.size
    hole = mask_of(np.asarray(col), color)
    mask_img = Image.fromarray(np.repeat((~hole)[..., None], 3, 2).astype(np.uint8) * 255)
    out = arr.copy()
    filled = np.zeros(hole.shape, bool)
    labels, n = ndimage.label(hole)
    for label in range(1, n + 1):
        ys, xs = np.nonzero(labels == label)
        box = reference_box(list(xs), list(ys), width, height)
        if box[2] <= box[0] or box[3] <= box[1]:
            continue  # empty tight fallback box (1-px-high/-wide region): DCP's PIL resize fails
        crop = np.asarray(ori.crop(box).resize((256, 256), Image.Resampling.NEAREST),
                          np.float32) / np.float32(255.0)
        m = np.asarray(mask_img.crop(box).resize((256, 256), Image.Resampling.NEAREST),
                       np.float32) / np.float32(255.0)
        if original is None:
            crop[np.all(m == 0, axis=-1)] = 0.0
        x = crop * np.float32(2.0) - np.float32(1.0)
        pred = session.run(x[None], m[None, ..., :1])[0]
        pred = (np.float32(255.0) * ((pred + np.float32(1.0)) / np.float32(2.0))).astype(np.uint8)
        bw, bh = box[2] - box[0], box[3] - box[1]
        pred = np.asarray(Image.fromarray(pred).resize((bw, bh), Image.Resampling.BICUBIC))
        for y, x_ in zip(ys, xs, strict=True):
            if box[0] <= x_ < box[2] and box[1] <= y < box[3]:
                px = pred[y - box[1], x_ - box[0]].copy()
                if original is None and tuple(px) == color:  # deepcream's documented nudge
                    px[0] = color[0] + 1
                out[y, x_] = px
                filled[y, x_] = True
    out_img, filled_img = Image.fromarray(out), Image.fromarray(filled)
    for f in reversed(flips):
        out_img, filled_img = out_img.transpose(f), filled_img.transpose(f)
    return np.asarray(out_img), np.asarray(filled_img)


@pytest.mark.parametrize("size,variations", [((320, 280), 2), ((200, 150), 4)])
def test_onnx_region_output_equals_dcp_by_hand(onnx_engines, size, variations) -> None:
    colored = paint_bars(scene(*size, seed=1))
    holes = mask_of(colored)
    engine = onnx_engines["bar"]
    result = deepcream.decensor(Image.fromarray(colored), engine=engine, variations=variations)
    for v, out_img in enumerate(result.images):
        out = np.asarray(out_img)
        want, dcp_filled = dcp_by_hand(colored, engine.session, v)
        assert dcp_filled.sum() > 0.9 * holes.sum()
        diff = out[dcp_filled] != want[dcp_filled]
        assert not diff.any(), f"variation {v}: {diff.any(axis=1).sum()} pixels differ"
        # Pixels DCP leaves unfilled are filled by deepcream's extra box.
        missed = holes & ~dcp_filled
        assert not mask_of(out)[missed].any()


def test_onnx_mosaic_equals_dcp_by_hand(onnx_engines) -> None:
    original = scene(300, 220, seed=4)
    original[60:140, 80:200] = cv2.resize(cv2.resize(original[60:140, 80:200], (15, 10)),
                                          (120, 80), interpolation=cv2.INTER_NEAREST)
    colored = original.copy()
    colored[60:140, 80:200] = GREEN
    colored[200:220, 280:300] = GREEN  # corner region: DCP's box misses a row and column
    engine = onnx_engines["mosaic"]
    result = deepcream.decensor(Image.fromarray(colored), mode="mosaic",
                               original=Image.fromarray(original), engine=engine, variations=2)
    for v, out_img in enumerate(result.images):
        want, dcp_filled = dcp_by_hand(colored, engine.session, v, original=original)
        out = np.asarray(out_img)
        assert dcp_filled.sum() > 0
        assert np.array_equal(out[dcp_filled], want[dcp_filled]), f"variation {v}"


def test_onnx_box_outside_image_pads_as_hole(onnx_engines) -> None:
    # Top-right corner on a wide image: DCP's box is (W-s-1, 0, W-1, s) with s = H, x1 = -1
    # only when s == W; use a square image so s == W == H.
    rgb = scene(260, 260, seed=3)
    rgb[0:200, 250:260] = GREEN
    rgb[0:5, 0:200] = GREEN
    engine = onnx_engines["bar"]
    result = deepcream.decensor(Image.fromarray(rgb), engine=engine)
    want, dcp_filled = dcp_by_hand(rgb, engine.session, 0)
    out = np.asarray(result.images[0])
    assert np.array_equal(out[dcp_filled], want[dcp_filled])


def thin_regions(width: int = 100, height: int = 80) -> np.ndarray:
    """An image smaller than 256 px with 1-px-high and 1-px-wide lines and single pixels at
    the edges and in the middle (DCP's tight fallback box is empty for all of them), plus a
    2-px-high bar whose tight box is 1 px high but not empty."""
    rgb = scene(width, height, seed=5)
    rgb[0, 10:40] = GREEN            # top edge, 1 px high
    rgb[height - 1, 50:90] = GREEN   # bottom edge
    rgb[height // 2, 10:width // 3] = GREEN  # middle
    rgb[5:30, 0] = GREEN             # left edge, 1 px wide
    rgb[40:75, width - 1] = GREEN    # right edge
    rgb[10:60, 2 * width // 3] = GREEN  # middle
    rgb[0, 0] = rgb[0, width - 1] = rgb[height - 1, 0] = GREEN  # corner pixels
    rgb[height - 1, width - 1] = GREEN
    rgb[25, 4 * width // 5] = GREEN  # a lone pixel in the middle
    rgb[60:62, 10:30] = GREEN        # 2 px high: tight box (10, 60, 29, 61), 1 px high
    return rgb


@pytest.mark.parametrize("engine_name", ["classical", "onnx"])
@pytest.mark.parametrize("variations", [1, 4])
@pytest.mark.parametrize("size", [(100, 80), (300, 80), (80, 300)])
def test_thin_regions_on_small_images(engine_name, variations, size, request) -> None:
    """Regions 1 px high or wide on an image < 256 px on a side: DCP's tight fallback box is
    empty there; every region pixel is still filled and nothing else changes."""
    colored = thin_regions(*size)
    holes = mask_of(colored)
    before = colored.copy()
    engine = engine_for(engine_name, "bar", request)
    result = deepcream.decensor(Image.fromarray(colored), engine=engine, variations=variations)
    assert np.array_equal(colored, before)
    assert result.regions == len(rg.find_regions(holes))
    for v, out_img in enumerate(result.images):
        out = np.asarray(out_img)
        assert np.array_equal(out[~holes], before[~holes])
        assert not mask_of(out).any()
        assert (out[holes] != before[holes]).any(axis=1).all()
        if engine_name == "onnx":
            # Where DCP's box is not empty, the pixels are exactly DCP's.
            want, dcp_filled = dcp_by_hand(colored, engine.session, v)
            assert dcp_filled.sum() > 0
            assert np.array_equal(out[dcp_filled], want[dcp_filled])


def test_stages_batch_all_regions_and_variations() -> None:
    colored = paint_bars(scene())
    job = _prepare(Image.fromarray(colored), variations=2)
    assert job.regions == 4
    assert isinstance(job.crops, np.ndarray) and job.crops.dtype == np.uint8
    assert job.crops.shape[1:] == (256, 256, 3) and job.holes.shape == job.crops.shape[:3]
    assert len(job.plans) == job.crops.shape[0] >= 2 * 4
    assert {p.variation for p in job.plans} == {0, 1}
    calls = []

    class Recorder(ClassicalEngine):
        input_size = 256

        def inpaint(self, crops, holes, on_filled=None):
            calls.append(len(crops))
            return super().inpaint(crops, holes)

    result = deepcream.decensor(Image.fromarray(colored), engine=Recorder("bar"), variations=2)
    assert calls == [len(job.plans)]  # one batched call for the whole image
    assert len(result.images) == 2
    # The server's path: prepare with an engine, fill elsewhere, finish names the engine.
    staged = _prepare(Image.fromarray(colored), engine=ClassicalEngine("bar"))
    assert isinstance(staged.crops, list)
    done = pipeline.finish(staged, ClassicalEngine("bar").inpaint(staged.crops, staged.holes),
                           ClassicalEngine("bar").describe())
    assert done.engine.startswith("classical") and done.regions == 4
    native = _prepare(Image.fromarray(colored), input_size=None)
    assert isinstance(native.crops, list)
    assert all(c.shape[:2] == h.shape for c, h in zip(native.crops, native.holes, strict=True))


def test_finish_rejects_wrong_crop_count() -> None:
    job = _prepare(Image.fromarray(paint_bars(scene())))
    with pytest.raises(ValueError):
        pipeline.finish(job, job.crops[:1], "none")


def test_no_mask_pixels_returns_input_with_notice() -> None:
    rgb = scene()
    result = deepcream.decensor(Image.fromarray(rgb), engine="classical")
    assert result.regions == 0
    assert result.notice and "nothing to decensor" in result.notice
    assert np.array_equal(np.asarray(result.images[0]), rgb)


def test_near_mask_color_gets_hint() -> None:
    rgb = paint_bars(scene(), color=(3, 250, 2))
    # The default finder takes strokes near the color (as JPEG leaves them) and says so.
    found = deepcream.decensor(Image.fromarray(rgb), engine="classical")
    assert found.regions > 0 and found.mask_note and "mask_tolerance=0" in found.mask_note
    # DeepCreamPy's exact rule finds nothing and explains why, naming the setting.
    result = deepcream.decensor(Image.fromarray(rgb), engine="classical", mask_tolerance=0)
    assert result.regions == 0
    assert "mask_tolerance=" in result.notice and result.warning == result.notice


def test_custom_mask_color_and_tolerance() -> None:
    rgb = paint_bars(scene(), color=(255, 0, 255))
    result = deepcream.decensor(Image.fromarray(rgb), engine="classical", mask_color=(255, 0, 255))
    assert result.regions == 4
    assert not mask_of(np.asarray(result.images[0]), (255, 0, 255)).any()
    noisy = paint_bars(scene(), color=(2, 252, 1))
    result = deepcream.decensor(Image.fromarray(noisy), engine="classical", mask_tolerance=4)
    assert result.regions == 4


@pytest.mark.parametrize("mode", ["P", "PT", "L", "LA", "I;16", "CMYK"])
def test_image_modes(mode: str) -> None:
    rgb = paint_bars(scene(120, 100))
    holes = mask_of(rgb)
    if mode in ("P", "PT"):
        img = Image.fromarray(rgb).quantize(64)
        pal = np.array(img.getpalette()[:192]).reshape(-1, 3)
        idx = int(np.argmin(np.abs(pal - GREEN).sum(1)))
        pal[idx] = GREEN
        img.putpalette(pal.astype(np.uint8).ravel().tolist())
        arr = np.asarray(img).copy()
        arr[holes] = idx
        img = Image.fromarray(arr, "P")
        img.putpalette(pal.astype(np.uint8).ravel().tolist())
        if mode == "PT":
            img.info["transparency"] = (idx + 1) % 64
        buf = io.BytesIO()
        img.save(buf, "PNG")
        img = Image.open(io.BytesIO(buf.getvalue()))
    elif mode in ("L", "LA"):
        img = Image.fromarray(rgb).convert(mode)
    elif mode == "I;16":
        img = Image.fromarray(rgb[..., 0].astype("<u2") * 257)
        assert img.mode == "I;16"
    else:
        img = Image.fromarray(rgb).convert("CMYK")
    expected = np.asarray(img.convert("RGBA" if mode in ("PT", "LA") else "RGB"))
    if mode == "I;16":
        expected = np.repeat(rgb[..., :1], 3, axis=2)
    result = deepcream.decensor(img, engine="classical", mask_color=(0, 255, 0))
    out = np.asarray(result.images[0])
    assert out.shape == expected.shape
    found = mask_of(expected[..., :3])
    assert np.array_equal(out[~found], expected[~found])
    assert not mask_of(out[..., :3]).any()


def test_mosaic_errors() -> None:
    colored = paint_bars(scene())
    with pytest.raises(InputError, match="original"):
        deepcream.decensor(Image.fromarray(colored), mode="mosaic", engine="classical")
    with pytest.raises(InputError, match="must match"):
        deepcream.decensor(Image.fromarray(colored), mode="mosaic", engine="classical",
                          original=Image.fromarray(scene(100, 100)))


def test_bad_arguments() -> None:
    img = Image.fromarray(scene())
    with pytest.raises(InputError):
        deepcream.decensor(img, engine="classical", variations=3)
    with pytest.raises(InputError):
        deepcream.decensor(img, mode="blur", engine="classical")
    with pytest.raises(InputError):
        deepcream.decensor(img, engine=ClassicalEngine("mosaic"))
    with pytest.raises(InputError):
        deepcream.decensor(b"not an image", engine="classical")
    with pytest.raises(InputError, match="tolerance"):
        deepcream.decensor(img, engine="classical", mask_tolerance=-1)
    with pytest.raises(InputError, match="mask color"):
        deepcream.decensor(img, engine="classical", mask_color=(0, 256, 0))


def test_paths_and_bytes(tmp_path) -> None:
    rgb = paint_bars(scene())
    path = tmp_path / "in.png"
    Image.fromarray(rgb).save(path)
    data = path.read_bytes()
    a = deepcream.decensor(path, engine="classical").images[0]
    b = deepcream.decensor(data, engine="classical").images[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert path.read_bytes() == data


@pytest.mark.parametrize("size", [(37, 53), (1, 1), (5, 1)])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_png_encoding_round_trips_with_engine_text(mode: str, size, tmp_path) -> None:
    """PNGs (ISA-L deflate with our SUB-filtered rows for RGB/RGBA, Pillow for the rest)
    decode back to the exact pixels and text, at any width."""
    from deepcream.imageio import encode_png, save_png

    rng = np.random.default_rng(7)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, size + (channels,), dtype=np.uint8)
    img = Image.fromarray(arr[..., 0] if mode == "L" else arr, mode)
    back = Image.open(io.BytesIO(encode_png(img, text={"deepcream-engine": "classical x"})))
    assert back.mode == mode and back.text == {"deepcream-engine": "classical x"}
    assert np.array_equal(np.asarray(back), np.asarray(img))
    path = save_png(img, tmp_path / "o.png", text={"a": "b"})
    assert Image.open(path).text == {"a": "b"} and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_image_arrays_banded_copies_are_exact_and_private(mode: str, monkeypatch) -> None:
    """to_rgb_alpha / encode_png copy PIL pixels band by band (a few rows at a time, not one
    full-size temporary): exact across band edges, and the arrays never alias the input."""
    from deepcream import imageio

    monkeypatch.setattr(imageio, "_BAND_BYTES", 4 * 53 * 3)  # 3 rows per band, 37 rows
    rng = np.random.default_rng(11)
    arr = rng.integers(0, 256, (37, 53, len(mode)), dtype=np.uint8)
    img = Image.fromarray(arr, mode)
    rgb, alpha = imageio.to_rgb_alpha(img)
    assert np.array_equal(rgb, arr[..., :3])
    assert (alpha is None) == (mode == "RGB")
    if alpha is not None:
        assert np.array_equal(alpha, arr[..., 3])
    assert rgb.flags.writeable and rgb.flags.c_contiguous
    rgb[...] = 0  # writing the array must not touch the image
    assert np.array_equal(np.asarray(img), arr)
    back = imageio.from_rgb_alpha(arr[..., :3].copy(), None if alpha is None else arr[..., 3])
    assert back.mode == mode and np.array_equal(np.asarray(back), arr)
    pixels = imageio.Pixels(arr[..., :3].copy(), None if alpha is None else arr[..., 3].copy())
    for source in (img, pixels):
        for text in (None, {"k": "v"}):
            png = Image.open(io.BytesIO(imageio.encode_png(source, text=text)))
            assert png.mode == mode and np.array_equal(np.asarray(png), arr)
            assert png.text == (text or {})


@pytest.mark.parametrize("variations", [1, 2, 4])
def test_finish_writes_into_its_own_copy_and_releases_it(variations: int) -> None:
    """finish pastes the last variation into prepare's private copy of the input and drops the
    job's buffers: the caller's image stays as it was, and a job is finished once."""
    colored = paint_bars(scene())
    holes = mask_of(colored)
    img = Image.fromarray(colored)
    engine = ClassicalEngine("bar")
    job = _prepare(img, engine=engine, variations=variations)
    assert job.owns_base and job.size == (colored.shape[1], colored.shape[0])
    base = job.base
    result = pipeline.finish(job, engine.inpaint(job.crops, job.holes), engine.describe())
    assert job.base is None and job.size == (colored.shape[1], colored.shape[0])
    assert np.array_equal(np.asarray(img), colored)  # the input image is untouched
    outs = [np.asarray(i) for i in result.images]
    assert len(outs) == variations
    for out in outs:
        assert np.array_equal(out[~holes], colored[~holes])
        assert not mask_of(out).any()
    # The last output was written into the job's own buffer, not into a copy.
    assert np.array_equal(base, outs[-1])
    with pytest.raises(ValueError, match="already finished"):
        pipeline.finish(job, job.crops, "none")


def _png_bytes(img: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **params)
    return buf.getvalue()


@pytest.mark.parametrize("libspng", ["ctypes", "pyspng"])
@pytest.mark.parametrize("variant", ["rgb", "rgba", "rgb-trns", "palette", "gray", "rgb16",
                                     "jpeg"])
def test_load_pixels_equals_pillow_decode(variant: str, libspng: str, monkeypatch) -> None:
    """load_pixels decodes plain 8-bit RGB/RGBA PNGs with libspng (called without the GIL
    through ctypes, or through pyspng where that cannot be loaded) and everything else with
    Pillow; every way the arrays equal Pillow's decode through to_rgb_alpha."""
    pyspng = pytest.importorskip("pyspng")
    from deepcream import imageio

    if libspng == "ctypes":
        assert pngdecode.available()  # pyspng's extension exports libspng on this platform
    else:
        monkeypatch.setattr(pngdecode, "available", lambda: False)

    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (23, 31, 4), dtype=np.uint8)
    rgb = Image.fromarray(arr[..., :3], "RGB")
    data = {
        "rgb": lambda: _png_bytes(rgb),
        "rgba": lambda: _png_bytes(Image.fromarray(arr, "RGBA")),
        "rgb-trns": lambda: _png_bytes(rgb, transparency=tuple(int(v) for v in arr[0, 0, :3])),
        "palette": lambda: _png_bytes(rgb.quantize(16)),
        "gray": lambda: _png_bytes(rgb.convert("L")),
        "rgb16": lambda: _rgb16_png(arr[..., :3]),
        "jpeg": lambda: _jpeg_bytes(rgb),
    }[variant]()
    calls = []
    module, name = (pngdecode, "decode") if libspng == "ctypes" else (pyspng, "load")
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda d, *a, **k: calls.append(1) or real(d, *a, **k))
    got = imageio.load_pixels(data)
    want_rgb, want_alpha = imageio.to_rgb_alpha(imageio.load_image(data))
    assert np.array_equal(got.rgb, want_rgb)
    assert (got.alpha is None) == (want_alpha is None)
    if want_alpha is not None:
        assert np.array_equal(got.alpha, want_alpha)
    assert bool(calls) == (variant in ("rgb", "rgba"))
    assert got.rgb.flags.writeable and got.rgb.flags.c_contiguous


def test_spng_path_only_for_plain_8bit_rgb_png() -> None:
    """The header test behind load_pixels' fast path: interlaced (Adam7), 16-bit, grey,
    palette and tRNS-carrying PNGs go to Pillow."""
    from deepcream import imageio

    def png(depth: int, colour: int, interlace: int, chunks: bytes = b"") -> bytes:
        ihdr = (5).to_bytes(4, "big") * 2 + bytes([depth, colour, 0, 0, interlace])
        return (pngdecode.PNG_SIGNATURE + imageio._png_chunk(b"IHDR", ihdr) + chunks
                + imageio._png_chunk(b"IDAT", b"") + imageio._png_chunk(b"IEND", b""))

    assert pngdecode.plain_png(png(8, 2, 0)) and pngdecode.plain_png(png(8, 6, 0))
    assert not pngdecode.plain_png(png(8, 2, 1))
    assert not pngdecode.plain_png(png(16, 2, 0))
    assert not pngdecode.plain_png(png(8, 0, 0)) and not pngdecode.plain_png(png(8, 3, 0))
    assert not pngdecode.plain_png(png(8, 2, 0, imageio._png_chunk(b"tRNS", b"\0" * 6)))
    assert not pngdecode.plain_png(b"GIF89a" + b"\0" * 40)


def _rgb16_png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, enc = cv2.imencode(".png", (rgb[..., ::-1].astype(np.uint16) * 257))
    assert ok and enc.tobytes()[24] == 16
    return enc.tobytes()


def _jpeg_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_load_pixels_reports_bad_png_like_load_image(tmp_path) -> None:
    from deepcream import imageio

    img = Image.fromarray(np.zeros((40, 40, 3), np.uint8))
    data = _png_bytes(img)
    for bad in (data[:-30], data[:60]):
        path = tmp_path / "bad.png"
        path.write_bytes(bad)
        with pytest.raises(InputError) as got:
            imageio.load_pixels(path)
        with pytest.raises(InputError) as want:
            imageio.load_image(path)
        assert str(got.value) == str(want.value) and str(path) in str(got.value)


@pytest.mark.parametrize("engine_name", ["onnx", "classical"])
@pytest.mark.parametrize("variations,alpha", [(1, False), (2, True), (4, False)])
def test_run_job_equals_the_staged_path(engine_name: str, variations: int, alpha: bool,
                                        request, monkeypatch) -> None:
    """run_job (crops top to bottom, pasted as they finish, rows PNG-encoded in a background
    thread as soon as they are final) gives exactly the staged prepare/inpaint/finish/encode
    result, pixels and PNG bytes, for every variation, with and without alpha; a small band
    size makes the encoder stream many bands while crops are still pending."""
    from deepcream import imageio

    monkeypatch.setattr(imageio, "_BAND_BYTES", 4 * 320 * 7)  # 7-row bands
    engine = engine_for(engine_name, "bar", request)
    colored = paint_bars(scene(320, 280, seed=5))
    img = Image.fromarray(colored)
    if alpha:
        img.putalpha(Image.fromarray(np.arange(320 * 280, dtype=np.uint32).reshape(280, 320)
                                     .astype(np.uint8)))
    text = {"deepcream-engine": engine.describe()}
    staged = pipeline.finish(_prepare(img, variations=variations, engine=engine),
                             engine.inpaint(*_crops_of(img, variations, engine)),
                             engine.describe())
    job = _prepare(img, variations=variations, engine=engine)
    filled = []
    result, pngs = pipeline.run_job(engine, job, png=True, text=text, on_filled=filled.append)
    assert sum(filled) == len(job.plans) > 1 and job.base is None
    assert len(result.pixels) == len(pngs) == variations
    for got, want, png in zip(result.pixels, staged.pixels, pngs, strict=True):
        assert np.array_equal(got.rgb, want.rgb)
        assert (got.alpha is None) == (not alpha)
        # (the deflate stream's bytes depend on how rows were fed in; the image may not)
        back = Image.open(io.BytesIO(png))
        assert back.text == text and back.mode == ("RGBA" if alpha else "RGB")
        assert np.array_equal(np.asarray(back)[..., :3], want.rgb)
        if alpha:
            assert np.array_equal(np.asarray(back)[..., 3], want.alpha)
    plain, none = pipeline.run_job(engine, _prepare(img, variations=variations,
                                                            engine=engine))
    assert none is None and np.array_equal(plain.pixels[-1].rgb, staged.pixels[-1].rgb)


def _crops_of(img: Image.Image, variations: int, engine) -> tuple:
    job = _prepare(img, variations=variations, engine=engine)
    return job.crops, job.holes


def test_run_job_reports_engine_errors_and_empty_jobs() -> None:
    class Broken(ClassicalEngine):
        def inpaint(self, crops, holes, on_filled=None):
            raise InputError("engine broke")

    colored = paint_bars(scene())
    with pytest.raises(InputError, match="engine broke"):
        pipeline.run_job(Broken("bar"), _prepare(Image.fromarray(colored),
                                                          engine=ClassicalEngine("bar")), png=True)
    clean = scene()
    job = _prepare(Image.fromarray(clean), engine=ClassicalEngine("bar"))
    result, pngs = pipeline.run_job(ClassicalEngine("bar"), job, png=True)
    assert job.regions == 0 and result.notice
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(pngs[0]))), clean)


def test_run_job_png_bytes_do_not_depend_on_the_order_crops_finish() -> None:
    """The encoder writes rows as crops finish; the compressor is fed whole bands all the
    same, so the file is byte-identical whichever crop finishes first."""

    class Ordered(ClassicalEngine):
        def __init__(self, reverse: bool) -> None:
            super().__init__("bar")
            self.reverse = reverse

        def inpaint(self, crops, holes, on_filled=None):
            filled = super().inpaint(crops, holes)
            order = range(len(filled))
            for k in (reversed(order) if self.reverse else order):
                on_filled(k, filled[k:k + 1])
            return filled

    colored = paint_bars(scene(320, 900))
    pngs = []
    for reverse in (False, True):
        job = _prepare(Image.fromarray(colored), engine=ClassicalEngine("bar"), variations=2)
        pngs.append(pipeline.run_job(Ordered(reverse), job, png=True)[1])
    assert pngs[0] == pngs[1]


def test_png_row_writer_joins_an_independent_tail_stream() -> None:
    """Rows from tail_from down are deflated as a second stream, written first, and joined
    (sync flush + raw stream + combined Adler-32): any decoder reads back the exact pixels."""
    import zlib

    from deepcream import imageio

    rng = np.random.default_rng(9)
    for alpha in (False, True):
        rgb = rng.integers(0, 256, (61, 37, 3), dtype=np.uint8)
        rgb[20:40] = 7  # compressible rows too
        a = rng.integers(0, 256, (61, 37), dtype=np.uint8) if alpha else None
        pixels = imageio.Pixels(rgb, a)
        for tail_from in (0, 1, 30, 60, 61, None):
            writer = imageio.PngRowWriter(37, 61, alpha, text={"k": "v"}, tail_from=tail_from)
            writer.write_tail(pixels)
            writer.write_pixels(pixels, 13)
            writer.write_pixels(pixels, 61)
            back = Image.open(io.BytesIO(b"".join(writer.close())))
            back.load()
            assert back.text == {"k": "v"}
            assert np.array_equal(np.asarray(back)[..., :3], rgb)
            if alpha:
                assert np.array_equal(np.asarray(back)[..., 3], a)
    for n1, n2 in ((0, 5), (5, 0), (1000, 70000), (65521, 65521)):
        x, y = rng.bytes(n1), rng.bytes(n2)
        assert imageio.adler32_combine(zlib.adler32(x), zlib.adler32(y), n2) == zlib.adler32(x + y)
