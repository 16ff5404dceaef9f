"""Time ONNX graph variants of the DCPv2 generator, per crop, at several batch sizes.

    .venv/bin/python scripts/graph_speed.py                         # dense vs sparse, batch 1 and 8
    .venv/bin/python scripts/graph_speed.py --checkpoint /path/to/bar --masks workload --profile
    .venv/bin/python scripts/graph_speed.py --variant dense --variant "sparse" --batch 1,4,8

A variant is ``ATTENTION[:key=value,...]``; the keys are passed to ``deepcream.graph.build_model``
as keyword options (ints/floats/bools parsed), so experimental build options can be compared.
Weights come from a checkpoint (``--checkpoint`` folder or prefix) or are random He-scaled
(timing barely depends on them, except that real weights make realistic attention weights).
Masks: ``workload`` = the 256x256 crops ``pipeline.prepare`` cuts from the reference workload
image (17 thin strokes; the realistic case for the sparse attention), ``stroke``, ``rect``,
``none`` (no hole) or ``all`` (all hole). Each timed pass runs all crops (17 workload crops,
16 synthetic) in groups of the batch size; times are medians over ``--repeat`` passes, so a busy
machine shows as spread: compare the min, and the process CPU time per crop, which load
inflates less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from deepcream.graph import GENERATOR_SHAPES, build_model  # noqa: E402


def load_weights(checkpoint: str | None, seed: int) -> dict[str, np.ndarray]:
    if checkpoint:
        path = Path(checkpoint)
        if path.is_dir():
            path = next(path.glob("*.index")).with_suffix("")
        from deepcream.checkpoint import read_checkpoint

        return read_checkpoint(path, names=list(GENERATOR_SHAPES)).tensors
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in GENERATOR_SHAPES.items():
        scale = 0.1 if name.endswith("biases") else np.sqrt(1.0 / np.prod(shape[:-1]))
        out[name] = rng.normal(0.0, scale, shape).astype(np.float32)
    return out


def make_inputs(kind: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` crops (float32 NHWC in [-1, 1], holes at -1) and masks (1 keep, 0 hole)."""
    if kind == "workload":
        from PIL import Image

        from deepcream.pipeline import prepare
        from deepcream_bench.workload import make_workload_image

        rgb, _ = make_workload_image()
        job = prepare(Image.fromarray(rgb))
        crops, holes = job.crops, job.holes
        reps = -(-count // len(crops))
        crops, holes = np.tile(crops, (reps, 1, 1, 1))[:count], np.tile(holes, (reps, 1, 1))[:count]
        mask = (~holes)[..., None].astype(np.float32)
        image = crops.astype(np.float32) / 127.5 - 1.0
        return np.where(mask == 0, -1.0, image).astype(np.float32), mask
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:256, :256]
    image = np.empty((count, 256, 256, 3), np.float32)
    mask = np.ones((count, 256, 256, 1), np.float32)
    for i in range(count):
        image[i] = np.sin(xx[..., None] / (7 + i) + yy[..., None] / 11 + np.arange(3.0)) * 0.8
        if kind == "stroke":  # a ~10 px diagonal stroke over the middle two thirds
            near = np.abs((yy - 43) - (xx - 43) * (1 + 0.1 * i)) < 7
            mask[i, near & (xx > 43) & (xx < 213), 0] = 0
        elif kind == "rect":
            y0, x0 = rng.integers(40, 120, 2)
            mask[i, y0:y0 + 90, x0:x0 + 90] = 0
        elif kind == "all":
            mask[i] = 0
        elif kind != "none":
            raise SystemExit(f"unknown mask kind {kind!r}")
    image[np.broadcast_to(mask == 0, image.shape)] = -1.0
    return image, mask


def parse_variant(text: str) -> tuple[str, dict]:
    attention, _, opts = text.partition(":")
    kwargs: dict = {"attention": attention}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return text, kwargs


def ort_session(model_bytes: bytes, threads: int, profile: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.enable_profiling = profile
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def ov_runner(model_bytes: bytes, threads: int):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(model_bytes, b"")
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                 "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    return lambda feeds: request.infer(feeds)[compiled.output(0)]


def profile_summary(path: str, runs: int) -> str:
    events = json.loads(Path(path).read_text())
    by_op: Counter = Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
    os.unlink(path)
    total = sum(by_op.values())
    lines = [f"    {op:22s} {us / runs / 1000:7.2f} ms/pass {100 * us / total:5.1f}%"
             for op, us in by_op.most_common(12)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", help="checkpoint folder or prefix (default: random weights)")
    ap.add_argument("--variant", action="append", help="ATTENTION[:key=value,...] (repeatable)")
    ap.add_argument("--batch", default="1,8", help="comma-separated batch sizes")
    ap.add_argument("--masks", default="workload", help="workload|stroke|rect|none|all")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs per batch size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "openvino"])
    ap.add_argument("--profile", action="store_true", help="onnxruntime per-op-type breakdown")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    weights = load_weights(args.checkpoint, args.seed)
    batches = [int(b) for b in args.batch.split(",")]
    # the 17 workload crops (or 16 synthetic ones); each timed pass runs all of them in groups
    # of the batch size, so per-crop figures average over the workload's hole sizes
    image, mask = make_inputs(args.masks, 17 if args.masks == "workload" else 16, args.seed)
    variants = [parse_variant(v) for v in (args.variant or ["dense", "sparse"])]
    print(f"masks={args.masks} threads={args.threads} backend={args.backend} "
          f"repeat={args.repeat} load={os.getloadavg()[0]:.1f}")
    # Build every (variant, batch) runner first, then time them round-robin so a change in
    # machine load hits all of them alike.
    runners = []
    for label, kwargs in variants:
        model_bytes = build_model(weights, **kwargs).SerializeToString()
        for batch in batches:
            groups = [{"image": image[i:i + batch], "mask": mask[i:i + batch]}
                      for i in range(0, len(image) - batch + 1, batch)]
            session = None
            if args.backend == "openvino":
                run = ov_runner(model_bytes, args.threads)
            else:
                session = ort_session(model_bytes, args.threads, args.profile)

                def run(feeds, session=session):
                    return session.run(["output"], feeds)[0]
            run(groups[0])  # warm-up
            runners.append((label, batch, groups, run, session, [], []))
    for _ in range(args.repeat):
        for _label, batch, groups, run, _session, wall, cpu in runners:
            t0, c0 = time.perf_counter(), time.process_time()
            for feeds in groups:
                run(feeds)
            crops = batch * len(groups)
            wall.append((time.perf_counter() - t0) * 1000 / crops)
            cpu.append((time.process_time() - c0) * 1000 / crops)
    for label, batch, _groups, _run, session, wall, cpu in runners:
        print(f"{label:36s} batch {batch:2d}: median {statistics.median(wall):7.1f} ms/crop, "
              f"min {min(wall):7.1f}; cpu {statistics.median(cpu):7.1f} ms/crop")
        if session is not None and args.profile:
            print(profile_summary(session.end_profiling(), args.repeat))  # warm-up included
    return 0


if __name__ == "__main__":
    sys.exit(main())
