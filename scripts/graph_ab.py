#!/usr/bin/env python3
"""A/B the ONNX generator graph of this tree against the one of another git revision.

    .venv/bin/python scripts/graph_ab.py --rev HEAD~1 [--new REV] [--repeat 8] [--threads 1]

Builds both graphs (``deepcream/graph.py`` of ``--rev`` and of the work tree, or of ``--new``,
both loaded from git)
with the same random He-scaled weights, runs the reference workload's 17 crops one at a time
(``--threads`` intra-op threads), alternating the two graphs for ``--repeat`` passes, and
prints the min and median ms per crop of each plus the max abs difference of both against
the dense (literal) graph of the work tree. How the per-change figures in
docs/performance.md were taken.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from graph_speed import load_weights, make_inputs  # noqa: E402

from deepcream.graph import build_model  # noqa: E402


def graph_module_at(rev: str):
    source = subprocess.run(["git", "show", f"{rev}:deepcream/graph.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "graph_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("graph_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rev", default="HEAD~1", help="git revision to compare with")
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--new", help="git revision to time instead of the work tree")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    weights = load_weights(None, 0)
    image, mask = make_inputs("workload", 17, 0)
    models = {args.rev: graph_module_at(args.rev).build_model(weights),
              "work tree": (graph_module_at(args.new).build_model(weights) if args.new
                            else build_model(weights)),
              "dense": build_model(weights, attention="dense")}
    runs = {}
    for name, model in models.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.log_severity_level = 3
        session = ort.InferenceSession(model.SerializeToString(), opts,
                                       providers=["CPUExecutionProvider"])
        outs = [session.run(None, {"image": image[i:i + 1], "mask": mask[i:i + 1]})[0]
                for i in range(len(image))]
        runs[name] = (session, outs, [])
    for _ in range(args.repeat):
        for name in (args.rev, "work tree"):
            session, _outs, times = runs[name]
            t = time.perf_counter()
            for i in range(len(image)):
                session.run(None, {"image": image[i:i + 1], "mask": mask[i:i + 1]})
            times.append((time.perf_counter() - t) * 1000 / len(image))
    dense = runs["dense"][1]
    for name in (args.rev, "work tree"):
        _session, outs, times = runs[name]
        diff = max(float(np.abs(a - b).max()) for a, b in zip(outs, dense, strict=True))
        print(f"{name:>12}: min {min(times):6.1f} ms/crop, median {statistics.median(times):6.1f}; "
              f"max abs diff vs dense {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
