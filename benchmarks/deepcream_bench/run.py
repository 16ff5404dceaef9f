"""The benchmark run (``deepcream bench``): check the request, build or find the models and the
workload image, run the GEMM floor, each implementation and each experiment in its own worker
subprocess, and write the report.

Timing method (also in the report's ``meta``): end to end = decode + regions + inference +
paste + PNG encode; first request right after load; steady state = median of the timed runs
after it. Results go to ``bench-results.json``, ``bench-results.md`` and ``bench-results.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deepcream.errors import DeepcreamError
from deepcream.options import MODES

from . import python_command
from . import report as reporting
from .experiments import EXPERIMENTS
from .fixtures import default_cache_dir, fixture_checkpoints, fixture_models, tf2onnx_model
from .floor import compare_with_floor, floor_summary
from .measure import have, tf_available
from .worker import IMPLEMENTATIONS, QUICK_DEFAULT
from .workload import WORKLOAD_VERSION, workload_png

__all__ = ["EXPERIMENTS", "IMPLEMENTATIONS", "QUICK_DEFAULT", "run_bench"]


def _run_worker(name: str, cfg_path: Path, work: Path, timeout: float) -> dict[str, Any]:
    """The worker subprocess for ``name``; its result, or ``{"error": ...}``."""
    result_path = work / f"{name}.result.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PYTHONWARNINGS="ignore")
    cmd = python_command("from deepcream_bench.worker import main; sys.exit(main(sys.argv[1:]))")
    cmd += [name, str(cfg_path), str(result_path)]
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
    if spec["kind"] == "deepcream" and spec["backend"] == "openvino" and not have("openvino"):
        return "OpenVINO not installed (pip install 'deepcream[openvino]')"
    if spec["kind"] == "tensorflow" and not (have_checkpoints and tf_available()):
        return "TensorFlow not installed (pip install 'deepcream[bench]')"
    if (spec["kind"] == "tf2onnx" or spec.get("model") == "tf2onnx") and tf2onnx_path is None:
        return "tf2onnx/TensorFlow not installed (pip install 'deepcream[bench]')"
    return None


def _check_request(implementations: Sequence[str] | None, quick: bool, experiments: Sequence[str],
                   runs: int | None, scale: float) -> tuple[list[str], int]:
    """The implementation names to run (fp32 deepcream first: it is the quality reference)
    and the number of timed runs."""
    names = list(implementations or (QUICK_DEFAULT if quick else IMPLEMENTATIONS))
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    unknown += [n for n in experiments if n not in EXPERIMENTS]
    if unknown:
        raise DeepcreamError(f"unknown implementation(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(IMPLEMENTATIONS)}")
    if "deepcream" in names:
        names.remove("deepcream")
        names.insert(0, "deepcream")
    runs = int(runs) if runs else (2 if quick else 5)
    if runs < 1:
        raise DeepcreamError("runs must be >= 1")
    if not 0.05 <= scale <= 1.0:
        raise DeepcreamError("scale must be between 0.05 and 1")
    return names, runs


def _models(names: Sequence[str], models: str | os.PathLike[str] | None,
            checkpoints: str | os.PathLike[str] | None, cache: Path,
            say: Callable[[str], None]) -> tuple[Path, str, Path | None, Path | None]:
    """The models folder, a description of it, the checkpoints (None without TensorFlow)
    and the tf2onnx model (when asked for and possible)."""
    # Checkpoints are generated only when something needs them (fixture models, TF baselines).
    need_tf = any(IMPLEMENTATIONS[n]["kind"] in ("tensorflow", "tf2onnx")
                  or IMPLEMENTATIONS[n].get("model") == "tf2onnx" for n in names)
    ckpt: Path | None = None
    if checkpoints:
        ckpt = Path(checkpoints)
    elif need_tf or not models:
        ckpt = fixture_checkpoints(cache, say)
    if models:
        models_dir = Path(models)
        missing = [k for k in MODES if not (models_dir / f"{k}.onnx").is_file()]
        if missing:
            raise DeepcreamError(f"{models_dir} has no {' or '.join(missing)}.onnx")
        model_source = f"installed models in {models_dir}"
    elif ckpt is not None:
        models_dir = fixture_models(ckpt, cache, say)
        model_source = "random-weight DCPv2-layout fixture checkpoints converted by deepcream"
    else:
        raise DeepcreamError("no models to benchmark: pass --models DIR, or install the bench "
                             "extra (pip install 'deepcream[bench]') to generate fixture models")
    tf2onnx_path = None
    if ckpt is not None and ({"tf2onnx", "service-own-model"} & set(names)):
        tf2onnx_path = tf2onnx_model(ckpt, cache, say)
    return models_dir, model_source, ckpt, tf2onnx_path


def _run_implementations(names: Sequence[str], cfg_path: Path, work: Path, timeout: float,
                         have_checkpoints: bool, tf2onnx_path: Path | None,
                         say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        reason = _skip_reason(name, have_checkpoints, tf2onnx_path)
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
    return results


def _run_experiments(experiments: Sequence[str], cfg_path: Path, work: Path, timeout: float,
                     say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for exp in experiments:
        if EXPERIMENTS[exp].get("backend") == "openvino" and not have("openvino"):
            results[exp] = {"skipped": "OpenVINO not installed"}
            continue
        say(f"experiment {exp}: running ...")
        res = _run_worker("exp:" + exp, cfg_path, work, timeout)
        results[exp] = res
        if "error" in res:
            say(f"experiment {exp}: failed: {res['error']}")
        else:
            say(f"experiment {exp}: {res['per_region_s'] * 1000:.0f} ms/region, "
                f"{res['peak_rss_mb']:.0f} MB peak RSS, ready in {res['ready_s']:.2f} s")
    return results


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
    names, runs = _check_request(implementations, quick, experiments, runs, scale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    models_dir, model_source, ckpt, tf2onnx_path = _models(names, models, checkpoints, cache, say)

    workload_file = cache / f"workload-v{WORKLOAD_VERSION}-{scale:g}.png"
    workload = workload_png(workload_file, scale=scale)
    say(f"workload: {workload['width']}x{workload['height']}, {workload['regions']} regions, "
        f"{workload['mask_pixels']} mask pixels; {runs} timed runs after the first")

    with tempfile.TemporaryDirectory(prefix="deepcream-bench-") as tmp:
        work = Path(tmp)
        cfg = {"workload": str(workload_file), "models": str(models_dir), "runs": runs,
               "threads": threads, "work_dir": str(work), "regions": workload["regions"],
               "checkpoints": str(ckpt) if ckpt else None, "profile": profile,
               "tf2onnx": str(tf2onnx_path) if tf2onnx_path else None}
        cfg_path = work / "config.json"
        cfg_path.write_text(json.dumps(cfg))
        floor: dict[str, Any] = {}
        if gemm:
            say("measuring fp32 GEMM speed ...")
            g = _run_worker("gemm", cfg_path, work, timeout)
            if "error" not in g:
                floor = floor_summary(g)
        results = _run_implementations(names, cfg_path, work, timeout, ckpt is not None,
                                       tf2onnx_path, say)
        experiment_results = _run_experiments(experiments, cfg_path, work, timeout, say)
        prof = work / "deepcream.profile.txt"
        if prof.is_file():
            shutil.copyfile(prof, out_dir / "bench-profile.txt")
        sample = work / "deepcream.png"
        if sample.is_file():  # the fp32 output, to look at
            shutil.copyfile(sample, out_dir / "bench-output.png")

    if floor and "deepcream" in results and "per_region_batch1_s" in results["deepcream"]:
        compare_with_floor(floor, results["deepcream"])
    report = {
        "meta": reporting.describe_run(quick, runs, threads, model_source),
        "workload": workload,
        "floor": floor,
        "implementations": results,
        "ratios_baseline_over_deepcream": reporting.ratios(results),
        "experiments": experiment_results,
    }
    reporting.write_outputs(report, out_dir)
    say(reporting.render_markdown(report))
    return report
