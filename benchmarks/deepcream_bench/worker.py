"""One implementation measured in this process: ``python -m deepcream_bench.worker NAME CONFIG
RESULT`` (``run.py`` starts one subprocess per implementation, so peak RSS is its own).

Per implementation: end-to-end image time (decode, regions, inference, paste, encode) and its
stages, first request vs steady state (median of the runs after the first), load and warm-up
time, per-region inference time at batch 1 and in the image, peak RSS, model size, and the
output's difference from fp32 deepcream's. ``NAME`` may also be ``gemm`` (the GEMM floor) or
``exp:SETTING`` (one of ``experiments.EXPERIMENTS``).
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .measure import peak_rss_mb, psnr, time_runs, version

STAGES = ("decode", "regions", "inference", "paste", "encode")

#: name -> how the worker runs it. ``deepcream*`` run the real pipeline with ``OnnxEngine``;
#: the baselines swap the model (``tensorflow``, ``tf2onnx``) or the whole pipeline (``service``).
IMPLEMENTATIONS: dict[str, dict[str, Any]] = {
    "deepcream": {"kind": "deepcream", "backend": "auto", "precision": "fp32"},
    "deepcream-openvino": {"kind": "deepcream", "backend": "openvino", "precision": "fp32"},
    "deepcream-bf16": {"kind": "deepcream", "backend": "openvino", "precision": "bf16"},
    "deepcream-int8": {"kind": "deepcream", "backend": "onnxruntime", "precision": "int8"},
    "tensorflow": {"kind": "tensorflow"},
    "tf2onnx": {"kind": "tf2onnx"},
    "service": {"kind": "service"},
    # The service's whole pipeline with its own model (the write-up's tf2onnx graph): the
    # published service as it ran, for side-by-side whole-process comparisons.
    "service-own-model": {"kind": "service", "model": "tf2onnx"},
}
QUICK_DEFAULT = ("deepcream", "tensorflow", "tf2onnx", "service")

Stages = dict[str, float]
ImageOnce = Callable[[], tuple[Stages, bytes, int]]  # -> stage seconds, output PNG, crops
RegionRun = Callable[[np.ndarray, np.ndarray], np.ndarray]  # model inputs -> model output


class _Timer:
    def __init__(self) -> None:
        self.stages: Stages = dict.fromkeys(STAGES, 0.0)

    @contextlib.contextmanager
    def stage(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] += time.perf_counter() - t


def _pipeline_image(data: bytes, infer: Callable[[np.ndarray, np.ndarray], np.ndarray]
                    ) -> tuple[Stages, bytes, int]:
    """One image through deepcream's pipeline stages with ``infer(crops, holes) -> crops``."""
    from deepcream import imageio, pipeline

    timer = _Timer()
    with timer.stage("decode"):
        img = imageio.load_pixels(data)
    with timer.stage("regions"):
        job = pipeline.prepare(img)
    with timer.stage("inference"):
        filled = infer(job.crops, job.holes)
    with timer.stage("paste"):
        result = pipeline.finish(job, filled, "baseline")
    with timer.stage("encode"):
        png = imageio.encode_png(result.pixels[0])
    return timer.stages, png, int(len(job.crops))


def _pipeline_streamed(data: bytes, engine: Any) -> tuple[Stages, bytes, int]:
    """One image through deepcream's own path (``pipeline.run_job``): paste and PNG encoding
    overlap the inference, so "inference" is the wall time until the engine returns (pastes
    and most of the encoding inside it), "paste" is 0 and "encode" is what is left after."""
    from deepcream import pipeline

    timer = _Timer()
    job = pipeline.prepare(data, input_size=engine.input_size)  # decodes, as the CLI does
    timer.stages["decode"] = job.timings["decode"]
    timer.stages["regions"] = job.timings["prepare"] - job.timings["decode"]
    t = time.perf_counter()
    result, pngs = pipeline.run_job(engine, job, png=True)
    total = time.perf_counter() - t
    timer.stages["inference"] = result.timings["inpaint"]
    timer.stages["encode"] = total - result.timings["inpaint"]
    assert pngs is not None
    return timer.stages, pngs[0], int(len(job.crops))


def _model_infer(run: RegionRun, kind: str = "bar") -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Wrap a float model call ``run(x, m)`` in DCP's crop arithmetic (as OnnxEngine does)."""
    from deepcream.engines import dcp_model_inputs, dcp_output_to_uint8

    def infer(crops: np.ndarray, holes: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops, np.uint8)
        if len(crops) == 0:
            return crops.copy()
        x, m = dcp_model_inputs(crops, np.asarray(holes, bool), kind)
        return dcp_output_to_uint8(run(x, m))

    return infer


def _fixture_batch(checkpoints: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The fixture's reference batch of crops (model inputs), when there is one."""
    if not checkpoints:
        return None
    ref = Path(checkpoints) / "bar" / "reference.npz"
    if not ref.is_file():
        return None
    data = np.load(ref)
    return data["x"].astype(np.float32), data["m"][..., :1].astype(np.float32)


# Loaders: build the implementation (recording load_s from t0 and what it runs into ``result``)
# and return its per-crop model call and its one-image call.

def _load_deepcream(spec: dict[str, Any], cfg: dict[str, Any], data: bytes,
                    result: dict[str, Any], t0: float) -> tuple[RegionRun, ImageOnce]:
    # What `deepcream decensor`/`serve` import before they load a model: counted in the
    # load time, not in the first request.
    from deepcream import imageio, pipeline  # noqa: F401
    from deepcream.engines import OnnxEngine
    from deepcream.options import MODES
    from deepcream.session import SessionOptions

    models = Path(cfg["models"])
    session_options = SessionOptions(backend=spec["backend"], threads=cfg.get("threads"),
                                     precision=spec["precision"])
    engines = {m: OnnxEngine(models / f"{m}.onnx", m, session_options) for m in MODES}
    result["load_s"] = time.perf_counter() - t0
    for engine in engines.values():
        engine.warmup()
    session = engines["bar"].session
    result["backend"] = session.backend
    result["precision"] = session.precision
    result["threads"] = session.threads
    result["models_loaded"] = len(engines)
    result["model_bytes"] = sum((models / f"{k}.onnx").stat().st_size for k in MODES)
    return session.run, lambda: _pipeline_streamed(data, engines["bar"])


def _load_tf_baseline(spec: dict[str, Any], cfg: dict[str, Any], data: bytes,
                      result: dict[str, Any], t0: float) -> tuple[RegionRun, ImageOnce]:
    from .baselines import tf_original

    bar_dir = Path(cfg["checkpoints"]) / "bar"
    if spec["kind"] == "tensorflow":
        prefix = tf_original.checkpoint_prefix(bar_dir)
        model = tf_original.TensorFlowOriginal(prefix, threads=cfg.get("threads"))
        result["model_bytes"] = sum(p.stat().st_size for p in bar_dir.glob(prefix.name + ".*"))
        result["backend"] = "tensorflow " + version("tensorflow")
    else:
        from .baselines.tf2onnx_surgery import Tf2OnnxPool

        model = Tf2OnnxPool(cfg["tf2onnx"])
        result["model_bytes"] = Path(cfg["tf2onnx"]).stat().st_size
        result["backend"] = f"onnxruntime {version('onnxruntime')}, pool of {model.workers}"
    result["load_s"] = time.perf_counter() - t0
    result["models_loaded"] = 1
    infer = _model_infer(model.run)
    return model.run, lambda: _pipeline_image(data, infer)


def _load_service(spec: dict[str, Any], cfg: dict[str, Any], data: bytes,
                  result: dict[str, Any], t0: float) -> tuple[RegionRun, ImageOnce]:
    from deepcream.session import ModelSession

    from .baselines import service

    if spec.get("model") == "tf2onnx":
        from .baselines.tf2onnx_surgery import Tf2OnnxPool

        model = Path(cfg["tf2onnx"])
        run: RegionRun = Tf2OnnxPool(model).run
        result["backend"] = "published-service pipeline around the tf2onnx model (its own)"
    else:
        model = Path(cfg["models"]) / "bar.onnx"
        run = ModelSession(model, backend="onnxruntime", threads=cfg.get("threads")).run
        result["backend"] = "published-service pipeline around deepcream's bar.onnx (onnxruntime)"
    result["load_s"] = time.perf_counter() - t0
    result["models_loaded"] = 1
    result["model_bytes"] = model.stat().st_size

    def image_once() -> tuple[Stages, bytes, int]:
        png, timings = service.decensor_bar(data, run)
        return {s: timings.get(s, 0.0) for s in STAGES}, png, -1  # -1: it finds its own regions

    return run, image_once


_LOADERS = {"deepcream": _load_deepcream, "tensorflow": _load_tf_baseline,
            "tf2onnx": _load_tf_baseline, "service": _load_service}


def _time_images(image_once: ImageOnce, runs: int, regions: int, result: dict[str, Any]) -> bytes:
    """The first request right after load, then ``runs`` timed ones; returns the output PNG."""
    t = time.perf_counter()
    stages, png, crops = image_once()
    result["first_request_s"] = time.perf_counter() - t
    result["first_request_stages"] = stages
    result["peak_rss_first_request_mb"] = peak_rss_mb()
    walls, all_stages = [], []
    for _ in range(runs):
        t = time.perf_counter()
        stages, png, crops = image_once()
        walls.append(time.perf_counter() - t)
        all_stages.append(stages)
    result["runs"] = runs
    result["end_to_end_s"] = statistics.median(walls)
    result["end_to_end_all_s"] = walls
    result["stages_s"] = {s: statistics.median(st[s] for st in all_stages) for s in STAGES}
    result["crops"] = crops if crops >= 0 else regions
    result["per_region_in_image_s"] = result["stages_s"]["inference"] / max(result["crops"], 1)
    result["peak_rss_after_runs_mb"] = peak_rss_mb()
    result["first_vs_steady"] = result["first_request_s"] / result["end_to_end_s"]
    return png


def _compare_outputs(name: str, kind: str, png: bytes, region_run: RegionRun,
                     fixture: tuple[np.ndarray, np.ndarray] | None, cfg: dict[str, Any],
                     result: dict[str, Any]) -> None:
    """Output quality and parity: fp32 deepcream writes the references, the others compare."""
    work = Path(cfg["work_dir"])
    (work / f"{name}.png").write_bytes(png)
    if fixture is not None and kind != "service":
        pred = region_run(*fixture)
        ref_path = work / "fixture-deepcream.npy"
        if name == "deepcream":
            np.save(ref_path, pred)
        if ref_path.is_file():
            ref = np.load(ref_path)
            holes = fixture[1][..., 0] == 0
            result["fixture_max_abs_diff"] = float(np.abs(pred - ref).max())
            result["fixture_psnr_holes_db"] = psnr(
                (pred[holes] + 1) * 127.5, (ref[holes] + 1) * 127.5)
    ref_png = work / "deepcream.png"
    if name != "deepcream" and ref_png.is_file():
        from PIL import Image

        mine = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        ref = np.asarray(Image.open(ref_png).convert("RGB"))
        holes = np.all(np.asarray(Image.open(cfg["workload"]).convert("RGB")) == (0, 255, 0), axis=-1)
        if mine.shape == ref.shape:
            result["workload_psnr_holes_db"] = psnr(mine[holes], ref[holes])
            result["workload_max_abs_diff"] = int(np.abs(mine.astype(int) - ref.astype(int)).max())


def run_implementation(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Measure implementation ``name`` (a key of ``IMPLEMENTATIONS``) in this process."""
    spec = IMPLEMENTATIONS[name]
    kind = spec["kind"]
    data = Path(cfg["workload"]).read_bytes()
    runs = int(cfg["runs"])
    result: dict[str, Any] = {"name": name}
    fixture = _fixture_batch(cfg.get("checkpoints"))

    t0 = time.perf_counter()
    region_run, image_once = _LOADERS[kind](spec, cfg, data, result, t0)
    result["ready_s"] = time.perf_counter() - t0
    result["peak_rss_ready_mb"] = peak_rss_mb()
    png = _time_images(image_once, runs, int(cfg["regions"]), result)

    # One crop at batch 1, isolated from the pipeline.
    if fixture is not None:
        x1, m1 = fixture[0][:1], fixture[1][:1]
    else:
        x1 = np.zeros((1, 256, 256, 3), np.float32)
        m1 = np.ones((1, 256, 256, 1), np.float32)
        m1[:, 100:160, 90:170] = 0
    region_run(x1, m1)
    result["per_region_batch1_s"] = statistics.median(
        time_runs(lambda: region_run(x1, m1), max(3, min(runs, 5))))

    _compare_outputs(name, kind, png, region_run, fixture, cfg, result)
    # Headline: both models loaded and the workload image processed (the runs above); what
    # the parity/quality checks add is kept apart.
    result["peak_rss_mb"] = result["peak_rss_after_runs_mb"]
    result["peak_rss_end_mb"] = peak_rss_mb()
    if cfg.get("profile") and kind == "deepcream":
        from .profiling import profile_deepcream

        # After the RSS reading: profiling allocates on its own.
        result["profile"] = profile_deepcream(image_once, Path(cfg["models"]) / "bar.onnx",
                                              x1, m1, Path(cfg["work_dir"]) / f"{name}.profile.txt",
                                              cfg.get("threads"))
    return result


def main(argv: Sequence[str]) -> int:
    """Worker entry: measure ``NAME`` with the run's ``CONFIG`` JSON, write ``RESULT`` JSON."""
    if len(argv) != 3:
        print("usage: python -m deepcream_bench.worker NAME CONFIG RESULT "
              "(started by deepcream bench)", file=sys.stderr)
        return 2
    from deepcream.malloc import tune_malloc

    tune_malloc()  # as the decensor/serve commands do, for every implementation alike
    name, cfg_path, result_path = argv
    cfg = json.loads(Path(cfg_path).read_text())
    if name == "gemm":
        from .floor import measure_gemm_gflops

        result = measure_gemm_gflops(cfg.get("threads"))
    elif name.startswith("exp:"):
        from .experiments import EXPERIMENTS, run_experiment

        result = run_experiment(EXPERIMENTS[name[4:]], cfg)
    else:
        result = run_implementation(name, cfg)
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
