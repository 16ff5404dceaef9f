"""deepcream bench (package deepcream_bench): the workload geometry, the FLOP count, a tiny
end-to-end run writing all outputs, and the CLI verb's errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepcream.cli import main
from deepcream_bench import floor, worker, workload
from deepcream_bench.run import run_bench


def test_workload_image_reproduces_the_reference_geometry() -> None:
    from scipy import ndimage

    spec = workload.load_workload()
    rgb, mask = workload.make_workload_image(spec)
    assert rgb.shape == (spec["image"]["height"], spec["image"]["width"], 3)
    # The mask is exactly the mask-coloured pixels: the background never hits the colour.
    assert np.array_equal(np.all(rgb == spec["mask_color"], axis=-1), mask)
    labels, count = ndimage.label(mask)
    assert count == len(spec["regions"]) == 17
    found = {}
    for i, sl in enumerate(ndimage.find_objects(labels), 1):
        ys, xs = sl
        found[(xs.start, ys.start)] = (xs.stop - xs.start, ys.stop - ys.start,
                                       int((labels[sl] == i).sum()))
    for region in spec["regions"]:
        w, h, pixels = found[(region["x"], region["y"])]
        assert (w, h) == (region["w"], region["h"])
        assert abs(pixels - region["pixels"]) <= 0.1 * region["pixels"]


def test_flop_count_matches_the_architecture() -> None:
    # shared/dcpv2-model.md: ~4.8 (encoder) + ~4.2 (attention) + 0.13 + ~1.8 GMAC per crop.
    assert 21.5e9 < floor.crop_flops() < 22.5e9
    assert floor.crop_flops() - floor.crop_flops(attention=False) == 2 * 2 * 1024 * 2304 * 900


@pytest.fixture(scope="module")
def tiny_report(converted_models: Path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bench-out")
    report = run_bench(out, quick=True, implementations=["deepcream", "service"], runs=1,
                       scale=0.11, models=converted_models,
                       cache_dir=tmp_path_factory.mktemp("bench-cache"), say=lambda _m: None)
    return out, report


def test_quick_bench_writes_json_markdown_and_chart(tiny_report) -> None:
    out, report = tiny_report
    data = json.loads((out / "bench-results.json").read_text())
    assert data["workload"]["regions"] == 17
    assert set(data["implementations"]) == {"deepcream", "service"}
    ours = data["implementations"]["deepcream"]
    assert "error" not in ours, ours
    assert ours["crops"] == 17 and ours["models_loaded"] == 2
    assert set(ours["stages_s"]) == set(worker.STAGES)
    assert all(v >= 0 for v in ours["stages_s"].values())
    assert ours["end_to_end_s"] > ours["stages_s"]["inference"] > 0
    assert ours["peak_rss_mb"] > 50 and ours["model_bytes"] > 1e6
    assert ours["first_request_s"] > 0 and ours["ready_s"] >= ours["load_s"] > 0
    # The service baseline runs the same model: identical pixels in the output.
    service = data["implementations"]["service"]
    assert "error" not in service, service
    assert service["workload_max_abs_diff"] == 0
    assert set(data["ratios_baseline_over_deepcream"]["service"]) >= {"end_to_end_s", "peak_rss_mb"}
    md = (out / "bench-results.md").read_text()
    assert "| deepcream |" in md and "| service |" in md and "Stage breakdown" in md
    with Image.open(out / "bench-results.png") as chart:
        assert chart.format == "PNG" and chart.width > 300 and chart.height > 100
    # The fp32 output written for inspection is the full image.
    with Image.open(out / "bench-output.png") as sample:
        assert sample.size == (data["workload"]["width"], data["workload"]["height"])
    assert not list(out.glob("*.part"))


def test_cli_rejects_unknown_implementation(capsys) -> None:
    assert main(["bench", "--only", "deepcream,nope"]) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("deepcream: error: unknown implementation(s) nope")
    assert "Traceback" not in err


def test_cli_rejects_empty_selection(capsys, tmp_path: Path) -> None:
    assert main(["bench", "--only", "service", "--skip", "service", "--out", str(tmp_path)]) == 2
    assert "nothing to run" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_without_the_bench_extra_says_how_to_install_it(capsys, monkeypatch,
                                                            tmp_path: Path) -> None:
    import deepcream_bench

    # matplotlib (the chart) is the extra's one dependency every run needs. The benchmark's
    # modules are dropped so that the verb imports them afresh.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for name in ("run", "report"):
        monkeypatch.delitem(sys.modules, f"deepcream_bench.{name}", raising=False)
        monkeypatch.delattr(deepcream_bench, name, raising=False)
    # An empty selection: should the import succeed, the verb stops before running anything.
    args = ["bench", "--only", "service", "--skip", "service", "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("deepcream: error: the benchmark needs the bench extra (matplotlib is not "
                   "installed): pip install 'deepcream[bench]'")
    assert not list(tmp_path.iterdir())
