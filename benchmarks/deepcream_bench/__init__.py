"""deepcream's benchmark lab (``deepcream bench``), kept out of the runtime package.

Installed from the repository folder ``benchmarks/`` under the import name ``deepcream_bench``
(setuptools ``package-dir``); its extra dependencies come with ``pip install 'deepcream[bench]'``.
One module per job:

- ``workload``: the reference workload image, built from ``data/reference-workload.json``.
- ``fixtures``: the random-weight DCPv2 checkpoints and the models converted from them (cached).
- ``worker``: one implementation measured in its own subprocess (``python -m
  deepcream_bench.worker``).
- ``profiling``: where deepcream's time goes (pyinstrument, onnxruntime per-operator times).
- ``floor``: the FLOPs of one crop and the fp32 GEMM speed they are compared with.
- ``experiments``: engine settings (batching, threads, arenas, backends) on the workload crops.
- ``report``: the results as JSON, Markdown tables and a PNG chart.
- ``run``: the orchestration: ``run_bench(out_dir, ...)``.
- ``measure``: the small probes the others share (peak RSS, timing loops, PSNR, versions).
- ``baselines``: what deepcream is measured against (TensorFlow, tf2onnx, the service).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The folder holding this package: on a source checkout benchmarks/, installed site-packages.
_PARENT = str(Path(__file__).resolve().parent.parent)


def python_command(code: str) -> list[str]:
    """A command running ``code`` in a new interpreter that imports this same deepcream_bench
    (a checkout's, not another one that an editable install maps); appended to sys.path, so it
    never shadows the standard library. The arguments after it are ``sys.argv[1:]``."""
    return [sys.executable, "-c", f"import sys; sys.path.append({_PARENT!r}); {code}"]
