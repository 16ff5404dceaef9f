"""Folder-job throughput on one machine: wall time per image vs model time per image, peak RSS.

    PYTHONPATH=$PWD:$PWD/benchmarks .venv/bin/python scripts/folder_bench.py [--images 20] [--runs 3]
        [--baseline-tree DIR] [--ray] [--out docs/bench/folder]

Builds a folder of ``--images`` copies of the reference workload image (2604x2513, 17 bar
regions; ``deepcream_bench.workload.workload_png``) and the random-weight DCPv2 models converted by
deepcream (the tests' fixture checkpoints; compute does not depend on weight values), then
measures, each in a fresh process:

- ``model``: the model time per image: ``engine.inpaint`` on the image's crops alone (engine
  loaded and warmed up; median of ``--runs``).
- ``folder``: ``run_tasks`` over the folder, pipelined (prefetch k+1, fill k, write k-1):
  wall per image, and the CLI's peak RSS (VmHWM) for the whole job.
- ``folder-serial``: the same loop with the prefetch off (one image prepared at a time, the
  write still overlapped): what the pipelining gains.
- ``single``: the single-image CLI path, `deepcream decensor one.png -o OUT` in-process
  (model load included), median of ``--runs`` fresh processes; with ``--baseline-tree DIR``
  the same against another checkout (e.g. main before the folder work) for the 3% check.
- ``ray`` (with ``--ray``): the same folder through ``--ray local`` on a local cluster.

Writes ``folder-bench.json`` and ``folder-bench.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from deepcream_bench.measure import cpu_name  # noqa: E402


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")



# --------------------------------------------------------------------------------------------
# Set-up (cached)


def fixture_checkpoints(cache: Path) -> Path:
    """The tests' random-weight checkpoints when pytest made them, else generated here."""
    for done in sorted(REPO.glob(".pytest_cache/d/dcpv2-fixture/*/done")):
        return done.parent
    from deepcream_bench.fixtures import fixture_checkpoints as make

    found = make(cache)
    if found is None:
        sys.exit("needs the random-weight checkpoints: run the tests once, or install the "
                 "test extra (TensorFlow)")
    return found


def models(cache: Path) -> Path:
    from deepcream.convert import convert

    out = cache / "models"
    if not (out / "bar.onnx").is_file():
        tmp = cache / "models.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        convert(fixture_checkpoints(cache), tmp, force=True, report=lambda _m: None)
        tmp.rename(out)
    return out


def folder(cache: Path, images: int) -> Path:
    from deepcream_bench.workload import workload_png

    one = cache / "workload.png"
    workload_png(one)
    src = cache / f"folder-{images}"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        target = src / f"page{i:03d}.png"
        if not target.exists():
            shutil.copyfile(one, target)
    return src


# --------------------------------------------------------------------------------------------
# Workers: one measurement per fresh process, JSON on stdout


def model_times(engine: Any, job: Any, runs: int) -> list[float]:
    """Seconds of ``runs`` passes of the job's crops through a loaded, warmed engine."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        engine.inpaint(job.crops, job.holes)
        times.append(time.perf_counter() - t)
    return times


def worker_model(cfg: dict[str, Any]) -> dict[str, Any]:
    from deepcream.engines import OnnxEngine
    from deepcream.options import DecensorOptions
    from deepcream.pipeline import prepare

    engine = OnnxEngine(Path(cfg["models"]) / "bar.onnx", "bar")
    engine.warmup()
    job = prepare(cfg["image"], DecensorOptions(), input_size=engine.input_size)
    engine.inpaint(job.crops, job.holes)
    times = model_times(engine, job, cfg["runs"])
    return {"model_s": statistics.median(times), "model_all_s": times, "crops": len(job.plans)}


def worker_folder(cfg: dict[str, Any]) -> dict[str, Any]:
    from deepcream.decensorer import Decensorer
    from deepcream.folderjob import plan_tasks, run_tasks
    from deepcream.malloc import tune_malloc
    from deepcream.options import DecensorOptions

    tune_malloc()  # as the CLI does
    src, out = Path(cfg["folder"]), Path(cfg["out"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    decensorer = Decensorer(engine="onnx", models=cfg["models"])
    engine = decensorer.engine("bar")
    engine.warmup()
    plan = plan_tasks([(p, src) for p in sorted(src.glob("*.png"))], out_dir=out)
    # The model time of one image, measured in this process with this engine just before and
    # just after the folder job: the machine's speed drifts over minutes, and the ratio
    # should compare like with like.
    from deepcream.pipeline import prepare

    job = prepare(plan.tasks[0].source, DecensorOptions(), input_size=engine.input_size)
    before = statistics.median(model_times(engine, job, 3))
    outcomes = []
    t = time.perf_counter()
    run_tasks(decensorer, plan.tasks, DecensorOptions(), on_outcome=outcomes.append,
              prefetch=cfg["prefetch"])
    wall = time.perf_counter() - t
    after = statistics.median(model_times(engine, job, 3))
    assert all(o.status == "done" for o in outcomes), [o.message for o in outcomes]
    per_image = wall / len(outcomes)
    return {"images": len(outcomes), "wall_s": wall, "per_image_s": per_image,
            "model_before_s": before, "model_after_s": after,
            "ratio_same_process": per_image / ((before + after) / 2),
            "peak_rss_mb": peak_rss_mb()}


def worker_single(cfg: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    from deepcream.cli import main

    code = main(["decensor", cfg["image"], "-o", cfg["out"], "--models", cfg["models"],
                 "--engine", "onnx", "-q", *(["--overwrite"] if cfg["overwrite"] else [])])
    assert code == 0
    return {"wall_s": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}


def worker_ray(cfg: dict[str, Any]) -> dict[str, Any]:
    from deepcream.cli import main

    out = Path(cfg["out"])
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    code = main(["decensor", cfg["folder"], "-o", str(out), "--models", cfg["models"],
                 "--engine", "onnx", "-q", "--ray", cfg["ray"]])
    wall = time.perf_counter() - t
    assert code == 0
    images = len(list(out.glob("*.png")))
    return {"images": images, "wall_s": wall, "per_image_s": wall / images}


WORKERS = {"model": worker_model, "folder": worker_folder, "single": worker_single,
           "ray": worker_ray}


def spawn(kind: str, cfg: dict[str, Any], tree: Path = REPO) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{tree / 'benchmarks'}")
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", kind,
                           json.dumps(cfg)], env=env, capture_output=True, text=True,
                          cwd=tree)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    m = report["results"]
    lines = [f"# Folder-job throughput ({report['images']} reference-workload images)", "",
             f"CPU: {report['cpu']}, {report['cpus']} CPUs; load average before/after: "
             f"{report['load_before']} / {report['load_after']}; "
             f"{report['runs']} runs, median; each folder run's ratio is taken against the "
             "model time measured in the same process just before and after it (median of "
             "the runs' ratios).", "",
             "| measurement | per image | vs model time | peak RSS |", "|---|---:|---:|---:|"]
    model = m["model"]["model_s"]
    lines.append(f"| model time (engine on the image's {m['model']['crops']} crops alone) | "
                 f"{model:.3f} s | 1.00x | |")
    for key, label in (("folder", "folder job, pipelined (run_tasks)"),
                       ("folder_serial", "folder job, no prefetch"),
                       ("ray", "folder job, --ray local")):
        if key in m:
            r = m[key]
            rss = f"{r['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in r else ""
            ratio = r.get("ratio_paired", r["per_image_s"] / model)
            lines.append(f"| {label} | {r['per_image_s']:.3f} s | {ratio:.2f}x | {rss} |")
    for key, label in (("single", "single image, CLI (load included)"),
                       ("single_baseline", f"single image, CLI, {report.get('baseline', '')}")):
        if key in m:
            r = m[key]
            lines.append(f"| {label} | {r['wall_s']:.3f} s | | {r['peak_rss_mb']:.0f} MB |")
    if "single_baseline" in m:
        ratio = m["single"]["wall_s"] / m["single_baseline"]["wall_s"]
        lines += ["", f"Single-image CLI vs baseline: {ratio:.3f}x"]
    lines += ["", "Reproduce: `PYTHONPATH=$PWD .venv/bin/python scripts/folder_bench.py "
              + " ".join(report["argv"]) + "`", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "CFG"), help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "deepcream" / "folder-bench")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "folder")
    parser.add_argument("--baseline-tree", type=Path,
                        help="another checkout to time the single-image CLI against")
    parser.add_argument("--tree", type=Path, default=REPO,
                        help="the checkout whose single-image CLI is timed (default: this one)")
    parser.add_argument("--ray", metavar="ADDRESS", help="also time --ray ADDRESS (e.g. local)")
    parser.add_argument("--skip", nargs="*", default=[], help="measurements to leave out")
    args = parser.parse_args()
    if args.worker:
        kind, cfg = args.worker
        print(json.dumps(WORKERS[kind](json.loads(cfg))))
        return 0

    argv = sys.argv[1:]
    args.cache.mkdir(parents=True, exist_ok=True)
    models_dir = models(args.cache)
    src = folder(args.cache, args.images)
    image = str(src / "page000.png")
    work = args.cache / "work"
    base = {"models": str(models_dir), "runs": args.runs}
    report: dict[str, Any] = {"images": args.images, "runs": args.runs, "cpu": cpu_name(),
                              "cpus": os.cpu_count(), "argv": argv,
                              "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()),
                              "results": {}}
    results = report["results"]
    # On a shared VM the speed drifts by 10-20% over minutes, so each folder run's ratio is
    # taken against the model time measured in the same process just before and after it
    # (worker_folder); the separate model-time processes are reported beside it.
    keys = [(k, p) for k, p in (("folder", True), ("folder_serial", False)) if k not in args.skip]
    model_runs: list[dict[str, Any]] = []
    folder_runs: dict[str, list[dict[str, Any]]] = {k: [] for k, _ in keys}
    for _ in range(args.runs):
        model_runs.append(spawn("model", {**base, "runs": 3, "image": image}))
        print("model", model_runs[-1], flush=True)
        for key, prefetch in keys:
            folder_runs[key].append(spawn("folder", {**base, "folder": str(src),
                                                     "out": str(work / key),
                                                     "prefetch": prefetch}))
            print(key, folder_runs[key][-1], flush=True)
    model_all = [r["model_s"] for r in model_runs]
    results["model"] = {**model_runs[0], "model_s": statistics.median(model_all),
                        "model_all_s": model_all}
    for key, runs in folder_runs.items():
        best = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
        ratios = [r["ratio_same_process"] for r in runs]
        results[key] = {**best, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                        "all_per_image_s": [r["per_image_s"] for r in runs],
                        "ratio_paired": statistics.median(ratios),
                        "all_ratios": [round(x, 3) for x in ratios]}
    if "single" not in args.skip:
        trees = [("single", args.tree.resolve())]
        if args.baseline_tree:
            trees.append(("single_baseline", args.baseline_tree.resolve()))
            report["baseline"] = str(args.baseline_tree)
        walls: dict[str, list[dict[str, Any]]] = {k: [] for k, _ in trees}
        for _ in range(max(args.runs, 5)):
            for key, tree in trees:  # interleaved: machine load hits both alike
                # (the baseline has no --overwrite: its outputs were always replaced)
                cfg = {**base, "image": image, "out": str(work / key),
                       "overwrite": key == "single"}
                walls[key].append(spawn("single", cfg, tree))
        for key, runs in walls.items():
            results[key] = {"wall_s": statistics.median(r["wall_s"] for r in runs),
                            "all_wall_s": [r["wall_s"] for r in runs],
                            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
            print(key, results[key], flush=True)
    if args.ray:
        results["ray"] = spawn("ray", {**base, "folder": str(src), "out": str(work / "ray"),
                                       "ray": args.ray})
        print("ray", results["ray"], flush=True)
    report["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "folder-bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "folder-bench.md").write_text(render(report))
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
