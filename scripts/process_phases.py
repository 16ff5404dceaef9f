"""Whole-process cost of one `deepcream decensor` on the reference workload, phase by phase,
next to the model time and the published service's own whole process (issue 18).

    python scripts/process_phases.py [--runs 5] [--out docs/bench]

Measures, each as the median of ``--runs`` fresh processes:
- ``python -c pass`` (interpreter start) and ``deepcream --help``;
- the whole ``deepcream decensor workload.png -o OUT`` process (wall), with its own phase lines
  (``-v``: model load, decode, prepare, inpaint, encode);
- the imports of that process (``-X importtime``: deepcream's own modules and the heavy
  libraries, cumulative);
- the model time: the workload's 17 crops through the loaded, warmed bar engine, in-process
  (what no pipeline change can remove);
- the published service as it ran: its pipeline around its own (tf2onnx) model, as one
  process (load + one image), from ``deepcream_bench``.
Models are the bench's random-weight DCPv2-layout fixtures (compute does not depend on the
weight values). deepcream's own modules are byte-compiled first (``compileall``, into their
``__pycache__``, which git ignores), as ``pip install`` leaves them: with
``PYTHONDONTWRITEBYTECODE`` set, as on some CI machines, every process would otherwise compile
them again (~0.09 s of overhead on an AVX2 EPYC). Writes ``process-phases.json`` and
``process-phases.md`` with the CPU named.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
HEAVY = ("numpy", "PIL", "cv2", "onnxruntime", "tqdm", "scipy", "deepcream")


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split())
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return seconds, proc.stderr


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def phases_of(stderr: str) -> dict[str, float]:
    """The CLI's own -v lines: 'loaded bar.onnx ... in X s' and 'NAME: prepare X s, ...'."""
    found: dict[str, float] = {}
    load = re.search(r"loaded \S+ on \S+ with \d+ threads in ([\d.]+) s", stderr)
    if load:
        found["model load (background)"] = float(load.group(1))
    stages = re.search(r"\.png: (prepare .*)$", stderr, re.M)
    if stages:
        for part in stages.group(1).split(", "):
            name, value = part.rsplit(" ", 2)[0], part.rsplit(" ", 2)[1]
            found[name] = float(value)
    return found


def import_times(stderr: str) -> dict[str, float]:
    """Cumulative import seconds of the top-level heavy modules (-X importtime)."""
    out: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)$", line)
        if m and m.group(3).split(".")[0] in HEAVY and "." not in m.group(3):
            out[m.group(3)] = max(out.get(m.group(3), 0.0), int(m.group(1)) / 1e6)
    return out


def model_seconds(models: Path, workload: Path, runs: int, precision: str = "fp32") -> float:
    """The workload's crops through the loaded, warmed bar engine (median of ``runs``)."""
    code = f"""
import statistics, time
from deepcream.engines import get_engine
from deepcream.pipeline import prepare
from deepcream.session import SessionOptions
engine = get_engine("bar", "onnx", {str(models)!r}, SessionOptions(precision={precision!r}))
engine.warmup()
job = prepare({str(workload)!r}, input_size=engine.input_size)
engine.inpaint(job.crops, job.holes)
times = []
for _ in range({runs}):
    t = time.perf_counter(); engine.inpaint(job.crops, job.holes); times.append(time.perf_counter() - t)
print(statistics.median(times))
"""
    proc = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def service_process(tf2onnx: Path, workload: Path) -> float:
    """The published service as one process: imports, its model's load, one image."""
    code = f"""
from deepcream_bench.baselines import service
from deepcream_bench.baselines.tf2onnx_surgery import Tf2OnnxPool
pool = Tf2OnnxPool({str(tf2onnx)!r})
png, _ = service.decensor_bar(open({str(workload)!r}, "rb").read(), pool.run)
open("/dev/null", "wb").write(png)
"""
    seconds, _ = timed([PYTHON, "-c", code])
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    ap.add_argument("--no-service", action="store_true", help="skip the published service")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="deepcream's --precision (bf16: OpenVINO, fast on AMX; not exact)")
    args = ap.parse_args()

    from deepcream_bench.fixtures import (
        default_cache_dir,
        fixture_checkpoints,
        fixture_models,
        tf2onnx_model,
    )
    from deepcream_bench.measure import cpu_name
    from deepcream_bench.workload import workload_png

    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    ckpt = fixture_checkpoints(cache)
    if ckpt is None:
        raise SystemExit("needs TensorFlow for the fixture models: pip install -e '.[bench]'")
    models = fixture_models(ckpt, cache)
    workload = cache / "workload-v2-1.png"
    if not workload.is_file():
        workload_png(workload)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "deepcream"), str(ROOT / "benchmarks")],
                   check=True, capture_output=True)
    load = os.getloadavg()[0]

    start = [timed([PYTHON, "-c", "pass"])[0] for _ in range(args.runs)]
    helps = [timed([PYTHON, "-m", "deepcream", "--help"], env)[0] for _ in range(args.runs)]
    # Whole-process runs and model-time runs alternate, so both sample the machine in the
    # same state (on a shared VM the model time alone drifts by 10-20% over minutes); each
    # pair gives one overhead figure, and the report takes their median.
    walls, models_s, phase_runs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            cmd = [PYTHON, "-m", "deepcream", "-v", "decensor", str(workload), "-o",
                   f"{tmp}/{i}", "--models", str(models), "-q", "--precision", args.precision]
            wall, err = timed(cmd, env)
            walls.append(wall)
            phase_runs.append(phases_of(err))
            models_s.append(model_seconds(models, workload, 3, args.precision))
        _, err = timed([PYTHON, "-X", "importtime", "-m", "deepcream", "decensor",
                        str(workload), "-o", f"{tmp}/it", "--models", str(models), "-q",
                        "--precision", args.precision], env)
    imports = import_times(err)
    model = median(models_s)
    paired = median([w - m for w, m in zip(walls, models_s, strict=True)])
    outside = median([w - p["inpaint"] for w, p in zip(walls, phase_runs, strict=True)
                      if "inpaint" in p])
    phases = {k: median([p[k] for p in phase_runs if k in p]) for k in phase_runs[0]}
    service = None
    if not args.no_service:
        tf2onnx = tf2onnx_model(ckpt, cache)
        if tf2onnx is not None:
            service = median([service_process(tf2onnx, workload) for _ in range(args.runs)])
    whole = median(walls)
    report = {
        "cpu": cpu_name(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
        "load_average_at_start": round(load, 2), "runs": args.runs, "precision": args.precision,
        "bytecode_compiled": True,
        "python_start_s": median(start), "help_s": median(helps),
        "whole_process_s": whole, "whole_process_all_s": walls,
        "model_s": model, "model_all_s": models_s, "overhead_s": paired,
        "outside_inpaint_s": outside,
        "phases_s": phases, "imports_s": imports,
        "service_own_model_process_s": service,
        "speedup_vs_service": (service / whole) if service else None,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "process-phases.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "process-phases.md").write_text(render(report))
    print(render(report))
    return 0


def render(r: dict) -> str:
    lines = [
        "# One image, one process: where the time goes",
        "",
        f"CPU: {r['cpu']} ({r['cores']} cores; {r['cpu_flags'] or 'no AVX-512/AMX'}); load "
        f"average {r['load_average_at_start']} at start; medians of {r['runs']} processes "
        "(whole-process and model-time processes alternate); deepcream at precision "
        f"{r.get('precision', 'fp32')}; deepcream's modules byte-compiled first. "
        "Reproduce: `python scripts/process_phases.py"
        f"{'' if r.get('precision', 'fp32') == 'fp32' else ' --precision ' + r['precision']}`.",
        "",
        "| | seconds |",
        "|---|---:|",
        f"| **whole `deepcream decensor` process** (reference workload, 17 regions) | "
        f"**{r['whole_process_s']:.3f}** |",
        f"| model time (17 crops, loaded and warm engine; median of 3 per process) | "
        f"{r['model_s']:.3f} |",
        f"| overhead = whole - model, per pair of adjacent runs (target <= 0.35) | "
        f"{r['overhead_s']:.3f} |",
        f"| whole - its own inpaint phase (same process) | {r['outside_inpaint_s']:.3f} |",
        f"| `python -c pass` | {r['python_start_s']:.3f} |",
        f"| `deepcream --help` (target < 0.15) | {r['help_s']:.3f} |",
    ]
    if r["service_own_model_process_s"]:
        lines.append(f"| published service, its own model, one process | "
                     f"{r['service_own_model_process_s']:.3f} |")
        lines.append(f"| speed-up vs the published service | "
                     f"{r['speedup_vs_service']:.1f}x |")
    lines += ["", "Phases reported by the process itself (`-v`; the model load runs in the "
              "background while the image is decoded, so it overlaps):", "",
              "| phase | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in r["phases_s"].items()]
    lines += ["", "Imports (cumulative, `-X importtime`, one process):", "",
              "| module | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in sorted(r["imports_s"].items(),
                                                         key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
