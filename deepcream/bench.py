"""``deepcream bench``: time deepcream and its baselines on the reference workload.

The workload is built procedurally from ``data/reference-workload.json``: an image of the same
size with 17 mask-colored strokes in the same boxes and about the same pixel counts, on a
smooth, non-explicit background. Models are the random-weight DCPv2-layout fixtures (generated
with TensorFlow into a cache folder and converted by ``deepcream.convert``) or installed ones;
compute does not depend on the weight values.

Every implementation runs in its own subprocess (``python -m deepcream.bench --worker``), so
its peak RSS is its own. Per implementation: end-to-end image time (decode, regions,
inference, paste, encode), per-region inference time, peak RSS, model size, load and warm-up
time, first request vs steady state (median of the runs after the first). Results go to
``bench-results.json``, ``bench-results.md`` and ``bench-results.png``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepcream.errors import DeepcreamError

DATA_DIR = Path(__file__).parent / "data"
WORKLOAD_JSON = DATA_DIR / "reference-workload.json"
# Std of the background grain: 0.1 makes a PIL level-6 PNG save of the workload cost ~1.0 s
# of CPU on the 2-core dev machine, what the published service's save of the original took.
GRAIN = 0.1
WORKLOAD_VERSION = 2  # bump when the generated image changes (it is cached)
STAGES = ("decode", "regions", "inference", "paste", "encode")
KINDS = ("bar", "mosaic")

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
}
BASELINES = ("tensorflow", "tf2onnx", "service")
QUICK_DEFAULT = ("deepcream", "tensorflow", "tf2onnx", "service")

# Multiply-accumulates of one 256x256 crop, dense, from the architecture in shared/dcpv2-model.md:
# (output side, kernel, in, out) per conv, plus the attention's two 1024x2304x900 products.
_CONVS = [
    (256, 5, 6, 32), (128, 3, 32, 64), (128, 3, 64, 64), (64, 3, 64, 128), (64, 3, 128, 128),
    (32, 3, 128, 256), (32, 3, 256, 256), (32, 3, 256, 256), (32, 3, 256, 256), (32, 3, 256, 256),
    (32, 1, 512, 256),  # CB1/ML
    (32, 3, 256, 128), (32, 3, 128, 128), (64, 3, 128, 64), (64, 3, 64, 64),
    (128, 3, 64, 32), (128, 3, 32, 32), (256, 3, 32, 16), (256, 3, 16, 16), (256, 3, 16, 3),
]
ATTENTION_MACS = 2 * 1024 * 2304 * 900
CONV_MACS = sum(side * side * k * k * cin * cout for side, k, cin, cout in _CONVS)


def crop_flops(attention: bool = True) -> float:
    """FLOPs (2 per MAC) of one crop through the dense network."""
    return 2.0 * (CONV_MACS + (ATTENTION_MACS if attention else 0))


def load_workload() -> dict[str, Any]:
    """The reference workload description shipped with the package."""
    return json.loads(WORKLOAD_JSON.read_text())


# ---------------------------------------------------------------------------------------------
# The workload image


def _background(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth colour fields with hard-edged flat blobs and slight grain: illustration-like
    content (flat areas and edges) so region finding, resampling and PNG coding do realistic
    work."""
    rng = np.random.default_rng(seed)
    ys = (np.arange(height, dtype=np.float32) / height)[:, None]
    xs = (np.arange(width, dtype=np.float32) / width)[None, :]
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        f = rng.uniform(1.0, 4.0, 3)
        p = rng.uniform(0, 2 * np.pi, 3)
        img[..., c] = (150 + 40 * np.sin(f[0] * 2 * np.pi * xs + p[0]) * np.cos(f[1] * 2 * np.pi * ys + p[1])
                       + 25 * np.sin(f[2] * 2 * np.pi * (xs + ys) + p[2]))
    for _ in range(40):  # flat-coloured ellipses, like cel shading
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.02, 0.12) * width, rng.uniform(0.02, 0.12) * height
        x0, x1 = int(max(cx - rx, 0)), int(min(cx + rx + 1, width))
        y0, y1 = int(max(cy - ry, 0)), int(min(cy + ry + 1, height))
        yy = np.arange(y0, y1, dtype=np.float32)[:, None]
        xx = np.arange(x0, x1, dtype=np.float32)[None, :]
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        patch = img[y0:y1, x0:x1]
        patch[inside] = patch[inside] * 0.4 + rng.uniform(40, 230, 3).astype(np.float32) * 0.6
    img += rng.normal(0.0, GRAIN, img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    # Never produce the mask colour by accident: red stays above 0.
    out[..., 0] = np.maximum(out[..., 0], 1)
    return out


def _stroke(w: int, h: int, pixels: int, anti: bool) -> np.ndarray:
    """A thick straight stroke across a w x h box, corner to corner, with about ``pixels``
    pixels."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    x0, y0, x1, y1 = (0.0, h - 1.0, w - 1.0, 0.0) if anti else (0.0, 0.0, w - 1.0, h - 1.0)
    dx, dy = x1 - x0, y1 - y0
    length = max(np.hypot(dx, dy), 1e-9)
    dist = np.abs(dy * (xx - x0) - dx * (yy - y0)) / length
    lo, hi = 0.5, float(max(w, h))
    for _ in range(40):  # bisect the half-width to match the pixel count
        mid = (lo + hi) / 2
        if np.count_nonzero(dist <= mid) < pixels:
            lo = mid
        else:
            hi = mid
    return dist <= hi


def make_workload_image(spec: dict[str, Any] | None = None, *, scale: float = 1.0,
                        seed: int = 2019) -> tuple[np.ndarray, np.ndarray]:
    """The reference workload image (uint8 [H,W,3]) and its stroke mask (bool [H,W]).

    Strokes are drawn in the given boxes. Some boxes overlap; as in the original image the
    strokes stay separate 4-connected regions: each stroke takes the direction that touches
    the earlier ones least, loses the pixels next to them and keeps its largest piece.
    ``scale`` < 1 shrinks the whole geometry (for quick tests)."""
    from scipy import ndimage

    spec = spec or load_workload()
    width = max(int(round(spec["image"]["width"] * scale)), 64)
    height = max(int(round(spec["image"]["height"] * scale)), 64)
    rgb = _background(width, height, seed)
    mask = np.zeros((height, width), bool)
    cross = ndimage.generate_binary_structure(2, 1)
    for region in spec["regions"]:
        x, y = int(region["x"] * scale), int(region["y"] * scale)
        w, h = max(int(region["w"] * scale), 2), max(int(region["h"] * scale), 2)
        w, h = min(w, width - x), min(h, height - y)
        pixels = max(int(region["pixels"] * scale * scale), 2)
        # Pixels 4-adjacent to an earlier stroke (in the box, plus a 1-pixel margin).
        near = ndimage.binary_dilation(mask, structure=cross)[y:y + h, x:x + w]
        candidates = [_stroke(w, h, pixels, anti) for anti in (False, True)]
        stroke = min(candidates, key=lambda s: int(np.count_nonzero(s & near))) & ~near
        labels, count = ndimage.label(stroke, structure=cross)
        if count > 1:
            sizes = ndimage.sum_labels(stroke, labels, range(1, count + 1))
            stroke = labels == (int(np.argmax(sizes)) + 1)
        mask[y:y + h, x:x + w] |= stroke
    color = np.array(spec.get("mask_color", (0, 255, 0)), np.uint8)
    rgb[mask] = color
    return rgb, mask


def workload_png(path: Path, *, scale: float = 1.0) -> dict[str, Any]:
    """Write the workload PNG once (with a JSON description beside it) and describe it."""
    from PIL import Image
    from scipy import ndimage

    from deepcream.fsutil import atomic_path, atomic_write_bytes

    about = path.with_suffix(".json")
    if path.is_file() and about.is_file():
        return json.loads(about.read_text())
    rgb, mask = make_workload_image(scale=scale)
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    _, count = ndimage.label(mask)
    info = {"file": str(path), "width": rgb.shape[1], "height": rgb.shape[0],
            "regions": int(count), "mask_pixels": int(mask.sum()), "scale": scale,
            "png_bytes": path.stat().st_size}
    atomic_write_bytes(about, json.dumps(info).encode())
    return info


# ---------------------------------------------------------------------------------------------
# Models and baseline artefacts (built once, cached)


def default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "deepcream" / "bench"


def _tf_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tf_slim"))


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _run_quiet(cmd: list[str], what: str, timeout: float = 1800) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(cmd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise DeepcreamError(f"{what} failed: {' / '.join(tail)}")


def fixture_checkpoints(cache: Path, say: Callable[[str], None] = print) -> Path | None:
    """The random-weight DCPv2 checkpoints (``bar/``, ``mosaic/``), generated on first use with
    TensorFlow; None if TensorFlow is not installed."""
    source = Path(__file__).parent / "baselines" / "fixture.py"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    root = cache / f"checkpoints-{digest}"
    if (root / "done").exists():
        return root
    if not _tf_available():
        return None
    say("generating random-weight DCPv2 checkpoints with TensorFlow (once, ~20 s) ...")
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _run_quiet([sys.executable, "-m", "deepcream.baselines.fixture", str(tmp)],
               "generating the fixture checkpoints")
    (tmp / "done").write_text("ok\n")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def fixture_models(checkpoints: Path, cache: Path, say: Callable[[str], None] = print) -> Path:
    """deepcream's ONNX models converted from the fixture checkpoints (cached per converter
    source, so a changed graph builder is re-measured)."""
    from deepcream import convert, graph

    digest = hashlib.sha256(Path(graph.__file__).read_bytes()
                            + Path(convert.__file__).read_bytes()).hexdigest()[:12]
    out = cache / f"models-{checkpoints.name}-{digest}"
    if all((out / f"{k}.onnx").is_file() for k in KINDS):
        return out
    say("converting the fixture checkpoints with deepcream convert ...")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    convert.convert(checkpoints, tmp, force=True, report=lambda _m: None)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def tf2onnx_model(checkpoints: Path, cache: Path, say: Callable[[str], None] = print) -> Path | None:
    """The write-up's tf2onnx model of the fixture's bar checkpoint (None without tf2onnx)."""
    target = cache / f"tf2onnx-{checkpoints.name}" / "bar.onnx"
    if target.is_file():
        return target
    if not (_tf_available() and _have("tf2onnx")):
        return None
    say("converting the fixture with tf2onnx (write-up baseline, once) ...")
    code = ("import sys; from deepcream.baselines import tf2onnx_surgery as t, tf_original as o; "
            "t.convert_to_onnx(o.checkpoint_prefix(sys.argv[1]), sys.argv[2])")
    _run_quiet([sys.executable, "-c", code, str(checkpoints / "bar"), str(target)],
               "tf2onnx conversion")
    return target


# ---------------------------------------------------------------------------------------------
# Worker side: one implementation in this process


def _peak_rss_mb() -> float:
    """Peak resident set of this process in MB. VmHWM belongs to the current address space;
    ru_maxrss would also count the parent's RSS at fork time (Linux keeps it across exec)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float | None:
    """PSNR in dB; None when identical (infinite)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return None if mse == 0 else 10.0 * np.log10(peak * peak / mse)


class _Timer:
    def __init__(self) -> None:
        self.stages: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @contextlib.contextmanager
    def stage(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] += time.perf_counter() - t


def _pipeline_image(data: bytes, infer: Callable[[np.ndarray, np.ndarray], np.ndarray]
                    ) -> tuple[dict[str, float], bytes, int]:
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


def _pipeline_streamed(data: bytes, engine: Any) -> tuple[dict[str, float], bytes, int]:
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


def _model_infer(run: Callable[[np.ndarray, np.ndarray], np.ndarray], kind: str = "bar"):
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
    if not checkpoints:
        return None
    ref = Path(checkpoints) / "bar" / "reference.npz"
    if not ref.is_file():
        return None
    data = np.load(ref)
    return data["x"].astype(np.float32), data["m"][..., :1].astype(np.float32)


def _measure_steady(fn: Callable[[], Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def _worker(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    spec = IMPLEMENTATIONS[name]
    kind = spec["kind"]
    data = Path(cfg["workload"]).read_bytes()
    runs = int(cfg["runs"])
    threads = cfg.get("threads")
    work = Path(cfg["work_dir"])
    result: dict[str, Any] = {"name": name}
    fixture = _fixture_batch(cfg.get("checkpoints"))

    t0 = time.perf_counter()
    if kind == "deepcream":
        # what `deepcream decensor`/`serve` import before they load a model: counted in the
        # load time, not in the first request
        from deepcream import imageio, pipeline  # noqa: F401
        from deepcream.engines import OnnxEngine
        from deepcream.session import SessionOptions

        session = SessionOptions(backend=spec["backend"], threads=threads,
                                 precision=spec["precision"])
        engines = {k: OnnxEngine(Path(cfg["models"]) / f"{k}.onnx", k, session) for k in KINDS}
        result["load_s"] = time.perf_counter() - t0
        for engine in engines.values():
            engine.warmup()
        session = engines["bar"].session
        result["backend"] = session.backend
        result["precision"] = session.precision
        result["threads"] = session.threads
        result["models_loaded"] = len(engines)
        result["model_bytes"] = sum((Path(cfg["models"]) / f"{k}.onnx").stat().st_size for k in KINDS)
        region_run = session.run

        def image_once() -> tuple[dict[str, float], bytes, int]:
            return _pipeline_streamed(data, engines["bar"])
    elif kind in ("tensorflow", "tf2onnx"):
        from deepcream.baselines import tf_original

        bar_dir = Path(cfg["checkpoints"]) / "bar"
        if kind == "tensorflow":
            model = tf_original.TensorFlowOriginal(tf_original.checkpoint_prefix(bar_dir),
                                                   threads=threads)
            prefix = tf_original.checkpoint_prefix(bar_dir)
            result["model_bytes"] = sum(p.stat().st_size for p in bar_dir.glob(prefix.name + ".*"))
            result["backend"] = "tensorflow " + _version("tensorflow")
        else:
            from deepcream.baselines.tf2onnx_surgery import Tf2OnnxPool

            model = Tf2OnnxPool(cfg["tf2onnx"])
            result["model_bytes"] = Path(cfg["tf2onnx"]).stat().st_size
            result["backend"] = f"onnxruntime {_version('onnxruntime')}, pool of {model.workers}"
        result["load_s"] = time.perf_counter() - t0
        result["models_loaded"] = 1
        region_run = model.run
        infer = _model_infer(model.run)

        def image_once() -> tuple[dict[str, float], bytes, int]:
            return _pipeline_image(data, infer)
    elif kind == "service":
        from deepcream.baselines import service
        from deepcream.session import ModelSession

        session = ModelSession(Path(cfg["models"]) / "bar.onnx", backend="onnxruntime",
                               threads=threads)
        result["load_s"] = time.perf_counter() - t0
        result["backend"] = "published-service pipeline around deepcream's bar.onnx (onnxruntime)"
        result["models_loaded"] = 1
        result["model_bytes"] = (Path(cfg["models"]) / "bar.onnx").stat().st_size
        region_run = session.run

        def image_once() -> tuple[dict[str, float], bytes, int]:
            png, timings = service.decensor_bar(data, session.run)
            stages = {s: timings.get(s, 0.0) for s in STAGES}
            return stages, png, -1
    else:  # pragma: no cover
        raise ValueError(kind)
    result["ready_s"] = time.perf_counter() - t0
    result["peak_rss_ready_mb"] = _peak_rss_mb()

    # First request right after load (+ warm-up where the implementation does one).
    t = time.perf_counter()
    stages, png, crops = image_once()
    result["first_request_s"] = time.perf_counter() - t
    result["first_request_stages"] = stages
    result["peak_rss_first_request_mb"] = _peak_rss_mb()
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
    if crops < 0:  # the service pipeline finds its own regions
        crops = int(cfg["regions"])
    result["crops"] = crops
    result["per_region_in_image_s"] = result["stages_s"]["inference"] / max(crops, 1)
    result["peak_rss_after_runs_mb"] = _peak_rss_mb()
    result["first_vs_steady"] = result["first_request_s"] / result["end_to_end_s"]

    # One crop at batch 1, isolated from the pipeline.
    if fixture is not None:
        x1, m1 = fixture[0][:1], fixture[1][:1]
    else:
        x1 = np.zeros((1, 256, 256, 3), np.float32)
        m1 = np.ones((1, 256, 256, 1), np.float32)
        m1[:, 100:160, 90:170] = 0
    region_run(x1, m1)
    result["per_region_batch1_s"] = statistics.median(
        _measure_steady(lambda: region_run(x1, m1), max(3, min(runs, 5))))

    # Output quality and parity: fp32 deepcream writes the references, others compare.
    out_png = work / f"{name}.png"
    out_png.write_bytes(png)
    if fixture is not None and kind != "service":
        pred = region_run(*fixture)
        ref_path = work / "fixture-deepcream.npy"
        if name == "deepcream":
            np.save(ref_path, pred)
        if ref_path.is_file():
            ref = np.load(ref_path)
            holes = fixture[1][..., 0] == 0
            result["fixture_max_abs_diff"] = float(np.abs(pred - ref).max())
            result["fixture_psnr_holes_db"] = _psnr(
                (pred[holes] + 1) * 127.5, (ref[holes] + 1) * 127.5)
    ref_png = work / "deepcream.png"
    if name != "deepcream" and ref_png.is_file():
        from PIL import Image

        mine = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        ref = np.asarray(Image.open(ref_png).convert("RGB"))
        holes = np.all(np.asarray(Image.open(cfg["workload"]).convert("RGB")) == (0, 255, 0), axis=-1)
        if mine.shape == ref.shape:
            result["workload_psnr_holes_db"] = _psnr(mine[holes], ref[holes])
            result["workload_max_abs_diff"] = int(np.abs(mine.astype(int) - ref.astype(int)).max())
    # Headline: both models loaded and the workload image processed (the runs above); what
    # the parity/quality checks below add is kept apart.
    result["peak_rss_mb"] = result["peak_rss_after_runs_mb"]
    result["peak_rss_end_mb"] = _peak_rss_mb()
    if cfg.get("profile") and kind == "deepcream":
        # After the RSS reading: profiling allocates on its own.
        result["profile"] = _profile(image_once, Path(cfg["models"]) / "bar.onnx",
                                     x1, m1, work / f"{name}.profile.txt", threads)
    return result


def _profile(image_once: Callable[[], Any], model: Path, x1: np.ndarray, m1: np.ndarray,
             text_out: Path, threads: int | None) -> dict[str, Any]:
    """Where the time goes: pyinstrument over one image (Python side vs model calls) and
    onnxruntime's per-operator profile of one crop, summed by operator type."""
    out: dict[str, Any] = {}
    if _have("pyinstrument"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
        image_once()
        profiler.stop()
        text_out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        out["pyinstrument_text"] = text_out.name
    import onnxruntime as ort

    from deepcream.session import default_threads

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(text_out.with_suffix(""))
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    feed = {"image": x1, "mask": m1}
    for _ in range(4):  # the first run pays allocation; the profile sums all of them
        sess.run(None, feed)
    trace = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + event["dur"] / 1e6 / 4
    total = sum(by_op.values())
    out["ort_ops_s_per_crop"] = dict(sorted(by_op.items(), key=lambda kv: -kv[1]))
    out["ort_kernel_total_s_per_crop"] = total
    return out


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module if module != "tensorflow" else "tensorflow-cpu")
    except Exception:
        try:
            return __import__(module).__version__
        except Exception:
            return "?"


def measure_gemm_gflops(threads: int | None = None, repeats: int = 10) -> dict[str, float]:
    """onnxruntime fp32 MatMul speed on the attention's shapes and on a large square GEMM."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from deepcream.session import default_threads

    threads = threads or default_threads()
    out: dict[str, float] = {"threads": threads}
    for label, (m, k, n) in {"attention_1024x2304x900": (1024, 2304, 900),
                             "square_2048": (2048, 2048, 2048)}.items():
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]),
             helper.make_tensor_value_info("b", TensorProto.FLOAT, [k, n])],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feed = {"a": rng.standard_normal((m, k), np.float32),
                "b": rng.standard_normal((k, n), np.float32)}
        sess.run(None, feed)
        best = min(_measure_steady(lambda sess=sess, feed=feed: sess.run(None, feed), repeats))
        out[label] = 2.0 * m * k * n / best / 1e9
    out["gflops"] = max(v for key, v in out.items() if key != "threads")
    return out


#: Engine settings measured by ``--experiments``: the workload's crops through the bar model
#: with both models loaded (unless ``models`` is 1), per-region time and peak RSS.
EXPERIMENTS: dict[str, dict[str, Any]] = {
    "default": {},  # session defaults: crops in parallel, one per call, shared arena, no mem pattern
    "ops-parallel": {"parallel": "ops"},
    "batch-4": {"batch": 4},
    "batch-8": {"batch": 8},
    "batch-all": {"batch": 64},
    "threads-1": {"threads": 1},
    "own-arenas": {"shared": False},
    "arena-off": {"arena": False, "shared": False},
    "mem-pattern": {"mem_pattern": True, "shared": False},
    "one-model": {"models": 1},
    "openvino": {"backend": "openvino"},
    "openvino-batch-all": {"backend": "openvino", "batch": 64},
    "openvino-bf16": {"backend": "openvino", "precision": "bf16"},
}


def _experiment(opts: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from deepcream import pipeline
    from deepcream.engines import dcp_model_inputs
    from deepcream.session import ModelSession

    job = pipeline.prepare(Path(cfg["workload"]).read_bytes())
    x, m = dcp_model_inputs(np.asarray(job.crops), np.asarray(job.holes), "bar")
    threads = opts.get("threads", cfg.get("threads"))
    t0 = time.perf_counter()
    settings = {key: opts[name] for name, key in (("arena", "mem_arena"), ("shared", "shared_arena"),
                                                   ("mem_pattern", "mem_pattern"), ("batch", "batch_size"),
                                                   ("parallel", "parallel"))
                if name in opts}
    sessions = [ModelSession(Path(cfg["models"]) / f"{k}.onnx", backend=opts.get("backend", "onnxruntime"),
                             threads=threads, precision=opts.get("precision", "fp32"), **settings)
                for k in KINDS[:opts.get("models", 2)]]
    load = time.perf_counter() - t0
    for sess in sessions:
        sess.warmup()
    ready = time.perf_counter() - t0
    bar = sessions[0]
    pool = ThreadPoolExecutor(opts["pool"]) if opts.get("pool", 1) > 1 else None

    def once() -> None:
        if pool is not None:
            list(pool.map(lambda i: bar.run(x[i:i + 1], m[i:i + 1]), range(len(x))))
        else:
            bar.run(x, m)

    t = time.perf_counter()
    once()
    first = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    times = _measure_steady(once, int(cfg["runs"]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time per crop is steadier than wall time on a shared machine.
    cpu = (usage.ru_utime + usage.ru_stime - cpu0) / len(times) / len(x)
    return {"options": opts, "crops": len(x), "load_s": load, "ready_s": ready,
            "first_s": first, "per_region_s": statistics.median(times) / len(x),
            "cpu_per_region_s": cpu,
            "images_s": statistics.median(times), "peak_rss_mb": _peak_rss_mb(),
            "backend": bar.backend, "threads": bar.threads}


def _worker_main(argv: Sequence[str]) -> int:
    from deepcream.malloc import tune_malloc

    tune_malloc()  # as the decensor/serve commands do, for every implementation alike
    name, cfg_path, result_path = argv
    cfg = json.loads(Path(cfg_path).read_text())
    if name == "gemm":
        result = measure_gemm_gflops(cfg.get("threads"))
    elif name.startswith("exp:"):
        result = _experiment(EXPERIMENTS[name[4:]], cfg)
    else:
        result = _worker(name, cfg)
    Path(result_path).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# Driver


def _run_worker(name: str, cfg_path: Path, work: Path, timeout: float) -> dict[str, Any]:
    result_path = work / f"{name}.result.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "deepcream.bench", "--worker", name, str(cfg_path), str(result_path)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0 or not result_path.is_file():
        lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
        return {"name": name, "error": lines[-1] if lines else f"exit code {proc.returncode}"}
    return json.loads(result_path.read_text())


def _skip_reason(name: str, have_checkpoints: bool, tf2onnx_path: Path | None) -> str | None:
    spec = IMPLEMENTATIONS[name]
    if spec["kind"] == "deepcream" and spec["backend"] == "openvino" and not _have("openvino"):
        return "OpenVINO not installed (pip install 'deepcream[openvino]')"
    if spec["kind"] == "tensorflow" and not (have_checkpoints and _tf_available()):
        return "TensorFlow not installed (pip install 'deepcream[bench]')"
    if spec["kind"] == "tf2onnx" and tf2onnx_path is None:
        return "tf2onnx/TensorFlow not installed (pip install 'deepcream[bench]')"
    return None


RATIO_METRICS = {
    "end_to_end_s": "end-to-end image time",
    "per_region_batch1_s": "per-region inference (batch 1)",
    "per_region_in_image_s": "per-region inference (in image)",
    "peak_rss_mb": "peak RSS",
    "ready_s": "load + warm-up",
    "first_request_s": "first request",
}


def _ratios(results: dict[str, dict[str, Any]], ours: str = "deepcream") -> dict[str, dict[str, float]]:
    """baseline / deepcream per metric: how many times deepcream is faster or smaller."""
    mine = results.get(ours, {})
    if "error" in mine or "skipped" in mine or not mine:
        return {}
    out: dict[str, dict[str, float]] = {}
    for name, res in results.items():
        if name == ours or "error" in res or "skipped" in res:
            continue
        out[name] = {m: res[m] / mine[m] for m in RATIO_METRICS
                     if isinstance(res.get(m), int | float) and mine.get(m)}
    return out


def run_bench(out_dir: str | os.PathLike[str], *, quick: bool = False,
              implementations: Sequence[str] | None = None, models: str | os.PathLike[str] | None = None,
              runs: int | None = None, threads: int | None = None, scale: float = 1.0,
              cache_dir: str | os.PathLike[str] | None = None, gemm: bool = True,
              checkpoints: str | os.PathLike[str] | None = None,
              experiments: Sequence[str] = (), profile: bool = False,
              timeout: float = 3600, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark and write ``bench-results.{json,md,png}`` into ``out_dir``.

    ``implementations``: names from ``IMPLEMENTATIONS`` (default: all; ``quick``: deepcream and
    the baselines). ``models``: a folder with ``bar.onnx``/``mosaic.onnx`` to use instead of
    the fixture conversions. ``runs``: timed runs after the first (default 5, quick 2).
    ``scale`` < 1 shrinks the workload image (tests). ``checkpoints``: a folder with the
    random-weight ``bar/`` and ``mosaic/`` checkpoints (default: generated into the cache).
    ``experiments``: names from ``EXPERIMENTS`` (engine settings, measured on the workload's
    crops, each in its own subprocess). ``profile``: also profile deepcream (pyinstrument over
    one image -> ``bench-profile.txt``, onnxruntime per-operator times of one crop).
    Returns the results dict."""
    names = list(implementations or (QUICK_DEFAULT if quick else IMPLEMENTATIONS))
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    unknown += [n for n in experiments if n not in EXPERIMENTS]
    if unknown:
        raise DeepcreamError(f"unknown implementation(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(IMPLEMENTATIONS)}")
    if "deepcream" in names:  # the fp32 reference for quality/parity goes first
        names.remove("deepcream")
        names.insert(0, "deepcream")
    runs = int(runs) if runs else (2 if quick else 5)
    if runs < 1:
        raise DeepcreamError("runs must be >= 1")
    if not 0.05 <= scale <= 1.0:
        raise DeepcreamError("scale must be between 0.05 and 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)

    # Checkpoints are generated only when something needs them (fixture models, TF baselines).
    need_tf = any(IMPLEMENTATIONS[n]["kind"] in ("tensorflow", "tf2onnx") for n in names)
    if checkpoints:
        checkpoints = Path(checkpoints)
    elif need_tf or not models:
        checkpoints = fixture_checkpoints(cache, say)
    if models:
        models_dir = Path(models)
        missing = [k for k in KINDS if not (models_dir / f"{k}.onnx").is_file()]
        if missing:
            raise DeepcreamError(f"{models_dir} has no {' or '.join(missing)}.onnx")
        model_source = f"installed models in {models_dir}"
    elif checkpoints is not None:
        models_dir = fixture_models(checkpoints, cache, say)
        model_source = "random-weight DCPv2-layout fixture checkpoints converted by deepcream"
    else:
        raise DeepcreamError("no models to benchmark: pass --models DIR, or install the bench "
                             "extra (pip install 'deepcream[bench]') to generate fixture models")
    tf2onnx_path = None
    if checkpoints is not None and "tf2onnx" in names:
        tf2onnx_path = tf2onnx_model(checkpoints, cache, say)

    workload_file = cache / f"workload-v{WORKLOAD_VERSION}-{scale:g}.png"
    workload = workload_png(workload_file, scale=scale)
    say(f"workload: {workload['width']}x{workload['height']}, {workload['regions']} regions, "
        f"{workload['mask_pixels']} mask pixels; {runs} timed runs after the first")

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="deepcream-bench-") as tmp:
        work = Path(tmp)
        cfg = {"workload": str(workload_file), "models": str(models_dir), "runs": runs,
               "threads": threads, "work_dir": str(work), "regions": workload["regions"],
               "checkpoints": str(checkpoints) if checkpoints else None, "profile": profile,
               "tf2onnx": str(tf2onnx_path) if tf2onnx_path else None}
        cfg_path = work / "config.json"
        cfg_path.write_text(json.dumps(cfg))
        floor: dict[str, Any] = {}
        if gemm:
            say("measuring fp32 GEMM speed ...")
            g = _run_worker("gemm", cfg_path, work, timeout)
            if "error" not in g:
                floor = {"gemm_gflops": g["gflops"], "gemm": g,
                         "crop_gflop_dense": crop_flops() / 1e9,
                         "crop_gflop_without_attention": crop_flops(False) / 1e9,
                         "floor_dense_s": crop_flops() / 1e9 / g["gflops"],
                         "floor_without_attention_s": crop_flops(False) / 1e9 / g["gflops"]}
        for name in names:
            reason = _skip_reason(name, checkpoints is not None, tf2onnx_path)
            if reason:
                say(f"{name}: skipped ({reason})")
                results[name] = {"name": name, "skipped": reason}
                continue
            say(f"{name}: running ...")
            res = _run_worker(name, cfg_path, work, timeout)
            results[name] = res
            if "error" in res:
                say(f"{name}: failed: {res['error']}")
            else:
                say(f"{name}: {res['end_to_end_s']:.3f} s end to end, "
                    f"{res['per_region_batch1_s'] * 1000:.0f} ms/region, "
                    f"{res['peak_rss_mb']:.0f} MB peak RSS")
        experiment_results: dict[str, dict[str, Any]] = {}
        for exp in experiments:
            if EXPERIMENTS[exp].get("backend") == "openvino" and not _have("openvino"):
                experiment_results[exp] = {"skipped": "OpenVINO not installed"}
                continue
            say(f"experiment {exp}: running ...")
            res = _run_worker("exp:" + exp, cfg_path, work, timeout)
            experiment_results[exp] = res
            if "error" in res:
                say(f"experiment {exp}: failed: {res['error']}")
            else:
                say(f"experiment {exp}: {res['per_region_s'] * 1000:.0f} ms/region, "
                    f"{res['peak_rss_mb']:.0f} MB peak RSS, ready in {res['ready_s']:.2f} s")
        prof = work / "deepcream.profile.txt"
        if prof.is_file():
            shutil.copyfile(prof, out_dir / "bench-profile.txt")
        sample = work / "deepcream.png"
        if sample.is_file():  # the fp32 output, to look at
            shutil.copyfile(sample, out_dir / "bench-output.png")

    if floor and "deepcream" in results and "per_region_batch1_s" in results["deepcream"]:
        ours = results["deepcream"]
        floor["deepcream_per_region_vs_dense_floor"] = ours["per_region_in_image_s"] / floor["floor_dense_s"]
        floor["deepcream_batch1_vs_dense_floor"] = ours["per_region_batch1_s"] / floor["floor_dense_s"]
    report = {
        "meta": _meta(quick, runs, threads, model_source),
        "workload": workload,
        "floor": floor,
        "implementations": results,
        "ratios_baseline_over_deepcream": _ratios(results),
        "experiments": experiment_results,
    }
    _write_outputs(report, out_dir)
    say(render_markdown(report))
    return report


def _meta(quick: bool, runs: int, threads: int | None, model_source: str) -> dict[str, Any]:
    from deepcream.session import default_threads

    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "quick": quick, "runs": runs, "threads": threads or default_threads(),
        "cpu": cpu, "cpus_usable": default_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "versions": {m: _version(m) for m in ("onnxruntime", "openvino", "tensorflow", "tf2onnx", "numpy")},
        "models": model_source,
        "method": "each implementation in its own subprocess; end-to-end = decode + regions + "
                  "inference + paste + PNG encode (deepcream overlaps paste and encode with "
                  "the inference: pipeline.run_job); first request right after load; steady "
                  "state = median of the timed runs after it",
    }


def _fmt(value: Any, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def render_markdown(report: dict[str, Any]) -> str:
    """The results as Markdown tables (implementations, stage breakdown, ratios, floor)."""
    meta, wl = report["meta"], report["workload"]
    lines = [
        "# deepcream bench results", "",
        f"{meta['date']} · {meta['cpu']} · {meta['cpus_usable']} CPUs · threads {meta['threads']} · "
        f"load average {', '.join(f'{x:.1f}' for x in meta['load_average'] or [])} · "
        f"{'quick' if meta['quick'] else 'full'} run, median of {meta['runs']} runs after the first", "",
        f"Workload: {wl['width']}x{wl['height']} image, {wl['regions']} regions "
        f"({wl['mask_pixels']} mask pixels). Models: {meta['models']}.", "",
        "| implementation | backend | end-to-end s | first request s | per region (batch 1) ms | "
        "per region (in image) ms | load+warm s | peak RSS MB | model MB | PSNR in holes vs fp32 dB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    stage_rows = []
    for name, res in report["implementations"].items():
        if "skipped" in res or "error" in res:
            lines.append(f"| {name} | {res.get('skipped') or 'error: ' + res['error']} "
                         "| - | - | - | - | - | - | - | - |")
            continue
        psnr = res.get("workload_psnr_holes_db", "-" if name == "deepcream" else None)
        if name != "deepcream" and psnr is None and "workload_psnr_holes_db" in res:
            psnr = "identical"
        backend = res.get("backend", "")
        if res.get("precision"):
            backend += f" {res['precision']}"
        lines.append(
            f"| {name} | {backend} | {_fmt(res['end_to_end_s'])} | {_fmt(res['first_request_s'])} | "
            f"{_fmt(res['per_region_batch1_s'] * 1000, digits=0)} | "
            f"{_fmt(res['per_region_in_image_s'] * 1000, digits=0)} | {_fmt(res['ready_s'])} | "
            f"{_fmt(res['peak_rss_mb'], digits=0)} | {_fmt(res['model_bytes'] / 1e6, digits=1)} | "
            f"{_fmt(psnr, digits=1)} |")
        stages = res["stages_s"]
        stage_rows.append(f"| {name} | " + " | ".join(_fmt(stages[s]) for s in STAGES) + " |")
    lines += ["", "Stage breakdown (median seconds per image):", "",
              "| implementation | " + " | ".join(STAGES) + " |",
              "|---|" + "---:|" * len(STAGES)] + stage_rows
    ratios = report.get("ratios_baseline_over_deepcream") or {}
    if ratios:
        lines += ["", "Ratios baseline / deepcream (> 1: deepcream is faster or smaller):", "",
                  "| baseline | " + " | ".join(RATIO_METRICS.values()) + " |",
                  "|---|" + "---:|" * len(RATIO_METRICS)]
        for name, r in ratios.items():
            lines.append(f"| {name} | " + " | ".join(
                _fmt(r.get(m), "x", 2) for m in RATIO_METRICS) + " |")
    exps = report.get("experiments") or {}
    if exps:
        lines += ["", "Engine settings (workload crops through the bar model, both models loaded "
                      "unless noted):", "",
                  "| setting | backend | threads | per region ms | CPU per region ms | first run / steady | load+warm s | peak RSS MB |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for name, res in exps.items():
            if "per_region_s" not in res:
                lines.append(f"| {name} | {res.get('skipped') or res.get('error')} | | | | | | |")
                continue
            lines.append(f"| {name} | {res['backend']} | {res['threads']} | "
                         f"{res['per_region_s'] * 1000:.0f} | {res['cpu_per_region_s'] * 1000:.0f} | "
                         f"{res['first_s'] / res['images_s']:.2f} | "
                         f"{res['ready_s']:.2f} | {res['peak_rss_mb']:.0f} |")
    prof = (report["implementations"].get("deepcream") or {}).get("profile")
    if prof:
        total = prof["ort_kernel_total_s_per_crop"]
        lines += ["", f"onnxruntime operator time for one crop (deepcream, {total * 1000:.0f} ms "
                      "of kernel time):", "", "| operator | ms | share |", "|---|---:|---:|"]
        for op, sec in list(prof["ort_ops_s_per_crop"].items())[:10]:
            lines.append(f"| {op} | {sec * 1000:.1f} | {sec / total:.0%} |")
    floor = report.get("floor") or {}
    if floor:
        lines += ["", f"Floor: fp32 GEMM {floor['gemm_gflops']:.0f} GFLOPS (onnxruntime, "
                      f"{floor['gemm']['threads']} threads); one crop is "
                      f"{floor['crop_gflop_dense']:.1f} GFLOP dense -> "
                      f"{floor['floor_dense_s'] * 1000:.0f} ms/region "
                      f"({floor['floor_without_attention_s'] * 1000:.0f} ms without attention)."]
        if "deepcream_per_region_vs_dense_floor" in floor:
            lines.append(f"deepcream per region = {floor['deepcream_per_region_vs_dense_floor']:.2f}x "
                         f"the dense floor in the image, {floor['deepcream_batch1_vs_dense_floor']:.2f}x "
                         "for a lone crop (sparse attention and the windowed decoder do less than "
                         "the dense FLOPs).")
    return "\n".join(lines) + "\n"


def render_chart(report: dict[str, Any], path: Path) -> None:
    """Horizontal stacked bars: the stage breakdown of each implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(n, r["stages_s"]) for n, r in report["implementations"].items() if "stages_s" in r]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.55 * max(len(rows), 1)), dpi=110)
    colors = ["#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3", "#a6d854"]
    labels = [n for n, _ in rows]
    left = np.zeros(len(rows))
    for stage, color in zip(STAGES, colors, strict=True):
        widths = np.array([st[stage] for _, st in rows])
        ax.barh(labels, widths, left=left, color=color, label=stage)
        left += widths
    for i, total in enumerate(left):
        ax.text(total, i, f" {total:.2f} s", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per image (median)")
    ax.set_title(f"deepcream bench: {report['workload']['width']}x{report['workload']['height']}, "
                 f"{report['workload']['regions']} regions")
    ax.set_xlim(0, max(left.max() if len(left) else 1, 1e-3) * 1.18)
    ax.legend(ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.2 / max(len(rows), 1)),
              frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _write_outputs(report: dict[str, Any], out_dir: Path) -> None:
    from deepcream.fsutil import atomic_path, atomic_write_bytes

    atomic_write_bytes(out_dir / "bench-results.json",
                       (json.dumps(report, indent=2, default=float) + "\n").encode())
    atomic_write_bytes(out_dir / "bench-results.md", render_markdown(report).encode())
    with atomic_path(out_dir / "bench-results.png") as tmp:
        render_chart(report, tmp)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2:]))
    print("usage: deepcream bench (this module's entry is for its worker subprocesses)",
          file=sys.stderr)
    sys.exit(2)
