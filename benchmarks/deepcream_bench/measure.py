"""Measurement and environment probes shared by the benchmark's modules: peak RSS, timing
loops, PSNR, installed module checks and versions."""

from __future__ import annotations

import contextlib
import importlib.util
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def cpu_name() -> str:
    """The CPU's model name (quoted with every figure)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def peak_rss_mb() -> float:
    """Peak resident set of this process in MB. VmHWM belongs to the current address space;
    ru_maxrss would also count the parent's RSS at fork time (Linux keeps it across exec)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float | None:
    """PSNR in dB; None when identical (infinite)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return None if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def time_runs(fn: Callable[[], Any], runs: int) -> list[float]:
    """Wall seconds of each of ``runs`` calls of ``fn``."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def have(module: str) -> bool:
    """Whether ``module`` is installed (without importing it)."""
    return importlib.util.find_spec(module) is not None


def tf_available() -> bool:
    """TensorFlow and tf-slim, which the fixture generator and the TF baselines need."""
    return all(have(m) for m in ("tensorflow", "tf_slim"))


def version(module: str) -> str:
    """The installed version of ``module``, or "?"."""
    try:
        from importlib.metadata import version as dist_version

        return dist_version(module if module != "tensorflow" else "tensorflow-cpu")
    except Exception:
        try:
            return __import__(module).__version__
        except Exception:
            return "?"
