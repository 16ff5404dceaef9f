"""The benchmark's report: the run's description, baseline/deepcream ratios, and the results
written as ``bench-results.json``, ``bench-results.md`` (tables) and ``bench-results.png``
(stacked stage bars)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any

# Imported here, not in render_chart: `deepcream bench` imports this module before it runs
# anything, so a missing bench extra is reported at once instead of after the run.
import matplotlib
import numpy as np

from .measure import cpu_name, version
from .worker import STAGES

RATIO_METRICS = {
    "end_to_end_s": "end-to-end image time",
    "per_region_batch1_s": "per-region inference (batch 1)",
    "per_region_in_image_s": "per-region inference (in image)",
    "peak_rss_mb": "peak RSS",
    "ready_s": "load + warm-up",
    "first_request_s": "first request",
}


def ratios(results: dict[str, dict[str, Any]], ours: str = "deepcream") -> dict[str, dict[str, float]]:
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


def describe_run(quick: bool, runs: int, threads: int | None, model_source: str) -> dict[str, Any]:
    """The report's ``meta``: date, machine, load, versions, models and the method."""
    from deepcream.session import default_threads

    cpu = cpu_name()
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "quick": quick, "runs": runs, "threads": threads or default_threads(),
        "cpu": cpu, "cpus_usable": default_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "versions": {m: version(m) for m in ("onnxruntime", "openvino", "tensorflow", "tf2onnx", "numpy")},
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


def _header(report: dict[str, Any]) -> list[str]:
    meta, wl = report["meta"], report["workload"]
    return [
        "# deepcream bench results", "",
        f"{meta['date']} · {meta['cpu']} · {meta['cpus_usable']} CPUs · threads {meta['threads']} · "
        f"load average {', '.join(f'{x:.1f}' for x in meta['load_average'] or [])} · "
        f"{'quick' if meta['quick'] else 'full'} run, median of {meta['runs']} runs after the first", "",
        f"Workload: {wl['width']}x{wl['height']} image, {wl['regions']} regions "
        f"({wl['mask_pixels']} mask pixels). Models: {meta['models']}.", "",
    ]


def _implementation_tables(results: dict[str, dict[str, Any]]) -> list[str]:
    """The main table (one row per implementation) and the stage breakdown."""
    lines = [
        "| implementation | backend | end-to-end s | first request s | per region (batch 1) ms | "
        "per region (in image) ms | load+warm s | peak RSS MB | model MB | PSNR in holes vs fp32 dB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    stage_rows = []
    for name, res in results.items():
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
    return lines + ["", "Stage breakdown (median seconds per image):", "",
                    "| implementation | " + " | ".join(STAGES) + " |",
                    "|---|" + "---:|" * len(STAGES)] + stage_rows


def _ratio_table(ratios_: dict[str, dict[str, float]]) -> list[str]:
    lines = ["", "Ratios baseline / deepcream (> 1: deepcream is faster or smaller):", "",
             "| baseline | " + " | ".join(RATIO_METRICS.values()) + " |",
             "|---|" + "---:|" * len(RATIO_METRICS)]
    for name, r in ratios_.items():
        lines.append(f"| {name} | " + " | ".join(
            _fmt(r.get(m), "x", 2) for m in RATIO_METRICS) + " |")
    return lines


def _experiment_table(exps: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["", "Engine settings (workload crops through the bar model, both models loaded "
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
    return lines


def _operator_table(prof: dict[str, Any]) -> list[str]:
    total = prof["ort_kernel_total_s_per_crop"]
    lines = ["", f"onnxruntime operator time for one crop (deepcream, {total * 1000:.0f} ms "
                 "of kernel time):", "", "| operator | ms | share |", "|---|---:|---:|"]
    for op, sec in list(prof["ort_ops_s_per_crop"].items())[:10]:
        lines.append(f"| {op} | {sec * 1000:.1f} | {sec / total:.0%} |")
    return lines


def _floor_lines(floor: dict[str, Any]) -> list[str]:
    lines = ["", f"Floor: fp32 GEMM {floor['gemm_gflops']:.0f} GFLOPS (onnxruntime, "
                 f"{floor['gemm']['threads']} threads); one crop is "
                 f"{floor['crop_gflop_dense']:.1f} GFLOP dense -> "
                 f"{floor['floor_dense_s'] * 1000:.0f} ms/region "
                 f"({floor['floor_without_attention_s'] * 1000:.0f} ms without attention)."]
    if "deepcream_per_region_vs_dense_floor" in floor:
        lines.append(f"deepcream per region = {floor['deepcream_per_region_vs_dense_floor']:.2f}x "
                     f"the dense floor in the image, {floor['deepcream_batch1_vs_dense_floor']:.2f}x "
                     "for a lone crop (sparse attention and the windowed decoder do less than "
                     "the dense FLOPs).")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The results as Markdown: implementations, stage breakdown, then (when present) ratios,
    engine settings, onnxruntime operator times and the floor."""
    lines = _header(report) + _implementation_tables(report["implementations"])
    if report.get("ratios_baseline_over_deepcream"):
        lines += _ratio_table(report["ratios_baseline_over_deepcream"])
    if report.get("experiments"):
        lines += _experiment_table(report["experiments"])
    prof = (report["implementations"].get("deepcream") or {}).get("profile")
    if prof:
        lines += _operator_table(prof)
    if report.get("floor"):
        lines += _floor_lines(report["floor"])
    return "\n".join(lines) + "\n"


def render_chart(report: dict[str, Any], path: Path) -> None:
    """Horizontal stacked bars: the stage breakdown of each implementation."""
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


def write_outputs(report: dict[str, Any], out_dir: Path) -> None:
    """Write ``bench-results.{json,md,png}`` into ``out_dir``, each atomically."""
    from deepcream.fsutil import atomic_path, atomic_write_bytes

    atomic_write_bytes(out_dir / "bench-results.json",
                       (json.dumps(report, indent=2, default=float) + "\n").encode())
    atomic_write_bytes(out_dir / "bench-results.md", render_markdown(report).encode())
    with atomic_path(out_dir / "bench-results.png") as tmp:
        render_chart(report, tmp)
