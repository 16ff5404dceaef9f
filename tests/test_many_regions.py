"""Images with many regions (issue 11 items 1 and 3): small regions share tile crops, big
jobs are streamed, the region cap is a clear error, and cancelled work stops early."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_pipeline import mask_of, scene

from deepcream import pipeline
from deepcream import regions as rg
from deepcream.engines import ClassicalEngine, OnnxEngine
from deepcream.errors import InputError
from deepcream.options import DecensorOptions

GREEN = np.array([0, 255, 0], np.uint8)


def checkerboard(size: int) -> np.ndarray:
    img = scene(size, size, seed=3)
    yy, xx = np.mgrid[0:size, 0:size]
    img[(yy + xx) % 2 == 0] = GREEN
    return img


def dots(width: int, height: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` isolated 1-px mask dots (no two touching, so ``count`` regions)."""
    rng = np.random.default_rng(seed)
    img = scene(width, height, seed=seed)
    taken = np.zeros((height + 2, width + 2), bool)
    placed = 0
    while placed < count:
        y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
        if taken[y:y + 3, x:x + 3].any():
            continue
        taken[y + 1, x + 1] = True
        img[y, x] = GREEN
        placed += 1
    return img


def prep(img: np.ndarray, engine=None, *, original: np.ndarray | None = None,
         input_size: int | None = 256, **options) -> pipeline.Job:
    return pipeline.prepare(Image.fromarray(img), DecensorOptions(**options),
                            original=None if original is None else Image.fromarray(original),
                            input_size=engine.input_size if engine is not None else input_size)


def assert_filled(before: np.ndarray, after: np.ndarray) -> None:
    """Every mask pixel replaced, no mask color left, every other pixel bit-identical."""
    holes = mask_of(before)
    assert not mask_of(after).any()
    assert np.array_equal(after[~holes], before[~holes])


@pytest.fixture(scope="module")
def onnx_bar(converted_models: Path) -> OnnxEngine:
    return OnnxEngine(converted_models / "bar.onnx", "bar")


def test_grouping_covers_every_region_once_inside_its_box() -> None:
    img = dots(900, 700, 1500, seed=1)
    img[298:308, 98:262] = scene(900, 700, seed=1)[298:308, 98:262]  # no dot touches the bar
    img[300:306, 100:260] = GREEN  # one region too big for a tile: its own DCP box
    holes = mask_of(img)
    lab = rg.label_holes(holes)
    grouping = rg.group_regions(lab, 900, 700)
    assert len(grouping.single) == 1 and grouping.single[0].pixels == 6 * 160
    assert (grouping.single[0].min_x, grouping.single[0].max_x) == (100, 259)
    # every small region is in exactly one group, and wholly inside that group's box
    groups = grouping.group_of[1:]
    assert (groups >= 0).sum() == lab.count - 1 == 1500 - np.count_nonzero(
        mask_of(dots(900, 700, 1500, seed=1))[298:308, 98:262])
    assert len(grouping.boxes) <= (900 // 192 + 1) * (700 // 192 + 1)
    for label in range(1, lab.count + 1):
        bx, by, bw, bh = (int(v) for v in lab.stats[label, :4])
        g = grouping.group_of[label]
        if g < 0:
            continue
        x1, y1, x2, y2 = grouping.boxes[g]
        assert x2 - x1 == y2 - y1 == 256
        assert x1 <= lab.ox + bx and lab.ox + bx + bw <= x2
        assert y1 <= lab.oy + by and lab.oy + by + bh <= y2
    # the pasted selections partition the small regions' pixels
    paste_count = np.zeros(holes.shape, np.int32)
    for g, box in enumerate(grouping.boxes):
        x1, y1, x2, y2 = box
        paste_count[y1:y2, x1:x2] += rg.group_select(lab, grouping, g, box)
    assert np.array_equal(paste_count[holes] == 1, grouping.group_of[
        rg.crop(lab.labels, (-lab.ox, -lab.oy, 900 - lab.ox, 700 - lab.oy), 0)][holes] >= 0)


def test_up_to_exact_limit_every_region_keeps_dcp_boxes() -> None:
    img = dots(1200, 900, rg.EXACT_REGIONS, seed=2)
    job = prep(img)
    holes = mask_of(img)
    expected = [box for region in rg.find_regions(holes)
                for box, _ in rg.region_boxes(region, 1200, 900)]
    assert [p.box for p in job.plans] == expected
    assert all(p.group == -1 for p in job.plans)


def test_checkerboard_is_a_few_shared_crops(onnx_bar: OnnxEngine) -> None:
    img = checkerboard(96)  # 4,608 one-pixel regions on a 96x96 image
    job = prep(img, onnx_bar)
    assert job.regions == 96 * 96 // 2
    assert len(job.plans) == 1 and job.plans[0].box == (0, 0, 96, 96)
    result, _ = pipeline.run_job(onnx_bar, job)
    assert_filled(img, result.pixels[0].rgb)


@pytest.mark.parametrize("variations", [1, 4])
def test_dot_field_classical_streamed_equals_staged(variations: int, monkeypatch) -> None:
    monkeypatch.setattr(pipeline, "STREAM_CROPS", 5)
    img = dots(700, 500, 1000, seed=4)
    engine = ClassicalEngine("bar")
    job = prep(img, engine, variations=variations)
    assert job.regions == 1000
    assert len(job.plans) <= variations * 4 * 3
    assert job.streamed and job.crops is None
    result, pngs = pipeline.run_job(engine, job, png=True)
    staged_job = prep(img, engine, variations=variations)
    staged = pipeline.finish(staged_job, pipeline.run_engine(engine, staged_job),
                             engine.describe())
    for got, want in zip(result.pixels, staged.pixels, strict=True):
        assert np.array_equal(got.rgb, want.rgb)
        assert_filled(img, got.rgb)
    assert job.source is None and job.labels is None  # released after the paste


def test_streamed_mosaic_crops_come_from_the_unfilled_original(monkeypatch) -> None:
    """Streamed pastes go to copies: later crops must still see the original's pixels."""
    monkeypatch.setattr(pipeline, "STREAM_CROPS", 4)
    original = scene(800, 600, seed=6)
    colored = original.copy()
    rng = np.random.default_rng(6)
    for _ in range(260):
        y, x = int(rng.integers(0, 596)), int(rng.integers(0, 796))
        colored[y:y + 3, x:x + 3] = GREEN
    engine = ClassicalEngine("mosaic")
    job = prep(colored, engine, mode="mosaic", original=original)
    assert job.streamed and len(job.plans) > 4
    result, _ = pipeline.run_job(engine, job)
    staged_job = prep(colored, engine, mode="mosaic", original=original)
    staged = pipeline.finish(staged_job, pipeline.run_engine(engine, staged_job),
                             engine.describe())
    assert np.array_equal(result.pixels[0].rgb, staged.pixels[0].rgb)
    holes = mask_of(colored)
    assert np.array_equal(result.pixels[0].rgb[~holes], original[~holes])


def test_larger_tiles_when_native_ones_exceed_the_budget(monkeypatch, onnx_bar) -> None:
    monkeypatch.setattr(rg, "TILE_BUDGET", 12)
    img = dots(1000, 700, 400, seed=8)  # ~24 native tiles: too many, 2x tiles: 6
    job = prep(img, onnx_bar)
    sides = {p.box[2] - p.box[0] for p in job.plans}
    assert len(job.plans) <= 12 and sides == {512}
    # the 512 px tile shrinks to 256 without losing a dot from the model's hole mask
    crops, holes = job.cut([0])
    plan = job.plans[0]
    x1, y1, x2, y2 = plan.box
    assert holes[0].sum() >= mask_of(img)[y1:y2, x1:x2].sum()
    result, _ = pipeline.run_job(onnx_bar, job)
    assert_filled(img, result.pixels[0].rgb)


def test_region_cap_is_a_clear_error(tmp_path: Path) -> None:
    img = dots(400, 300, 250, seed=9)
    with pytest.raises(InputError, match=r"250 separate regions to fill, more than the limit of 100"):
        prep(img, max_regions=100)
    assert len(prep(img, max_regions=250).plans) > 0
    path = tmp_path / "dots.png"
    Image.fromarray(img).save(path)
    out = subprocess.run([sys.executable, "-m", "deepcream", "decensor", str(path), "-o",
                          str(tmp_path / "out"), "--engine", "classical", "--max-regions", "100",
                          "-q"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[0].endswith(
        "250 separate regions to fill, more than the limit of 100 per image")
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out" / "dots.png").exists()


def test_region_cap_is_checked_before_per_region_work() -> None:
    """A 2000x1500 checkerboard is 1.5 M regions: refused from a label count alone (OpenCV's
    per-region stats for all of them would be ~0.5 GB)."""
    holes = np.zeros((1500, 2000), bool)
    holes[::2, ::2] = True
    with pytest.raises(rg.TooManyRegions) as err:
        rg.label_holes(holes, max_count=1000)
    assert err.value.count == 750 * 1000 == rg.count_regions(holes)
    lab = rg.label_holes(holes[:40, :40], max_count=400)
    assert lab.count == 400 and lab.stats.shape == (401, 5)


def test_cancelled_job_stops_between_crops() -> None:
    img = dots(1024, 768, 3072, seed=10)
    engine = ClassicalEngine("bar")
    job = prep(img, engine, variations=4)
    filled = []
    with pytest.raises(pipeline.JobCancelled):
        pipeline.run_job(engine, job, png=True, on_filled=filled.append,
                         cancelled=lambda: len(filled) >= 3)
    assert 3 <= len(filled) < len(job.plans) // 2


def test_cancelled_onnx_job_stops_both_workers(onnx_bar: OnnxEngine) -> None:
    img = dots(1024, 768, 3072, seed=11)
    job = prep(img, onnx_bar)
    filled = []
    with pytest.raises(pipeline.JobCancelled):
        pipeline.run_job(onnx_bar, job, on_filled=filled.append,
                         cancelled=lambda: len(filled) >= 2)
    # each crop worker finishes at most the crop it holds
    assert len(filled) <= 2 + onnx_bar.session.threads < len(job.plans)


def test_server_timeout_frees_the_worker(converted_models: Path) -> None:
    """A request that times out stops its crops: its queue slot and the inference worker come
    back long before its work would have ended, and the next request is served."""
    from deepcream.server.errors import ApiError
    from deepcream.server.metrics import Metrics
    from deepcream.server.service import DecensorService
    from deepcream.server.settings import Settings

    settings = Settings(engine="onnx", models=converted_models, request_timeout_s=1.0,
                        warmup=False)
    service = DecensorService(settings, Metrics())
    service.warm_up()
    buf = io.BytesIO()
    Image.fromarray(dots(1024, 768, 3072, seed=12)).save(buf, format="PNG")
    big = buf.getvalue()  # 24 crops x 4 variations: far more than 1 s of inference
    small = io.BytesIO()
    Image.fromarray(dots(200, 150, 3, seed=13)).save(small, format="PNG")
    filled = []
    engine = service.engines["bar"]
    inpaint = engine.inpaint

    def counting(crops, holes, on_filled=None):
        def seen(start, done):
            filled.append(len(done))
            if on_filled is not None:
                on_filled(start, done)
        return inpaint(crops, holes, on_filled=seen)

    engine.inpaint = counting

    async def scenario() -> int:
        with pytest.raises(ApiError) as err:
            await service.decensor(big, None, DecensorOptions(variations=4))
        assert err.value.status == 503
        service.settings = dataclasses.replace(settings, request_timeout_s=300.0)
        # one inference thread per model: the next request is served only once the timed-out
        # one has left it
        after = await service.decensor(small.getvalue(), None, DecensorOptions())
        assert after.regions == 3
        return sum(filled) - 3  # the big request's crops that were filled

    try:
        stopped_at = asyncio.run(scenario())
    finally:
        del engine.inpaint  # the engine instance is cached per process
        service.close()
    assert stopped_at < 4 * 24
