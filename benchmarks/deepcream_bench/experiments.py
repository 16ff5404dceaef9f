"""Engine settings measured by ``deepcream bench --experiments``: the workload's crops through
the bar model under one setting (batching, threads, arenas, backends), per-region wall and CPU
time, load and warm-up time and peak RSS."""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from .measure import peak_rss_mb, time_runs

#: name -> settings; both models are loaded unless ``models`` is 1.
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

# Experiment option -> ModelSession keyword.
_SESSION_SETTINGS = {"arena": "mem_arena", "shared": "shared_arena", "mem_pattern": "mem_pattern",
                     "batch": "batch_size", "parallel": "parallel"}


def run_experiment(opts: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Measure one ``EXPERIMENTS`` setting in this process (``cfg``: the run's worker config)."""
    from deepcream import pipeline
    from deepcream.engines import dcp_model_inputs
    from deepcream.options import MODES
    from deepcream.session import ModelSession

    job = pipeline.prepare(Path(cfg["workload"]).read_bytes())
    x, m = dcp_model_inputs(np.asarray(job.crops), np.asarray(job.holes), "bar")
    threads = opts.get("threads", cfg.get("threads"))
    t0 = time.perf_counter()
    settings = {key: opts[name] for name, key in _SESSION_SETTINGS.items() if name in opts}
    sessions = [ModelSession(Path(cfg["models"]) / f"{k}.onnx", backend=opts.get("backend", "onnxruntime"),
                             threads=threads, precision=opts.get("precision", "fp32"), **settings)
                for k in MODES[:opts.get("models", 2)]]
    load = time.perf_counter() - t0
    for sess in sessions:
        sess.warmup()
    ready = time.perf_counter() - t0
    bar = sessions[0]

    def once() -> None:
        bar.run(x, m)

    t = time.perf_counter()
    once()
    first = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    times = time_runs(once, int(cfg["runs"]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time per crop is steadier than wall time on a shared machine.
    cpu = (usage.ru_utime + usage.ru_stime - cpu0) / len(times) / len(x)
    return {"options": opts, "crops": len(x), "load_s": load, "ready_s": ready,
            "first_s": first, "per_region_s": statistics.median(times) / len(x),
            "cpu_per_region_s": cpu,
            "images_s": statistics.median(times), "peak_rss_mb": peak_rss_mb(),
            "backend": bar.backend, "threads": bar.threads}
